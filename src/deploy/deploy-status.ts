/**
 * `troupe deploy status`: per host, what SSH and the cluster say: reachable, the installed
 * (current) and running version, running (pid), joined (seen through the cluster, as `up` waits
 * for it), since when, and the last error. Changes nothing. A host that cannot be reached is a
 * row with its error, and makes the report not ok.
 */
import { ClusterWatch } from './cluster-watch.js';
import { checkFanout, chosenHosts, connectHost, fanOut, knownHostsOf, loadCa, type FleetOptions } from './fleet.js';
import { TroupeError, type ErrorCode } from '../errors.js';

export interface HostStatus {
  host: string;
  role: 'worker' | 'manager';
  address: string;
  reachable: boolean;
  /** The version `current` points at. */
  version: string | null;
  running: boolean;
  pid: number | null;
  runningVersion: string | null;
  joined: boolean;
  /** When the node was started (ms since the epoch). */
  since: number | null;
  code?: ErrorCode;
  error?: string;
}

export interface StatusReport {
  ok: boolean;
  manager: { address: string; port: number; reachable: boolean; error?: string };
  hosts: HostStatus[];
}

export async function deployStatus(options: FleetOptions): Promise<StatusReport> {
  const fanout = checkFanout(options.fanout);
  const inventory = options.inventory;
  const specs = chosenHosts(options);
  const knownHosts = knownHostsOf(options);
  const ca = loadCa(inventory.certs);
  let watch: ClusterWatch | undefined;
  let managerError: string | undefined;
  const watching = ClusterWatch.connect({ ca, address: inventory.manager.address, port: inventory.manager.port, timeoutMs: options.connectTimeoutMs ?? 5000 })
    .then(async (w) => {
      watch = w;
      await w.settled();
    })
    .catch((err: Error) => {
      managerError = err instanceof TroupeError ? `${err.code}: ${err.message}` : err.message;
    });
  try {
    const rows = await fanOut(specs, fanout, async (spec): Promise<HostStatus> => {
      const row: HostStatus = { host: spec.name, role: spec.role, address: spec.address, reachable: false, version: null, running: false, pid: null, runningVersion: null, joined: false, since: null };
      try {
        const host = await connectHost(spec, options, knownHosts);
        try {
          const facts = await host.probe();
          row.reachable = true;
          row.version = facts.current?.replace(/^versions\//, '') ?? null;
          row.running = facts.pid !== null;
          row.pid = facts.pid;
          row.runningVersion = facts.runningVersion;
          row.since = facts.since;
        } finally {
          host.session.close();
        }
      } catch (err) {
        row.code = err instanceof TroupeError ? err.code : undefined;
        row.error = err instanceof Error ? err.message : String(err);
      }
      return row;
    });
    await watching;
    for (const row of rows) {
      row.joined = watch?.joined(row.host, row.role) !== undefined || (row.role === 'manager' && watch !== undefined);
      if (row.running && !row.joined && row.error === undefined) row.error = managerError ?? 'running, but not joined to the manager';
    }
    const ok = rows.every((r) => r.reachable && r.running && r.joined);
    return { ok, manager: { address: inventory.manager.address, port: inventory.manager.port, reachable: watch !== undefined, ...(managerError ? { error: managerError } : {}) }, hosts: rows };
  } finally {
    await watch?.close();
  }
}
