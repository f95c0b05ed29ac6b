/**
 * `troupe deploy up|status|stop|down|logs`: the inventory read, the work done by src/deploy/, and
 * what a person sees: progress per host on stderr (a live block on a terminal, otherwise one line
 * per host and step), then a summary table on stdout. The exit status is 0 only when every chosen
 * host succeeded.
 */
import { deployDown, deployLogs, deployStatus, deployStop, deployUp, loadInventory, type FleetOptions, type FleetReport, type StatusReport } from '../deploy/index.js';
import type { Argv, CommandModule } from 'yargs';
import { DEFAULT_BATCH, DEFAULT_FANOUT, DEFAULT_INVENTORY_FILE, DEFAULT_LOG_LINES } from '../deploy/index.js';
import { DEFAULT_CONNECT_TIMEOUT_MS as DEFAULT_SSH_CONNECT_TIMEOUT_MS } from '../deploy/ssh-session.js';
import { DEPLOY_SUMMARY } from './command-summaries.js';
import { duration, table } from './format.js';

export interface DeployCommand {
  action: 'up' | 'status' | 'stop' | 'down';
  inventory: string;
  hosts?: string;
  fanout?: number;
  knownHosts?: string;
  acceptNewHostKeys: boolean;
  connectTimeoutMs?: number;
  batch?: number;
  keepGoing?: boolean;
  maxFailPercent?: number;
  renewCertificates?: boolean;
  json?: boolean;
  print: (line: string) => void;
}

export async function runDeployCommand(options: DeployCommand): Promise<number> {
  const inventory = loadInventory(options.inventory);
  const progress = new Progress(process.stderr);
  const fleet: FleetOptions = {
    inventory,
    hosts: options.hosts,
    fanout: options.fanout,
    knownHosts: options.knownHosts,
    acceptNewHostKeys: options.acceptNewHostKeys,
    connectTimeoutMs: options.connectTimeoutMs,
    onProgress: options.json ? undefined : (host, step) => progress.step(host, step),
  };
  if (options.action === 'status') {
    const report = await deployStatus(fleet);
    progress.end();
    if (options.json) options.print(JSON.stringify(report, null, 2));
    else options.print(statusTable(report).join('\n'));
    return report.ok ? 0 : 1;
  }
  let report: FleetReport & { version?: string };
  if (options.action === 'up') {
    report = await deployUp({ ...fleet, batch: options.batch, keepGoing: options.keepGoing, maxFailPercent: options.maxFailPercent, renewCertificates: options.renewCertificates });
  } else if (options.action === 'stop') {
    report = await deployStop(fleet);
  } else {
    report = await deployDown(fleet);
  }
  progress.end();
  if (options.json) {
    options.print(JSON.stringify(report, null, 2));
  } else {
    const rows = report.results.map((r) => [r.host, r.ok ? 'ok' : 'no', r.ok ? describeDone(r.done) : `${r.code}: ${r.error}`]);
    options.print(table(['HOST', 'OK', options.action === 'up' ? `DONE (version ${report.version})` : 'DONE'], rows).join('\n'));
    const failed = report.results.filter((r) => !r.ok).length;
    options.print(failed === 0 ? `all ${report.results.length} hosts ok` : `${failed} of ${report.results.length} hosts failed`);
  }
  return report.ok ? 0 : 1;
}

export interface DeployLogsCommand {
  inventory: string;
  host: string;
  follow: boolean;
  lines: number;
  knownHosts?: string;
  acceptNewHostKeys: boolean;
  connectTimeoutMs?: number;
}

export async function runDeployLogs(options: DeployLogsCommand): Promise<number> {
  const inventory = loadInventory(options.inventory);
  const abort = new AbortController();
  const stop = () => abort.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    await deployLogs({ inventory, host: options.host, follow: options.follow, lines: options.lines, knownHosts: options.knownHosts, acceptNewHostKeys: options.acceptNewHostKeys, connectTimeoutMs: options.connectTimeoutMs, write: (d) => process.stdout.write(d), signal: abort.signal });
    return 0;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

function describeDone(done: readonly string[]): string {
  const did = done.filter((d) => d !== 'connected');
  if (did.length === 0) return 'already right';
  return did.join(', ');
}

function statusTable(report: StatusReport): string[] {
  const now = Date.now();
  const rows = report.hosts.map((h) => [
    h.host,
    h.role,
    h.reachable ? 'yes' : 'no',
    h.runningVersion ?? h.version ?? '-',
    h.running ? `yes (pid ${h.pid})` : 'no',
    h.joined ? 'yes' : 'no',
    h.since !== null ? `${duration(Math.max(0, now - h.since))} ago` : '-',
    h.error ? `${h.code ? `${h.code}: ` : ''}${h.error}` : '-',
  ]);
  const managerLine = `manager ${report.manager.address}:${report.manager.port}: ${report.manager.reachable ? 'reachable' : `not reachable${report.manager.error ? ` (${report.manager.error})` : ''}`}`;
  return [managerLine, ...table(['HOST', 'ROLE', 'REACHABLE', 'VERSION', 'RUNNING', 'JOINED', 'SINCE', 'LAST ERROR'], rows)];
}

/** Progress on stderr: a live block of one line per host on a terminal, else one line per step. */
class Progress {
  #hosts = new Map<string, string>();
  #drawn = 0;

  constructor(readonly out: NodeJS.WriteStream) {}

  step(host: string, step: string): void {
    if (!this.out.isTTY) {
      this.out.write(`${host}: ${step}\n`);
      return;
    }
    this.#hosts.set(host, step);
    const width = Math.max(...[...this.#hosts.keys()].map((h) => h.length));
    const columns = this.out.columns || 100;
    const lines = [...this.#hosts].map(([h, s]) => `${h.padEnd(width)}  ${s}`.slice(0, columns - 1));
    this.out.write(`${this.#drawn > 0 ? `\x1b[${this.#drawn}A` : ''}${lines.map((l) => `\x1b[2K${l}`).join('\n')}\n`);
    this.#drawn = lines.length;
  }

  end(): void {
    this.#drawn = 0;
  }
}

export interface DeployCliHooks {
  print: (line: string) => void;
  setJob(job: () => Promise<number>): void;
  /** main.ts's checks of a count and of seconds given on the command line (seconds → milliseconds). */
  count(option: string, value: number): number;
  seconds(option: string, value: number): number;
}

/** The `deploy` command and its subcommands (up, status, stop, down, logs), for main.ts's yargs. */
export function deployCommand(hooks: DeployCliHooks): CommandModule {
  return {
    ...DEPLOY_SUMMARY,
    handler: () => {},
    builder: (y: Argv) => {
      const common = <T>(z: Argv<T>) =>
        z
          .option('inventory', { alias: 'i', type: 'string', default: DEFAULT_INVENTORY_FILE, describe: 'The hosts file (YAML, docs/deploy.md)' })
          .option('known-hosts', { type: 'string', describe: 'OpenSSH known_hosts file to check host keys against (default: the inventory\'s knownHosts, else ~/.ssh/known_hosts)' })
          .option('accept-new-host-keys', { type: 'boolean', default: false, describe: 'Record the keys of hosts not yet known (as ssh -o StrictHostKeyChecking=accept-new); a changed key is always refused' })
          .option('connect-timeout', { type: 'number', default: DEFAULT_SSH_CONNECT_TIMEOUT_MS / 1000, describe: 'Seconds for an SSH connection (TCP and handshake)' });
      const many = <T>(z: Argv<T>) =>
        common(z)
          .option('hosts', { type: 'string', describe: 'Only these hosts: names, ranges (w[01-04]), groups or tags (@gpu), comma-separated' })
          .option('fanout', { type: 'number', default: DEFAULT_FANOUT, describe: 'Hosts worked on at once' })
          .option('json', { type: 'boolean', default: false, describe: 'The result as JSON on stdout (no progress)' });
      const fleetArgs = (args: Record<string, unknown>) => ({
        inventory: args.inventory as string,
        hosts: args.hosts as string | undefined,
        fanout: hooks.count('fanout', args.fanout as number),
        knownHosts: args['known-hosts'] as string | undefined,
        acceptNewHostKeys: args['accept-new-host-keys'] as boolean,
        connectTimeoutMs: hooks.seconds('connect-timeout', args['connect-timeout'] as number),
        json: args.json as boolean,
        print: hooks.print,
      });
      return y
        .command(
          'up',
          'Install, certify, start and wait until joined, on every host that is not already right; roll a new version out batch by batch',
          (z) =>
            many(z)
              .option('batch', { type: 'number', default: DEFAULT_BATCH, describe: 'Running hosts restarted at once in a rolling update' })
              .option('keep-going', { type: 'boolean', default: false, describe: 'Do not stop the rollout at the first failed host' })
              .option('max-fail', { type: 'number', describe: 'Stop the rollout once more than this percentage of the hosts failed' })
              .option('renew-certificates', { type: 'boolean', default: false, describe: 'Issue new certificates (new keys made on the hosts) and restart' })
              .example('$0 deploy up', 'every host of troupe-hosts.yaml')
              .example('$0 deploy up --hosts @gpu --accept-new-host-keys', 'the hosts tagged gpu, recording new host keys'),
          (args) => {
            const options = { ...fleetArgs(args), action: 'up' as const, batch: hooks.count('batch', args.batch), keepGoing: args['keep-going'], maxFailPercent: args['max-fail'], renewCertificates: args['renew-certificates'] };
            hooks.setJob(() => runDeployCommand(options));
          },
        )
        .command('status', 'A table per host: reachable, version, running, joined, since, last error', (z) => many(z), (args) => {
          const options = { ...fleetArgs(args), action: 'status' as const };
          hooks.setJob(() => runDeployCommand(options));
        })
        .command('stop', 'Stop the nodes (everything stays installed; up starts them again)', (z) => many(z), (args) => {
          const options = { ...fleetArgs(args), action: 'stop' as const };
          hooks.setJob(() => runDeployCommand(options));
        })
        .command('down', 'Stop the nodes and remove everything deploy installed on the hosts', (z) => many(z), (args) => {
          const options = { ...fleetArgs(args), action: 'down' as const };
          hooks.setJob(() => runDeployCommand(options));
        })
        .command(
          'logs <host>',
          'The log and output of the node on one host',
          (z) =>
            common(z)
              .positional('host', { type: 'string', demandOption: true, describe: 'The host (its name in the inventory)' })
              .option('follow', { alias: 'f', type: 'boolean', default: false, describe: 'Keep printing new lines (Ctrl-C stops)' })
              .option('lines', { alias: 'n', type: 'number', default: DEFAULT_LOG_LINES, describe: 'Lines of each file to show first' }),
          (args) => {
            const options = {
              inventory: args.inventory,
              host: args.host,
              follow: args.follow,
              lines: hooks.count('lines', args.lines),
              knownHosts: args['known-hosts'],
              acceptNewHostKeys: args['accept-new-host-keys'],
              connectTimeoutMs: hooks.seconds('connect-timeout', args['connect-timeout']),
            };
            hooks.setJob(() => runDeployLogs(options));
          },
        )
        .demandCommand(1, 'Name a deploy command: up, status, stop, down or logs HOST');
    },
  };
}
