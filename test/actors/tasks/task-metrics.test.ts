/**
 * The task metrics follow a real TaskTable through its observer: every way a task moves (placed,
 * queued, retried after a lost attempt, finished each way) lands in the counters, gauges and
 * histograms as docs/metrics.md says; Russula runs and steps by outcome.
 */
import { expect } from 'chai';
import promClient, { type Registry } from 'prom-client';
import { registerTaskMetrics, type TaskMetrics } from '../../../actors/tasks/task-metrics.js';
import { TaskTable } from '../../../actors/tasks/task-table.js';
import { ClusterSystem } from '../../../src/cluster/cluster-system.js';
import { metricsRegistry } from '../../../src/cluster/cluster-metrics.js';
import { silentLogger } from '../../../src/log.js';
import { testPki } from '../../fixtures/pki.js';

describe('unit: task metrics from the task table', () => {
  let system: ClusterSystem;
  let registry: Registry;
  let metrics: TaskMetrics;
  let table: TaskTable;
  before(async () => {
    system = await ClusterSystem.start({ identity: testPki().identity('manager'), listen: { host: '127.0.0.1', port: 0 }, log: silentLogger() });
  });
  after(() => system.shutdown());
  beforeEach(() => {
    registry = metricsRegistry();
    metrics = registerTaskMetrics(registry);
    table = new TaskTable(undefined, metrics.observer);
  });

  const value = async (name: string, labels: Record<string, string> = {}) => {
    const m = await registry.getSingleMetric(name)!.get();
    const v = m.values.find((x) => Object.entries(labels).every(([k, l]) => x.labels[k] === l) && (name.endsWith('_seconds') ? (x as { metricName?: string }).metricName === `${name}_count` : true));
    return v?.value;
  };
  const spec = (id: string) => ({ id, command: 'true', env: {}, timeoutMs: 0 });
  const add = (id: string) => table.add(spec(id), { selector: '', retries: 1, subscribers: [], broadcast: null, now: Date.now() });
  const result = (exitCode: number, outcome: 'exited' | 'timed-out' | 'cancelled' = 'exited') => ({ id: '', outcome, exitCode, signal: null, startedAt: Date.now(), durationMs: 5, stdoutBytes: 0, stderrBytes: 0, error: null });

  it('counts submissions, outcomes, retries; pending and running follow each change', async () => {
    const a = add('t-1');
    const b = add('t-2');
    const c = add('t-3');
    expect([await value('troupe_tasks_submitted_total'), await value('troupe_tasks_pending'), await value('troupe_tasks_running')]).to.deep.equal([3, 3, 0]);
    table.running(a, 'worker-1', Date.now());
    table.running(b, 'worker-1', Date.now());
    expect([await value('troupe_tasks_pending'), await value('troupe_tasks_running'), await value('troupe_task_queue_wait_seconds')]).to.deep.equal([1, 2, 2]);
    table.result(a, result(0), Date.now());
    table.result(b, result(3), Date.now());
    // c: lost once and placed again (a retry waits in the queue anew), then timed out.
    table.running(c, 'worker-2', Date.now());
    table.retry(c, 'worker-2 went down');
    table.running(c, 'worker-1', Date.now());
    table.result(c, result(0, 'timed-out'), Date.now());
    const d = add('t-4');
    table.finish(d, 'cancelled', Date.now());
    expect(await value('troupe_tasks_total', { outcome: 'succeeded' })).to.equal(1);
    expect(await value('troupe_tasks_total', { outcome: 'failed' })).to.equal(1);
    expect(await value('troupe_tasks_total', { outcome: 'timed-out' })).to.equal(1);
    expect(await value('troupe_tasks_total', { outcome: 'cancelled' })).to.equal(1);
    expect(await value('troupe_tasks_total', { outcome: 'lost' })).to.equal(0);
    expect(await value('troupe_tasks_retried_total')).to.equal(1);
    expect([await value('troupe_tasks_pending'), await value('troupe_tasks_running')]).to.deep.equal([0, 0]);
    expect(await value('troupe_task_queue_wait_seconds')).to.equal(4);
    // Run time only for tasks that ran to an end (the cancelled one never ran).
    expect(await value('troupe_task_run_seconds', { outcome: 'succeeded' })).to.equal(1);
    expect(await value('troupe_task_run_seconds', { outcome: 'cancelled' })).to.equal(0);
  });

  it('writes the run-time histogram as prom-client observing the same durations would: buckets, +Inf, sum, count', async () => {
    // Durations on a bound, between bounds, below the first and above the last (+Inf only).
    const durationsMs = [0, 1, 2, 5, 7, 1000, 1001, 3_600_000, 5_000_000];
    for (const [i, durationMs] of durationsMs.entries()) {
      const e = add(`h-${i}`);
      table.running(e, 'worker-1', Date.now());
      table.result(e, { ...result(0), durationMs }, Date.now());
    }
    const own = new promClient.Registry();
    const reference = new promClient.Histogram({ name: 'troupe_task_run_seconds', help: 'Run time of tasks that ran to an end, by outcome', labelNames: ['outcome'], buckets: (registry.getSingleMetric('troupe_task_run_seconds') as unknown as { upperBounds: number[] }).upperBounds, registers: [own] });
    for (const outcome of ['succeeded', 'failed', 'timed-out', 'cancelled', 'lost']) reference.zero({ outcome });
    for (const ms of durationsMs) reference.observe({ outcome: 'succeeded' }, ms / 1000);
    const text = async (r: Registry) => (await r.getSingleMetricAsString('troupe_task_run_seconds'));
    expect(await text(registry)).to.equal(await text(own));
    expect(await text(registry)).to.include('troupe_task_run_seconds_bucket{le="+Inf",outcome="succeeded"} 9');
  });

  it('counts Russula runs and steps by outcome', async () => {
    metrics.russulaRun({ ok: true, steps: [{ ok: true }, { ok: true }] });
    metrics.russulaRun({ ok: false, steps: [{ ok: true }, { ok: false }] });
    expect(await value('troupe_russula_runs_total', { outcome: 'passed' })).to.equal(1);
    expect(await value('troupe_russula_runs_total', { outcome: 'failed' })).to.equal(1);
    expect(await value('troupe_russula_steps_total', { outcome: 'passed' })).to.equal(3);
    expect(await value('troupe_russula_steps_total', { outcome: 'failed' })).to.equal(1);
  });
});
