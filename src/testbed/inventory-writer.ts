/**
 * The inventory `troupe deploy` reads (`troupe-hosts.yaml`, docs/deploy.md), written from a
 * testbed's running instances. This is the one place that knows that format (as src/deploy's
 * inventory reader has it on the deploy branch), so that the two are kept in line here alone:
 *
 *   defaults: { user, sshPort, identity, dir? }
 *   manager: { name: ID-1, address: 198.51.100.4, port: 7400 }            # manager: first
 *   manager: { name: manager, address: HOST, port: 7400, local: true }      # manager: local
 *   workers:
 *     - { name: ID-2, address: 203.0.113.9, tags: [region-eu-west-1, zone-eu-west-1a] }
 *
 * With `manager: first` the first instance (the lowest number) is deployed as the manager and the
 * others as workers (a testbed of one instance is a manager alone); with `manager: local` every
 * instance is a worker and they dial `managerAddress`, this machine. A file is only overwritten
 * when troupe testbed wrote it (its first line says so) or when forced.
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
  defaults: { user: string; sshPort: number; identity: string; dir?: string };
  manager: { name: string; address: string; port: number; local?: true };
  workers: InventoryHost[];
}

/** The manager's node name when it runs on this machine. */
export const LOCAL_MANAGER_NAME = 'manager';

/** The inventory of the running instances; TROUPE_E_TESTBED_INVENTORY when there are none with an address. */
export function inventoryOf(settings: TestbedSettings, instances: readonly TestbedInstance[]): Inventory {
  const hosts = instances.filter((i) => i.state === 'running' && i.publicAddress !== undefined);
  if (hosts.length === 0) throw new TestbedError(ErrorCodes.TESTBED_INVENTORY, `testbed ${settings.id} has no running instance with a public address: troupe testbed deploy --instances N first`);
  const asHost = (i: TestbedInstance): InventoryHost => ({ name: i.name, address: i.publicAddress!, tags: [`region-${i.region}`, ...(i.zone ? [`zone-${i.zone}`] : [])] });
  const defaults: Inventory['defaults'] = { user: settings.user, sshPort: settings.sshPort, identity: settings.identityFile, ...(settings.remoteDir !== undefined ? { dir: settings.remoteDir } : {}) };
  if (settings.manager === 'local') {
    return { defaults, manager: { name: LOCAL_MANAGER_NAME, address: settings.managerAddress!, port: settings.managerPort, local: true }, workers: hosts.map(asHost) };
  }
  const [first, ...rest] = hosts;
  return { defaults, manager: { name: first!.name, address: first!.publicAddress!, port: settings.managerPort }, workers: rest.map(asHost) };
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
