/**
 * The process' own Prometheus metrics, on any node that serves them: CPU, memory and event loop
 * lag, under the names prom-client's default set gives them (with the `troupe_` prefix), and only
 * those. See docs/metrics.md.
 *
 * Why not prom-client's `collectDefaultMetrics`: it costs more at each scrape than everything
 * else a manager exports together (measured with prom-client 15.1, December 2026: its event loop
 * gauges ask Node's delay histogram for its mean and standard deviation, which walk every bucket,
 * ~0.4 ms; resident memory reads /proc/self/status, open fds list /proc/self/fd, the handle and
 * request counts build arrays of every live handle, all growing with the connections a manager
 * holds), and its GC histogram runs JavaScript at every collection. Here each scrape costs a few
 * system calls' worth: `process.cpuUsage()`, `process.memoryUsage()`, and the lag samples taken
 * since the last scrape, sorted.
 *
 * Event loop lag: one process-wide sampler (a tick of the heartbeat clock every DEFAULT_LAG_SAMPLE_MS,
 * unref'd, started with the first registry) records how late each of its ticks ran into a ring of the last
 * LAG_SAMPLES; a scrape reads the samples taken since that registry's last scrape (min, max, mean,
 * stddev, p50, p90, p99, in seconds), and `troupe_nodejs_eventloop_lag_seconds` is how long a
 * setImmediate took to run at the previous scrape (prom-client's meaning).
 */
import promClient, { type Registry } from 'prom-client';
import { addTick, heartbeatTickMs } from '../transport/heartbeat-clock.js';
import { DEFAULT_HEARTBEAT_INTERVAL_MS } from '../transport/settings.js';

/**
 * How often the event loop's lag is sampled: on the clock the connections' heartbeats already run
 * on (src/transport/heartbeat-clock.ts, a quarter of DEFAULT_HEARTBEAT_INTERVAL_MS: 250 ms), so
 * that sampling wakes the process no more than it is woken anyway. A timer of its own was a wake-up
 * of a process that may have nothing else to do (bench:metrics: ten a second cost an idle manager
 * about 1 ms/s of CPU). Under another heartbeat interval, the clock of this period runs for the
 * samples alone. The connections' ticks that run before it in the same turn count as lag, as any
 * callback ahead of a timer would.
 */
export const DEFAULT_LAG_SAMPLE_MS = heartbeatTickMs(DEFAULT_HEARTBEAT_INTERVAL_MS);
/** Lag samples kept (at one per 250 ms: the last 4 minutes; a scrape reads at most these). */
const LAG_SAMPLES = 1024;

/** The process-wide lag sampler: a ring of how late each tick ran (ms), and how many were taken. */
const lag = {
  ring: new Float64Array(LAG_SAMPLES),
  taken: 0,
  started: false,
};

function startLagSampler(): void {
  if (lag.started) return;
  lag.started = true;
  let last = performance.now();
  // Never removed: one per process, and the clock's timer is unref'd (it keeps nothing alive).
  addTick(DEFAULT_LAG_SAMPLE_MS, () => {
    const now = performance.now();
    lag.ring[lag.taken % LAG_SAMPLES] = Math.max(0, now - last - DEFAULT_LAG_SAMPLE_MS);
    lag.taken++;
    last = now;
  });
}

/** Registers the process metrics on `registry`. */
export function registerProcessMetrics(registry: Registry, prefix = 'troupe_'): void {
  const registers = [registry];
  startLagSampler();

  // Each group's first metric collects for the group: a registry reads the metrics in the order
  // they were registered, each as soon as its own collect has run.
  let cpuBefore = process.cpuUsage();
  new promClient.Counter({
    name: `${prefix}process_cpu_user_seconds_total`,
    help: 'Total user CPU time spent in seconds.',
    registers,
    collect() {
      const now = process.cpuUsage();
      const user = (now.user - cpuBefore.user) / 1e6;
      const system = (now.system - cpuBefore.system) / 1e6;
      cpuBefore = now;
      this.inc(user);
      cpuSystem.inc(system);
      cpuTotal.inc(user + system);
    },
  });
  const cpuSystem = new promClient.Counter({ name: `${prefix}process_cpu_system_seconds_total`, help: 'Total system CPU time spent in seconds.', registers });
  const cpuTotal = new promClient.Counter({ name: `${prefix}process_cpu_seconds_total`, help: 'Total user and system CPU time spent in seconds.', registers });
  const startTime = new promClient.Gauge({ name: `${prefix}process_start_time_seconds`, help: 'Start time of the process since unix epoch in seconds.', registers });
  startTime.set(Math.round(performance.timeOrigin / 1000));

  new promClient.Gauge({
    name: `${prefix}process_resident_memory_bytes`,
    help: 'Resident memory size in bytes.',
    registers,
    collect() {
      const m = process.memoryUsage();
      this.set(m.rss);
      heapTotal.set(m.heapTotal);
      heapUsed.set(m.heapUsed);
      external.set(m.external);
    },
  });
  const heapTotal = new promClient.Gauge({ name: `${prefix}nodejs_heap_size_total_bytes`, help: 'Process heap size from Node.js in bytes.', registers });
  const heapUsed = new promClient.Gauge({ name: `${prefix}nodejs_heap_size_used_bytes`, help: 'Process heap size used from Node.js in bytes.', registers });
  const external = new promClient.Gauge({ name: `${prefix}nodejs_external_memory_bytes`, help: 'Node.js external memory size in bytes.', registers });

  const [major, minor, patch] = process.version.slice(1).split('.').map(Number);
  new promClient.Gauge({ name: `${prefix}nodejs_version_info`, help: 'Node.js version info.', labelNames: ['version', 'major', 'minor', 'patch'], registers }).set({ version: process.version, major: major!, minor: minor!, patch: patch! }, 1);

  let read = lag.taken;
  let immediateLag = 0;
  new promClient.Gauge({
    name: `${prefix}nodejs_eventloop_lag_seconds`,
    help: 'Lag of event loop in seconds.',
    registers,
    collect() {
      this.set(immediateLag);
      const start = performance.now();
      setImmediate(() => (immediateLag = (performance.now() - start) / 1000));
      const n = Math.min(lag.taken - read, LAG_SAMPLES);
      read = lag.taken;
      // No tick since the last scrape (scraped faster than it samples): the last figures stand.
      if (n === 0) return;
      const samples = new Float64Array(n);
      for (let i = 0; i < n; i++) samples[i] = lag.ring[(lag.taken - n + i) % LAG_SAMPLES]!;
      samples.sort();
      let sum = 0;
      for (const s of samples) sum += s;
      const mean = sum / n;
      let squares = 0;
      for (const s of samples) squares += (s - mean) ** 2;
      const at = (q: number) => samples[Math.min(n - 1, Math.ceil(q * n) - 1)]! / 1000;
      lagMin.set(samples[0]! / 1000);
      lagMax.set(samples[n - 1]! / 1000);
      lagMean.set(mean / 1000);
      lagStddev.set(Math.sqrt(squares / n) / 1000);
      lagP50.set(at(0.5));
      lagP90.set(at(0.9));
      lagP99.set(at(0.99));
    },
  });
  // Set by the lag gauge's collect above: the samples since this registry's last scrape.
  const gauge = (name: string, help: string) => new promClient.Gauge({ name: `${prefix}nodejs_eventloop_lag_${name}_seconds`, help, registers });
  const lagMin = gauge('min', 'The minimum recorded event loop delay.');
  const lagMax = gauge('max', 'The maximum recorded event loop delay.');
  const lagMean = gauge('mean', 'The mean of the recorded event loop delays.');
  const lagStddev = gauge('stddev', 'The standard deviation of the recorded event loop delays.');
  const lagP50 = gauge('p50', 'The 50th percentile of the recorded event loop delays.');
  const lagP90 = gauge('p90', 'The 90th percentile of the recorded event loop delays.');
  const lagP99 = gauge('p99', 'The 99th percentile of the recorded event loop delays.');
}
