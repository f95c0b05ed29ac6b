/**
 * `troupe deploy stop` (the node stopped, everything left installed: `up` starts it again) and
 * `troupe deploy down` (stopped, then the host's deploy directory and any systemd unit removed:
 * nothing of troupe is left there, the node's private key included). Workers go first and the
 * manager last, so that workers do not spend the time redialling a manager that is gone.
 */
import { checkFanout, chosenHosts, connectHost, failure, fanOut, knownHostsOf, type FleetOptions, type FleetReport, type HostResult } from './fleet.js';
import type { HostSpec } from './inventory.js';

export async function deployStop(options: FleetOptions): Promise<FleetReport> {
  return onEachHost(options, 'stop');
}

export async function deployDown(options: FleetOptions): Promise<FleetReport> {
  return onEachHost(options, 'down');
}

async function onEachHost(options: FleetOptions, what: 'stop' | 'down'): Promise<FleetReport> {
  const fanout = checkFanout(options.fanout);
  const specs = chosenHosts(options);
  const knownHosts = knownHostsOf(options);
  const progress = options.onProgress ?? (() => {});
  const job = async (spec: HostSpec): Promise<HostResult> => {
    const started = Date.now();
    const done: string[] = [];
    try {
      progress(spec.name, 'connecting');
      const host = await connectHost(spec, options, knownHosts);
      done.push('connected');
      try {
        await host.probe();
        progress(spec.name, what === 'stop' ? 'stopping' : 'stopping and removing');
        if (what === 'stop') {
          if (await host.stop()) done.push('stopped');
        } else {
          const running = host.facts.pid !== null;
          await host.remove();
          if (running) done.push('stopped');
          done.push('removed');
        }
      } finally {
        host.session.close();
      }
      progress(spec.name, `done (${done.join(', ')})`);
      return { host: spec.name, role: spec.role, ok: true, done, ms: Date.now() - started };
    } catch (err) {
      progress(spec.name, `failed: ${(err as Error).message}`);
      return failure(spec, err, done, started);
    }
  };
  const workers = specs.filter((s) => s.role === 'worker');
  const managers = specs.filter((s) => s.role === 'manager');
  const results = [...(await fanOut(workers, fanout, job)), ...(await fanOut(managers, fanout, job))];
  const ordered = specs.map((s) => results.find((r) => r.host === s.name)!);
  return { ok: ordered.every((r) => r.ok), results: ordered };
}
