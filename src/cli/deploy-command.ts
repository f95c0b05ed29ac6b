/**
 * `troupe deploy up|status|stop|down|logs`: the inventory read, the work done by src/deploy/, and
 * what a person sees: progress per host on stderr (a live block on a terminal, otherwise one line
 * per host and step), then a summary table on stdout. The exit status is 0 only when every chosen
 * host succeeded.
 */
import { deployDown, deployLogs, deployStatus, deployStop, deployUp, loadInventory, type FleetOptions, type FleetReport, type StatusReport } from '../deploy/index.js';
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
