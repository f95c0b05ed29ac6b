/**
 * The inventory `troupe deploy` reads (`troupe-hosts.yaml`, docs/deploy.md), written from a
 * testbed's running instances. This is the one place that knows that format, so that it can be
 * kept in line with src/deploy's reader. The shape written (the minimal one of issue 13):
 *
 *   defaults: { user, port, identityFile, remoteDir? }
 *   manager: local                      # or { name, address } of the first instance
 *   workers:
 *     - { name: ID-2, address: 203.0.113.9, tags: [region-eu-west-1, zone-eu-west-1a] }
 *
 * With `manager: first` the first instance (the lowest number) is the manager and the others are
 * the workers; a testbed of one instance is both. A file is only overwritten when troupe testbed
 * wrote it (its first line says so) or when forced.
 */
import fs from 'node:fs';
import { stringify } from 'yaml';
import { ErrorCodes, TestbedError } from '../errors.js';
import type { TestbedInstance } from './testbed.js';
import type { TestbedSettings } from './testbed-settings.js';

/** The inventory file written when none is named (the default of `troupe deploy`). */
export const DEFAULT_INVENTORY_FILE = 'troupe-hosts.yaml';
const MARK = '# Written by troupe testbed hosts';

export interface InventoryHost {
  name: string;
  address: string;
  tags: string[];
}

export interface Inventory {
  defaults: { user: string; port: number; identityFile: string; remoteDir?: string };
  manager: 'local' | { name: string; address: string };
  workers: InventoryHost[];
}

/** The inventory of the running instances; TROUPE_E_TESTBED_INVENTORY when there are none with an address. */
export function inventoryOf(settings: TestbedSettings, instances: readonly TestbedInstance[]): Inventory {
  const hosts = instances.filter((i) => i.state === 'running' && i.publicAddress !== undefined);
  if (hosts.length === 0) throw new TestbedError(ErrorCodes.TESTBED_INVENTORY, `testbed ${settings.id} has no running instance with a public address: troupe testbed deploy --instances N first`);
  const asHost = (i: TestbedInstance): InventoryHost => ({ name: i.name, address: i.publicAddress!, tags: [`region-${i.region}`, ...(i.zone ? [`zone-${i.zone}`] : [])] });
  const defaults: Inventory['defaults'] = { user: settings.user, port: settings.sshPort, identityFile: settings.identityFile, ...(settings.remoteDir !== undefined ? { remoteDir: settings.remoteDir } : {}) };
  if (settings.manager === 'local') return { defaults, manager: 'local', workers: hosts.map(asHost) };
  const [first, ...rest] = hosts;
  return { defaults, manager: { name: first!.name, address: first!.publicAddress! }, workers: (rest.length > 0 ? rest : [first!]).map(asHost) };
}

export function inventoryText(settings: TestbedSettings, inventory: Inventory): string {
  return `${MARK} (testbed ${settings.id}, from ${settings.file}); run it again after the instances change.\n${stringify(inventory)}`;
}

/** Writes the inventory; refuses to overwrite a file someone else wrote unless `force`. */
export function writeInventory(file: string, settings: TestbedSettings, inventory: Inventory, force = false): void {
  if (!force && fs.existsSync(file) && !fs.readFileSync(file, 'utf8').startsWith(MARK)) {
    throw new TestbedError(ErrorCodes.TESTBED_INVENTORY, `${file} exists and was not written by troupe testbed hosts: name another file with --out, or --force to overwrite it`);
  }
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, inventoryText(settings, inventory), { mode: 0o644 });
  fs.renameSync(tmp, file);
}
