/**
 * The LiveView's pushes to a real watcher (a client node joined over TLS): a view at once, none
 * while nothing changes (however many times the workers' reports are looked for), and one when a
 * worker's usage report is new, found on the heartbeat clock's tick.
 */
import { expect } from 'chai';
import { spawnLiveView, type LiveView } from '../../../actors/tasks/live-view.js';
import type { WorkerInfo } from '../../../actors/tasks/worker-info.js';
import { ActorRef } from '../../../protocols/actor-ref.js';
import { CLIENT_LIVE_VIEW_MESSAGES, MANAGER_LIVE_VIEW_MESSAGES, type ClusterView } from '../../../protocols/live-view.js';
import { ClusterSystem } from '../../../src/cluster/cluster-system.js';
import { silentLogger } from '../../../src/log.js';
import { addTick, removeTick } from '../../../src/transport/heartbeat-clock.js';
import { DEFAULT_HEARTBEAT_INTERVAL_MS } from '../../../src/transport/settings.js';
import { testPki } from '../../fixtures/pki.js';

const CLOCK_MS = DEFAULT_HEARTBEAT_INTERVAL_MS / 4;

/** Resolves after `n` ticks of the heartbeat clock the live view looks at the reports on. */
function ticks(n: number): Promise<void> {
  return new Promise((resolve) => {
    const tick = () => {
      if (--n > 0) return;
      removeTick(CLOCK_MS, tick);
      resolve();
    };
    addTick(CLOCK_MS, tick);
  });
}

describe('unit: live view pushes', () => {
  let manager: ClusterSystem;
  let client: ClusterSystem;
  let live: LiveView;
  before(async () => {
    manager = await ClusterSystem.start({ identity: testPki().identity('manager'), listen: { host: '127.0.0.1', port: 0 }, messages: MANAGER_LIVE_VIEW_MESSAGES, log: silentLogger() });
    client = await ClusterSystem.start({ identity: testPki().identity('client-1'), join: { host: '127.0.0.1', port: manager.address!.port }, messages: CLIENT_LIVE_VIEW_MESSAGES, log: silentLogger() });
    await client.ready();
  });
  after(async () => {
    live?.close();
    await client?.shutdown();
    await manager?.shutdown();
  });

  it('sends a view at once, none while nothing changes, and one for a new usage report', async () => {
    live = spawnLiveView(manager);
    const usage = { worker: "worker-1", running: 0, slots: 2, at: 1_000, cpuPercent: 10, load1: 0.5, memoryUsedBytes: 1e9, memoryTotalBytes: 4e9 };
    const worker: WorkerInfo = { name: 'worker-1', tags: ['gpu'], platform: 'linux', arch: 'x64', slots: 2, busy: 0, usage };
    live.followWorkers(() => [worker]);
    const views: ClusterView[] = [];
    let next: (() => void) | undefined;
    const subscriber = client.receiver((msg) => {
      views.push(msg as ClusterView);
      next?.();
    });
    const view = () => new Promise<void>((resolve) => (next = resolve));
    let arrived = view();
    client.dispatch(new ActorRef(manager.node, 'live-view'), { type: 'watchCluster', subscriber });
    await arrived;
    expect(views.map((v) => v.workers.map((w) => [w.worker, w.usage?.at]))).to.deep.equal([[['worker-1', 1_000]]]);
    // Three looks at the reports (one a second) with nothing new: no view.
    await ticks(3 * (1000 / CLOCK_MS) + 1);
    expect(views).to.have.length(1);
    arrived = view();
    worker.usage = { ...usage, at: 2_000, cpuPercent: 55 };
    await arrived;
    expect(views).to.have.length(2);
    expect(views[1]!.workers[0]!.usage).to.deep.equal(worker.usage);
  });
});
