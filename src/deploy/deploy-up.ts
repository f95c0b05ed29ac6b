/**
 * `troupe deploy up`: every chosen host converged to "this version of troupe installed, a valid
 * certificate for its name and role, the node running with the inventory's settings and joined".
 *
 * 1. Prepare, on all hosts at once (at most `fanout`): connect (host key checked), look, check
 *    (OS, node, tools), install the bundle if that version is missing, certificates by signing
 *    request if missing, invalid or `renewCertificates`. None of this disturbs a running node.
 * 2. The manager, when deploy runs it: (re)started if not right, then deploy joins it as a client.
 * 3. Workers not running: started, all at once. Workers running something else (another version,
 *    other settings, a renewed certificate): restarted `batch` at a time, each batch waited for
 *    until it has rejoined (a new incarnation in the cluster); the rollout stops at the first failed
 *    host unless `keepGoing`, or once more than `maxFailPercent` of the hosts failed. Workers that are
 *    right: only checked to be joined. A host that fails in step 1 fails alone: the others go on.
 *
 * Re-running changes nothing on a host that is right: no upload, no new certificate, no restart.
 */
import type { Bundle } from './bundle.js';
import { buildBundle } from './bundle.js';
import { ClusterWatch, DEFAULT_JOIN_TIMEOUT_MS } from './cluster-watch.js';
import { DeployError, ErrorCodes, settingError } from '../errors.js';
import type { Logger } from '../log.js';
import { checkFanout, chosenHosts, connectHost, failure, fanOut, knownHostsOf, loadCa, notAttempted, type FleetOptions, type FleetReport, type HostResult } from './fleet.js';
import type { HostSpec } from './inventory.js';
import type { RemoteHost } from './remote-host.js';

/** Workers restarted at once in a rolling update. */
export const DEFAULT_BATCH = 1;

export interface UpOptions extends FleetOptions {
  batch?: number;
  keepGoing?: boolean;
  /** Go on until more than this share (0–100) of the chosen hosts failed. Default: stop at the first. */
  maxFailPercent?: number;
  renewCertificates?: boolean;
  joinTimeoutMs?: number;
  /** The bundle to install. Default: this installation's (buildBundle()). */
  bundle?: Bundle;
  log?: Logger;
}

export interface UpReport extends FleetReport {
  version: string;
}

interface Prepared {
  spec: HostSpec;
  host: RemoteHost;
  done: string[];
  started: number;
  args: string[];
  certificateChanged: boolean;
}

export async function deployUp(options: UpOptions): Promise<UpReport> {
  const fanout = checkFanout(options.fanout);
  const batch = options.batch ?? DEFAULT_BATCH;
  if (!Number.isInteger(batch) || batch < 1) throw settingError('batch', options.batch, 'a whole number of hosts, at least 1');
  if (options.maxFailPercent !== undefined && !(options.maxFailPercent >= 0 && options.maxFailPercent <= 100)) throw settingError('max-fail', options.maxFailPercent, 'a percentage from 0 to 100');
  const inventory = options.inventory;
  const specs = chosenHosts(options);
  const ca = loadCa(inventory.certs);
  const knownHosts = knownHostsOf(options);
  const bundle = options.bundle ?? (await buildBundle());
  const joinTimeoutMs = options.joinTimeoutMs ?? DEFAULT_JOIN_TIMEOUT_MS;
  const progress = options.onProgress ?? (() => {});
  const results = new Map<string, HostResult>();
  const prepared: Prepared[] = [];

  // 1. prepare
  await fanOut(specs, fanout, async (spec) => {
    const started = Date.now();
    const done: string[] = [];
    let host: RemoteHost | undefined;
    try {
      progress(spec.name, 'connecting');
      host = await connectHost(spec, options, knownHosts);
      done.push('connected');
      progress(spec.name, 'checking the host');
      await host.probe();
      host.check();
      progress(spec.name, `installing ${bundle.id}`);
      if (await host.install(bundle)) done.push('uploaded');
      progress(spec.name, 'certificates');
      const certificateChanged = await host.certificates(ca, bundle.id, inventory.manager, options.renewCertificates ?? false);
      if (certificateChanged) done.push('certificate');
      prepared.push({ spec, host, done, started, args: host.args(inventory.manager), certificateChanged });
    } catch (err) {
      host?.session.close();
      results.set(spec.name, failure(spec, err, done, started));
      progress(spec.name, `failed: ${(err as Error).message}`);
    }
  });

  // Only failed starts count towards stopping the rollout: a host that failed in step 1 changed nothing.
  let failures = 0;
  prepared.sort((a, b) => specs.indexOf(a.spec) - specs.indexOf(b.spec)); // the rollout goes in inventory order
  const allowed = options.keepGoing ? Infinity : options.maxFailPercent !== undefined ? Math.floor((options.maxFailPercent * specs.length) / 100) : 0;
  let watch: ClusterWatch | undefined;
  try {
    // 2. the manager
    const manager = prepared.find((p) => p.spec.role === 'manager');
    if (manager) {
      try {
        const restart = !manager.host.isRight(bundle.id, manager.args) || manager.certificateChanged;
        if (restart) await restartOn(manager, bundle.id, progress);
        progress(manager.spec.name, 'waiting for the manager');
        watch = await ClusterWatch.connect({ ca, address: inventory.manager.address, port: inventory.manager.port, timeoutMs: joinTimeoutMs, log: options.log });
        manager.done.push('joined');
        finish(manager, results, progress);
      } catch (err) {
        results.set(manager.spec.name, failure(manager.spec, err, manager.done, manager.started));
        failures++;
      }
    }
    const workers = prepared.filter((p) => p.spec.role === 'worker');
    if (workers.length === 0) return report(specs, results, bundle);
    if (!watch) {
      try {
        watch = await ClusterWatch.connect({ ca, address: inventory.manager.address, port: inventory.manager.port, timeoutMs: Math.min(joinTimeoutMs, 15_000), log: options.log });
      } catch (err) {
        for (const w of workers) results.set(w.spec.name, failure(w.spec, err, w.done, w.started));
        return report(specs, results, bundle);
      }
    }
    await watch.settled();
    const w = watch;

    // 3. workers
    const fresh = workers.filter((p) => p.host.facts.pid === null);
    const stale = workers.filter((p) => p.host.facts.pid !== null && (!p.host.isRight(bundle.id, p.args) || p.certificateChanged));
    const right = workers.filter((p) => !fresh.includes(p) && !stale.includes(p));
    await fanOut([...fresh, ...right], fanout, async (p) => {
      try {
        if (fresh.includes(p)) await startAndJoin(p, w, bundle.id, joinTimeoutMs, progress, undefined);
        else {
          progress(p.spec.name, 'checking it has joined');
          await w.waitJoined(p.spec.name, { timeoutMs: joinTimeoutMs });
        }
        finish(p, results, progress);
      } catch (err) {
        failures++;
        results.set(p.spec.name, failure(p.spec, err, p.done, p.started));
        progress(p.spec.name, `failed: ${(err as Error).message}`);
      }
    });
    for (let i = 0; i < stale.length; i += batch) {
      const group = stale.slice(i, i + batch);
      if (failures > allowed) {
        for (const p of stale.slice(i)) results.set(p.spec.name, notAttempted(p.spec, `the rollout stopped after ${failures} failed host${failures === 1 ? '' : 's'} (--keep-going or --max-fail to go on)`));
        break;
      }
      await Promise.all(
        group.map(async (p) => {
          try {
            const before = w.joined(p.spec.name)?.incarnation;
            await startAndJoin(p, w, bundle.id, joinTimeoutMs, progress, before);
            p.done.push('restarted');
            finish(p, results, progress);
          } catch (err) {
            failures++;
            results.set(p.spec.name, failure(p.spec, err, p.done, p.started));
            progress(p.spec.name, `failed: ${(err as Error).message}`);
          }
        }),
      );
    }
    return report(specs, results, bundle);
  } finally {
    for (const p of prepared) p.host.session.close();
    await watch?.close();
  }
}

async function restartOn(p: Prepared, version: string, progress: (host: string, step: string) => void): Promise<number> {
  if (p.host.facts.pid !== null) {
    progress(p.spec.name, 'stopping the old node');
    await p.host.stop();
  }
  progress(p.spec.name, `starting ${p.spec.role} ${version}`);
  const pid = await p.host.start(version, p.args);
  p.done.push('started');
  return pid;
}

async function startAndJoin(p: Prepared, watch: ClusterWatch, version: string, timeoutMs: number, progress: (host: string, step: string) => void, notIncarnation: string | undefined): Promise<void> {
  const pid = await restartOn(p, version, progress);
  progress(p.spec.name, 'waiting until it has joined');
  // The node dying before it joins ends the wait at once, with what it printed.
  const died = p.host.exited(pid, timeoutMs).then(async (exited) => {
    if (!exited) return new Promise<never>(() => {});
    const tail = await p.host.outputTail().catch(() => '');
    throw new DeployError(ErrorCodes.JOIN_TIMEOUT, `${p.spec.name}: the node exited before it joined${tail ? `: ${tail}` : ''}`);
  });
  died.catch(() => {});
  await watch.waitJoined(p.spec.name, { timeoutMs, notIncarnation, abort: died });
  p.done.push('joined');
  await p.host.prune(version);
}

function finish(p: Prepared, results: Map<string, HostResult>, progress: (host: string, step: string) => void): void {
  results.set(p.spec.name, { host: p.spec.name, role: p.spec.role, ok: true, done: p.done, ms: Date.now() - p.started });
  progress(p.spec.name, p.done.some((d) => d !== 'connected' && d !== 'joined') ? `done (${p.done.join(', ')})` : 'already right');
}

function report(specs: readonly HostSpec[], results: Map<string, HostResult>, bundle: Bundle): UpReport {
  const list = specs.map((s) => results.get(s.name) ?? notAttempted(s, 'not reached'));
  return { ok: list.every((r) => r.ok), results: list, version: bundle.id };
}
