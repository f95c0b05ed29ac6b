/**
 * `troupe testbed …`: machines on EC2 from a settings file (docs/testbed.md). Each subcommand
 * loads the settings, runs one Testbed operation, and prints progress lines per region on stderr
 * and its result (tables, JSON, what was removed) on stdout. Exit status 0 on success; a troupe
 * error prints one line `troupe: CODE: message` and exits 1 (main.ts). `testbed up` hands the
 * instances to `troupe deploy up` as a child process and exits with its status.
 */
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Argv } from 'yargs';
import { ErrorCodes, TestbedError } from '../errors.js';
import { DEFAULT_INVENTORY_FILE, inventoryOf, writeInventory } from '../testbed/inventory-writer.js';
// The EC2 SDK takes seconds to load on a busy machine: only a testbed command loads it (withTestbed).
import type { RegionResources, Testbed, TestbedInstance } from '../testbed/testbed.js';
import { DEFAULT_SETTINGS_FILE, loadTestbedSettings } from '../testbed/testbed-settings.js';
import { TESTBED_SUMMARY } from './command-summaries.js';
import { duration, table } from './format.js';

export interface TestbedIo {
  print: (line: string) => void;
  error: (line: string) => void;
}

type SetJob = (job: () => Promise<number>) => void;

const BIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'troupe.js');

/** Adds the `testbed` command and its subcommands to the command line. */
export function testbedCommand<T>(y: Argv<T>, io: TestbedIo, setJob: SetJob): Argv<T> {
  return y.command(
    TESTBED_SUMMARY.command,
    TESTBED_SUMMARY.describe,
    (t) =>
      t
        .option('settings', { type: 'string', default: DEFAULT_SETTINGS_FILE, describe: 'The testbed settings file (docs/testbed.md)' })
        .option('profile', { type: 'string', describe: 'The AWS profile (of ~/.aws/config) to take credentials from; default: the SDK\'s chain (AWS_PROFILE, environment, files, instance role)' })
        .command(
          'deploy',
          'Create what is missing of N instances spread over the regions, and wait until they run and accept SSH',
          (z) => deployOptions(z),
          (args) => setJob(() => withTestbed(args, io, async (tb) => (await deploy(tb, args, io), 0))),
        )
        .command(
          'status',
          'A table per region: instance, name, type, state, address, launched, time left, ssh line',
          (z) => z.option('json', { type: 'boolean', default: false, describe: 'The instances as JSON' }),
          (args) => setJob(() => withTestbed(args, io, async (tb) => (showStatus(tb, await tb.list(), args.json, io), 0))),
        )
        .command(
          'start',
          'Start the stopped instances (all, or N of them) and wait until they run',
          (z) => z.option('instances', { type: 'number', describe: 'Start this many (the lowest numbers first)' }),
          (args) => setJob(() => withTestbed(args, io, async (tb) => (report('started', await tb.start(args.instances), io), 0))),
        )
        .command(
          'stop',
          'Stop the running instances (all, or N of them) and wait until they are stopped',
          (z) => z.option('instances', { type: 'number', describe: 'Stop this many (the highest numbers first)' }),
          (args) => setJob(() => withTestbed(args, io, async (tb) => (report('stopped', await tb.stop(args.instances), io), 0))),
        )
        .command(
          'destroy',
          'Terminate every instance of the testbed, then delete its security groups and key pairs',
          (z) =>
            z
              .option('yes', { alias: 'y', type: 'boolean', default: false, describe: 'Do not ask first' })
              .option('all-regions', { type: 'boolean', default: false, describe: 'Look in every region of the account, not only those of the settings' }),
          (args) => setJob(() => withTestbed(args, io, (tb) => destroy(tb, args.yes, args['all-regions'], io))),
        )
        .command(
          'hosts',
          `Write the inventory of the running instances for troupe deploy (default ${DEFAULT_INVENTORY_FILE})`,
          (z) => inventoryOptions(z),
          (args) => setJob(() => withTestbed(args, io, async (tb) => (hosts(tb, await tb.list(), args.out, args.force, io), 0))),
        )
        .command(
          'up',
          'deploy, write the inventory, then troupe deploy up on it: from nothing to a running cluster',
          (z) => inventoryOptions(deployOptions(z)).usage('$0 testbed up --instances N [options] [-- options for troupe deploy up]'),
          (args) =>
            setJob(() =>
              withTestbed(args, io, async (tb) => {
                const report = await deploy(tb, args, io);
                const file = hosts(tb, report.instances, args.out, args.force, io);
                const extra = args._.slice(2).map(String);
                return deployUp(file, extra, io);
              }),
            ),
        )
        .demandCommand(1, 'Name a testbed command: deploy, status, start, stop, destroy, hosts or up')
        .example('$0 testbed deploy --instances 6', 'six machines over the regions of testbed.yaml')
        .example('$0 testbed status', 'where they are, and how long they have left')
        .example('$0 testbed destroy --yes', 'remove everything the testbed made'),
  );
}

function deployOptions<T>(y: Argv<T>) {
  return y
    .option('instances', { alias: 'n', type: 'number', demandOption: true, describe: 'How many instances the testbed should have' })
    .option('region', { type: 'string', describe: 'Put all N in this region (one of the settings\' regions) instead of spreading them' })
    .option('wait-ssh', { type: 'boolean', default: true, describe: 'Wait until each instance accepts TCP connections on the SSH port (--no-wait-ssh: only until it runs with an address)' });
}

function inventoryOptions<T>(y: Argv<T>) {
  return y
    .option('out', { type: 'string', default: DEFAULT_INVENTORY_FILE, describe: 'The inventory file to write' })
    .option('force', { type: 'boolean', default: false, describe: 'Overwrite the file even when troupe testbed did not write it' });
}

async function withTestbed(args: { settings: string; profile?: string; 'wait-ssh'?: boolean }, io: TestbedIo, work: (tb: Testbed) => Promise<number>): Promise<number> {
  // The SDK warns on every run under Node 20 that its releases from 2027 on need Node 22; the
  // version is pinned, so the warning says nothing about this program. An explicit setting wins.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const settings = loadTestbedSettings(args.settings);
  const { Testbed } = await import('../testbed/testbed.js');
  const tb = new Testbed({
    settings,
    access: args.profile !== undefined ? { profile: args.profile } : {},
    ...(args['wait-ssh'] === false ? { probe: null } : {}),
    onProgress: (_region, line) => io.error(line),
  });
  try {
    return await work(tb);
  } finally {
    tb.close();
  }
}

async function deploy(tb: Testbed, args: { instances: number; region?: string }, io: TestbedIo) {
  const report = await tb.deploy({ instances: args.instances, region: args.region });
  const created = report.created.map((i) => `${i.name} (${i.region})`);
  io.print(`testbed ${tb.settings.id}: ${report.instances.length} instance${report.instances.length === 1 ? '' : 's'}; created ${created.length === 0 ? 'none' : created.join(', ')}${report.started.length > 0 ? `; started ${report.started.map((i) => i.name).join(', ')}` : ''}`);
  for (const s of report.surplus) io.print(`${s.region}: ${s.count} more than asked for, left alone (troupe testbed stop --instances ${s.count} or destroy)`);
  return report;
}

function showStatus(tb: Testbed, instances: TestbedInstance[], json: boolean, io: TestbedIo): void {
  const now = Date.now();
  if (json) {
    io.print(JSON.stringify({ testbed: tb.settings.id, regions: tb.settings.regions, instances: instances.map((i) => ({ ...i, timeLeftMs: i.expires ? Math.max(0, i.expires.getTime() - now) : null, ssh: sshLine(tb, i) })) }, null, 2));
    return;
  }
  if (instances.length === 0) {
    io.print(`testbed ${tb.settings.id}: no instances in ${tb.settings.regions.join(', ')}`);
    return;
  }
  for (const region of tb.settings.regions) {
    const here = instances.filter((i) => i.region === region);
    if (here.length === 0) continue;
    io.print(`${region}:`);
    const rows = here.map((i) => [i.instanceId, i.name, i.type, i.state, i.publicAddress ?? '-', i.launched ? i.launched.toISOString().replace(/\.\d+Z$/, 'Z') : '-', i.expires ? duration(Math.max(0, i.expires.getTime() - now)) : '-', sshLine(tb, i) ?? '-']);
    for (const line of table(['instance', 'name', 'type', 'state', 'address', 'launched', 'time left', 'ssh'], rows)) io.print(`  ${line}`);
  }
}

function sshLine(tb: Testbed, i: TestbedInstance): string | undefined {
  if (i.publicAddress === undefined) return undefined;
  const s = tb.settings;
  return `ssh -i ${s.identityFile}${s.sshPort !== 22 ? ` -p ${s.sshPort}` : ''} ${s.user}@${i.publicAddress}`;
}

function report(what: string, instances: TestbedInstance[], io: TestbedIo): void {
  io.print(instances.length === 0 ? `${what} none` : `${what} ${instances.map((i) => `${i.name} (${i.region})`).join(', ')}`);
}

async function destroy(tb: Testbed, yes: boolean, allRegions: boolean, io: TestbedIo): Promise<number> {
  const regions = allRegions ? await tb.accountRegions() : tb.settings.regions;
  const found = (await tb.resources(regions)).filter((r) => r.instances.length + r.securityGroups.length + r.keyPairs.length > 0);
  if (found.length === 0) {
    io.print(`testbed ${tb.settings.id}: nothing to remove in ${regions.join(', ')}`);
    return 0;
  }
  const { summary } = await import('../testbed/testbed.js');
  for (const line of describeResources(found, summary)) io.print(line);
  if (!yes && !(await confirm(`Remove all of this (testbed ${tb.settings.id})? [y/N] `, io))) {
    throw new TestbedError(ErrorCodes.TESTBED_NOT_CONFIRMED, 'nothing removed: not confirmed (answer y, or pass --yes)');
  }
  const removed = (await tb.destroy(found.map((r) => r.region))).filter((r) => r.instances.length + r.securityGroups.length + r.keyPairs.length > 0);
  io.print(`testbed ${tb.settings.id}: removed`);
  for (const line of describeResources(removed, summary)) io.print(line);
  return 0;
}

function describeResources(found: RegionResources[], summary: (r: RegionResources) => string): string[] {
  const lines: string[] = [];
  for (const r of found) {
    lines.push(`${r.region}: ${summary(r)}`);
    for (const i of r.instances) lines.push(`  instance ${i.instanceId} ${i.name} (${i.state})`);
    for (const g of r.securityGroups) lines.push(`  security group ${g.groupId} ${g.name}`);
    for (const k of r.keyPairs) lines.push(`  key pair ${k}`);
  }
  return lines;
}

/** One line from stdin: y or yes. End of input (nothing to read, a script) is no. */
function confirm(question: string, io: TestbedIo): Promise<boolean> {
  io.error(question.trimEnd());
  return new Promise((resolve) => {
    const rl = readline.createInterface({ input: process.stdin, terminal: false });
    let answered = false;
    rl.once('line', (line) => {
      answered = true;
      rl.close();
      resolve(/^\s*y(es)?\s*$/i.test(line));
    });
    rl.once('close', () => answered || resolve(false));
  });
}

function hosts(tb: Testbed, instances: TestbedInstance[], out: string, force: boolean, io: TestbedIo): string {
  const inventory = inventoryOf(tb.settings, instances);
  writeInventory(out, tb.settings, inventory, force);
  const manager = inventory.manager.local ? `this machine (${inventory.manager.address})` : inventory.manager.name;
  io.print(`${out}: manager ${manager}, ${inventory.workers.length} worker${inventory.workers.length === 1 ? '' : 's'} (${inventory.workers.map((w) => w.name).join(', ')})`);
  return out;
}

/** `troupe deploy up --inventory FILE …` as a child process with this terminal; its exit status. */
function deployUp(file: string, extra: readonly string[], io: TestbedIo): Promise<number> {
  const args = [BIN, 'deploy', 'up', '--inventory', file, ...extra];
  io.error(`running troupe ${args.slice(1).join(' ')}`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: 'inherit' });
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve(code ?? 128 + (signal ? (os.constants.signals[signal] ?? 0) : 0)));
  });
}
