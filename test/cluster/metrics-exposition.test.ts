/**
 * The exposition (src/cluster/metrics-exposition.ts) writes the very text prom-client's
 * `registry.metrics()` writes: on a manager's registry (cluster, process and task metrics, tasks
 * through a real TaskTable, worker gauges that come and go), and for what it leaves to prom-client
 * (a summary), label values that need escaping, and series reset between scrapes.
 */
import { expect } from 'chai';
import promClient from 'prom-client';
import { registerTaskMetrics } from '../../actors/tasks/task-metrics.js';
import { TaskTable } from '../../actors/tasks/task-table.js';
import type { WorkerInfo } from '../../actors/tasks/worker-info.js';
import { ClusterSystem } from '../../src/cluster/cluster-system.js';
import { metricsRegistry, registerClusterMetrics } from '../../src/cluster/cluster-metrics.js';
import { Exposition } from '../../src/cluster/metrics-exposition.js';
import { silentLogger } from '../../src/log.js';
import { testPki } from '../fixtures/pki.js';

/** The process' own figures move between two scrapes: their values are left out of the comparison. */
const steady = (text: string) => text.replace(/^(troupe_(?:process_cpu|process_resident|nodejs_heap|nodejs_external|nodejs_eventloop)\S*) \S+$/gm, '$1 _');

describe('unit: metrics exposition', () => {
  let system: ClusterSystem;
  before(async () => {
    system = await ClusterSystem.start({ identity: testPki().identity('manager'), listen: { host: '127.0.0.1', port: 0 }, log: silentLogger() });
  });
  after(() => system.shutdown());

  it("writes prom-client's text for a manager's registry, scrape after scrape", async () => {
    const registry = metricsRegistry();
    const detach = registerClusterMetrics(registry, system);
    const metrics = registerTaskMetrics(registry);
    let workers: WorkerInfo[] = [];
    metrics.followWorkers(() => workers);
    const exposition = new Exposition(registry);
    const table = new TaskTable(undefined, metrics.observer);
    const usage = { at: 1_700_000_000_123, cpuPercent: 12.5, load1: 0.25, memoryUsedBytes: 1e9, memoryTotalBytes: 4e9 } as WorkerInfo['usage'];
    const worker = (name: string): WorkerInfo => ({ name, tags: [], platform: 'linux', arch: 'x64', slots: 2, busy: 1, usage });
    try {
      const compare = async () => {
        const ours = await exposition.text();
        expect(steady(ours)).to.equal(steady(await registry.metrics()));
        return ours;
      };
      const first = await compare();
      expect(first).to.include('troupe_task_run_seconds_bucket{le="0.001",outcome="succeeded"} 0\n');
      for (let i = 0; i < 5; i++) {
        const e = table.add({ id: `t-${i}`, command: 'true', env: {}, timeoutMs: 0 }, { selector: '', retries: 0, subscribers: [], broadcast: null, now: Date.now() - 30 });
        table.running(e, 'worker-1', Date.now());
        table.result(e, { id: e.record.id, outcome: 'exited', exitCode: i % 2, signal: null, startedAt: Date.now(), durationMs: 3 * i, stdoutBytes: 0, stderrBytes: 0, error: null }, Date.now());
      }
      workers = [worker('worker-1'), worker('worker-"2"\\\n')];
      const second = await compare();
      expect(second).to.include('troupe_tasks_total{outcome="succeeded"} 3\n');
      expect(second).to.include('troupe_task_run_seconds_bucket{le="0.01",outcome="failed"} 2\n');
      expect(second).to.include('troupe_worker_slots{worker="worker-\\"2\\"\\\\\\n"} 2\n');
      // A worker gone: its series with it.
      workers = [worker('worker-3')];
      const third = await compare();
      expect(third).not.to.include('worker-1');
      expect(third).to.include('troupe_worker_busy_slots{worker="worker-3"} 1\n');
    } finally {
      detach();
    }
  });

  it("leaves what it does not know to prom-client, in the registry's order", async () => {
    const registry = new promClient.Registry();
    const registers = [registry];
    new promClient.Counter({ name: 'a_total', help: 'back\\slash and\nnewline', labelNames: ['l'], registers }).inc({ l: 'x' }, 2);
    new promClient.Summary({ name: 'b_seconds', help: 'a summary', percentiles: [0.5], registers }).observe(1);
    new promClient.Gauge({ name: 'c', help: 'NaN and infinities', labelNames: ['k'], registers }).set({ k: 'nan' }, NaN);
    (registry.getSingleMetric('c') as promClient.Gauge).set({ k: 'inf' }, -Infinity);
    new promClient.Histogram({ name: 'd_seconds', help: 'no series yet', labelNames: ['o'], buckets: [1], registers });
    const text = await new Exposition(registry).text();
    expect(text).to.equal(await registry.metrics());
    expect(text).to.include('b_seconds{quantile="0.5"} 1\n');
    expect(text).to.include('c{k="nan"} Nan\nc{k="inf"} -Inf\n');
  });
});
