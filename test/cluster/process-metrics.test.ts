/**
 * The process metrics (src/cluster/process-metrics.ts): exactly the set docs/metrics.md lists,
 * under prom-client's names, each read at the scrape; the event loop figures in order.
 */
import { expect } from 'chai';
import { metricsRegistry } from '../../src/cluster/cluster-metrics.js';

const NAMES = [
  'troupe_process_cpu_user_seconds_total',
  'troupe_process_cpu_system_seconds_total',
  'troupe_process_cpu_seconds_total',
  'troupe_process_start_time_seconds',
  'troupe_process_resident_memory_bytes',
  'troupe_nodejs_heap_size_total_bytes',
  'troupe_nodejs_heap_size_used_bytes',
  'troupe_nodejs_external_memory_bytes',
  'troupe_nodejs_version_info',
  'troupe_nodejs_eventloop_lag_seconds',
  ...['min', 'max', 'mean', 'stddev', 'p50', 'p90', 'p99'].map((s) => `troupe_nodejs_eventloop_lag_${s}_seconds`),
];

describe('unit: process metrics', () => {
  it('exports CPU, memory and event loop lag under prom-client\'s names, and nothing else', async () => {
    const registry = metricsRegistry();
    expect(registry.getMetricsAsArray().map((m) => m.name).sort()).to.deep.equal([...NAMES].sort());
  });

  it('reads them at the scrape: CPU adds up, memory is the process\', the version is this Node\'s', async () => {
    const registry = metricsRegistry();
    await registry.metrics();
    const before = process.cpuUsage();
    for (let i = 0; i < 2e6; i++) Math.sqrt(i);
    const used = process.cpuUsage(before);
    const text = await registry.metrics();
    const value = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)![1]);
    const [user, system, total] = ['user_', 'system_', ''].map((k) => value(`troupe_process_cpu_${k}seconds_total`));
    expect(total).to.be.closeTo(user! + system!, 1e-9);
    // At least what this test spent since the first scrape (the counter counts from the registry's start).
    expect(total).to.be.at.least((used.user + used.system) / 1e6);
    expect(value('troupe_process_resident_memory_bytes')).to.be.greaterThan(value('troupe_nodejs_heap_size_used_bytes'));
    expect(value('troupe_process_start_time_seconds')).to.be.within(Date.now() / 1000 - process.uptime() - 1, Date.now() / 1000);
    expect(text).to.include(`troupe_nodejs_version_info{version="${process.version}",`);
    const lag = ['min', 'p50', 'p90', 'p99', 'max'].map((s) => value(`troupe_nodejs_eventloop_lag_${s}_seconds`));
    expect([...lag].sort((a, b) => a - b)).to.deep.equal(lag);
  });
});
