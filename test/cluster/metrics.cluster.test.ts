/**
 * `--metrics` as an operator uses it: a real manager (the CLI, two local workers, real bash) with its
 * endpoint on a free loopback port, scraped every second by a real Prometheus server (Debian's
 * `prometheus`, installed by .ci/run); the test asks Prometheus' HTTP API, as a dashboard would.
 * `promtool check metrics` must accept the exposition. Bad addresses: one line, exit 1.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { WORKER_KEY } from '../../protocols/receptionist-keys.js';
import { CLIENT_TASK_MESSAGES } from '../../protocols/tasks.js';
import { TaskClient } from '../../actors/tasks/task-client.js';
import { ClusterSystem } from '../../src/cluster/cluster-system.js';
import { silentLogger } from '../../src/log.js';
import { CliProcess, killAllCli } from '../fixtures/cli-process.js';
import { testPki } from '../fixtures/pki.js';

const SUCCEEDING = 5;
const FAILING = 3;

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function getJson(url: string): Promise<any> {
  const res = await fetch(url);
  return res.json();
}

/** Polls an external server's API (never a fixed sleep) until `check` returns a value. */
async function poll<T>(what: string, check: () => Promise<T | undefined>, withinMs = 30_000): Promise<T> {
  const until = Date.now() + withinMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > until) throw new Error(`${what}: not within ${withinMs} ms${last ? ` (last error: ${String(last)})` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe('Prometheus metrics (--metrics) scraped by a real Prometheus', function () {
  this.timeout(60_000);
  let dir: string;
  let manager: CliProcess;
  let metricsUrl: string;
  let prometheus: ChildProcess | undefined;
  let promUrl: string;
  let client: ClusterSystem | undefined;
  let tasks: TaskClient;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-metrics-'));
    manager = CliProcess.start(['manager', '--no-repl', '--certs', testPki().dir, '--host', '127.0.0.1', '--port', '0', '--local-workers', '2', '--metrics', '127.0.0.1:0']);
    const line = await manager.waitForLine(/listening on wss:/);
    const port = Number(/wss:\/\/127\.0\.0\.1:(\d+)/.exec(line)![1]);
    metricsUrl = /metrics on (http:\/\/\S+)$/.exec(line)![1]!;
    const promPort = await freePort();
    promUrl = `http://127.0.0.1:${promPort}`;
    const config = path.join(dir, 'prometheus.yml');
    fs.writeFileSync(
      config,
      ['global:', '  scrape_interval: 1s', '  scrape_timeout: 1s', 'scrape_configs:', '  - job_name: troupe', '    static_configs:', `      - targets: ['${new URL(metricsUrl).host}']`, ''].join('\n'),
    );
    prometheus = spawn('prometheus', [`--config.file=${config}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`], { stdio: 'ignore' });
    client = await ClusterSystem.start({ identity: testPki().identity('client-1'), join: { host: '127.0.0.1', port }, messages: CLIENT_TASK_MESSAGES, log: silentLogger() });
    await client.ready();
    tasks = TaskClient.start(client);
    await new Promise<void>((resolve) => {
      const stop = client!.receptionist.listing(WORKER_KEY, (entries) => {
        if (entries.length === 2) (setImmediate(stop), resolve());
      });
    });
  });

  after(async () => {
    prometheus?.kill('SIGKILL');
    await client?.shutdown();
    await killAllCli();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('counts the tasks run, by outcome, and exports every worker\'s gauges, as Prometheus reads them', async () => {
    const submitted = [
      ...(await Promise.all(Array.from({ length: SUCCEEDING }, () => tasks.submit({ command: 'true' })))),
      ...(await Promise.all(Array.from({ length: FAILING }, () => tasks.submit({ command: 'exit 3' })))),
    ].flat();
    const ended = await Promise.all(submitted.map((t) => tasks.finished(t.id)));
    expect(ended.map((t) => t.status).sort()).to.deep.equal([...Array(FAILING).fill('failed'), ...Array(SUCCEEDING).fill('succeeded')]);
    // The Controller counts a task before it tells the submitter: a scrape that began after this
    // moment has every one of them.
    const after = Date.now() / 1000;
    const query = async (q: string) => (await getJson(`${promUrl}/api/v1/query?query=${encodeURIComponent(q)}`)).data.result as { metric: Record<string, string>; value: [number, string] }[];
    await poll('Prometheus scraping the manager after the tasks ended', async () => {
      const r = await query('timestamp(troupe_tasks_submitted_total)');
      return r.length === 1 && Number(r[0]!.value[1]) > after ? true : undefined;
    });
    const targets = await getJson(`${promUrl}/api/v1/targets`);
    expect(targets.data.activeTargets.map((t: { health: string }) => t.health)).to.deep.equal(['up']);

    const byOutcome = Object.fromEntries((await query('troupe_tasks_total')).map((r) => [r.metric.outcome, Number(r.value[1])]));
    expect(byOutcome).to.deep.equal({ succeeded: SUCCEEDING, failed: FAILING, 'timed-out': 0, cancelled: 0, lost: 0 });
    const one = async (q: string) => Number((await query(q))[0]?.value[1]);
    expect(await one('troupe_tasks_submitted_total')).to.equal(SUCCEEDING + FAILING);
    expect(await one('troupe_task_queue_wait_seconds_count')).to.equal(SUCCEEDING + FAILING);
    expect(await one('troupe_task_run_seconds_count{outcome="succeeded"}')).to.equal(SUCCEEDING);
    expect(await one('troupe_task_run_seconds_count{outcome="failed"}')).to.equal(FAILING);
    expect(await one('troupe_tasks_pending')).to.equal(0);
    expect(await one('troupe_tasks_running')).to.equal(0);
    expect(await one('troupe_members{role="worker",status="up"}')).to.equal(2);
    expect(await one('troupe_connections{peer_role="client"}')).to.equal(1);
    expect(await one('troupe_transport_received_messages_total{peer_role="worker"}')).to.be.greaterThan(0);
    expect(await one('troupe_process_cpu_seconds_total')).to.be.greaterThan(0);

    const gauges = (await query('{__name__=~"troupe_worker_.+"}')).map((r) => `${r.metric.__name__} ${r.metric.worker}`).sort();
    const names = ['busy_slots', 'cpu_ratio', 'load1', 'memory_total_bytes', 'memory_used_bytes', 'report_timestamp_seconds', 'slots'];
    expect(gauges).to.deep.equal(names.flatMap((n) => ['worker-1', 'worker-2'].map((w) => `troupe_worker_${n} ${w}`)).sort());
    const slots = await query('troupe_worker_slots');
    expect(slots.map((r) => Number(r.value[1]))).to.deep.equal([2, 2]);
    // Task ids and commands never become labels.
    const series = await getJson(`${promUrl}/api/v1/series?match[]=${encodeURIComponent('{job="troupe"}')}`);
    const labelValues = series.data.flatMap((s: Record<string, string>) => Object.values(s));
    expect(labelValues.filter((v: string) => submitted.some((t) => v.includes(t.id)) || v.includes('exit 3'))).to.deep.equal([]);
  });

  it('promtool check metrics accepts the exposition; /healthz and /readyz answer 200', async () => {
    const text = await (await fetch(metricsUrl)).text();
    const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect({ status: check.status, out: check.stdout + check.stderr }).to.deep.equal({ status: 0, out: '' });
    const base = metricsUrl.replace(/\/metrics$/, '');
    expect([(await fetch(`${base}/healthz`)).status, (await fetch(`${base}/readyz`)).status, (await fetch(`${base}/nope`)).status]).to.deep.equal([200, 200, 404]);
  });

  it('a worker with --metrics serves its own cluster metrics, ready once joined', async () => {
    const port = Number(/wss:\/\/127\.0\.0\.1:(\d+)/.exec(manager.stdout[0]!)![1]);
    const worker = CliProcess.start(['worker', '--certs', testPki().dir, '--name', 'worker-3', '--join', `127.0.0.1:${port}`, '--metrics', ':0']);
    const line = await worker.waitForLine(/^metrics on /);
    const url = /^metrics on (http:\/\/127\.0\.0\.1:\d+\/metrics)$/.exec(line)![1]!;
    await worker.waitForLine(/^joined the cluster/, 'stdout', 30_000);
    const base = url.replace(/\/metrics$/, '');
    await poll('the worker ready', async () => ((await fetch(`${base}/readyz`)).status === 200 ? true : undefined));
    const text = await (await fetch(url)).text();
    expect(text).to.match(/^troupe_connections\{peer_role="manager"\} 1$/m);
    expect(text).to.match(/^troupe_process_cpu_seconds_total \d/m);
    expect(spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' }).status).to.equal(0);
    // Heartbeat round trips: the worker times its pings; the manager, which seldom pings, learns
    // them from the next ping's payload.
    await poll('round trips on the worker', async () => (/^troupe_heartbeat_rtt_seconds_count\{peer_role="manager"\} [1-9]/m.test(await (await fetch(url)).text()) ? true : undefined));
    await poll('round trips on the manager, in Prometheus', async () => {
      const r = (await getJson(`${promUrl}/api/v1/query?query=${encodeURIComponent('troupe_heartbeat_rtt_seconds_count{peer_role="worker"} > 0')}`)).data.result;
      return r.length === 1 ? true : undefined;
    });
    worker.child.kill('SIGTERM');
    expect((await worker.exited).code).to.equal(0);
  });

  it('a worker\'s gauges follow it, as /metrics shows them: its series when it joins, its busy slots, none once it has left', async () => {
    const port = Number(/wss:\/\/127\.0\.0\.1:(\d+)/.exec(manager.stdout[0]!)![1]);
    const scrape = async () => (await fetch(metricsUrl)).text();
    const of = (text: string, name: string) => new RegExp(`^troupe_worker_${name}\\{worker="worker-4"\\} (\\S+)$`, 'm').exec(text)?.[1];
    expect(await scrape()).to.not.include('worker="worker-4"');
    const worker = CliProcess.start(['worker', '--certs', testPki().dir, '--name', 'worker-4', '--join', `127.0.0.1:${port}`, '--slots', '3']);
    // Held by the Controller until the pool has worker-4, and placed there in the same turn: once
    // it is answered, the pool (which the gauges read) knows the worker and its busy slot.
    const [held] = await tasks.submit({ command: 'sleep 60', selector: 'name=worker-4', waitForWorkerMs: 30_000 });
    expect([held!.status, held!.worker]).to.deep.equal(['running', 'worker-4']);
    let text = await scrape();
    expect([of(text, 'slots'), of(text, 'busy_slots')]).to.deep.equal(['3', '1']);
    // The other workers' series are there beside it.
    expect(text).to.match(/^troupe_worker_slots\{worker="worker-1"\} 2$/m);
    // Its usage report (every second) brings the machine's figures.
    await poll('worker-4\'s first usage report', async () => (of(await scrape(), 'memory_total_bytes') !== undefined ? true : undefined));
    text = await scrape();
    expect(Number(of(text, 'memory_total_bytes'))).to.equal(os.totalmem());
    expect(Number(of(text, 'report_timestamp_seconds'))).to.be.greaterThan(0);
    // Ended: the slot is free by the time the submitter hears of it.
    await tasks.cancel(held!.id);
    expect((await tasks.finished(held!.id)).status).to.equal('cancelled');
    text = await scrape();
    expect([of(text, 'slots'), of(text, 'busy_slots')]).to.deep.equal(['3', '0']);
    worker.child.kill('SIGTERM');
    expect((await worker.exited).code).to.equal(0);
    // Gone from the pool when the manager sees it leave (the listing or the node's end): no series.
    await poll('worker-4\'s series gone', async () => ((await scrape()).includes('worker="worker-4"') ? undefined : true));
    expect(await scrape()).to.match(/^troupe_worker_slots\{worker="worker-1"\} 2$/m);
  });

  describe('bad --metrics', () => {
    it('a port in use: one clear line, exit 1', async () => {
      const taken = net.createServer();
      await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
      const { port } = taken.address() as net.AddressInfo;
      try {
        const run = await CliProcess.run(['manager', '--no-repl', '--certs', testPki().dir, '--host', '127.0.0.1', '--port', '0', '--metrics', `127.0.0.1:${port}`]);
        expect(run.code).to.equal(1);
        expect(run.stdout).to.equal('');
        expect(run.stderr).to.equal(`troupe: TROUPE_E_METRICS_LISTEN: --metrics: cannot listen on 127.0.0.1:${port}: the address is in use (another troupe node or exporter? choose another port, or 0 for a free one)`);
      } finally {
        taken.close();
      }
    });

    it('an address that is not an address: one clear line, exit 1, on manager and worker', async () => {
      for (const [command, value] of [
        ['manager', 'not an address'],
        ['worker', 'localhost:99999'],
        ['worker', '[nope]:9464'],
      ] as const) {
        const args = command === 'manager' ? ['manager', '--no-repl', '--certs', testPki().dir, '--port', '0'] : ['worker', '--certs', testPki().dir, '--name', 'worker-4', '--join', '127.0.0.1:1'];
        const run = await CliProcess.run([...args, '--metrics', value]);
        expect({ code: run.code, stdout: run.stdout }).to.deep.equal({ code: 1, stdout: '' });
        const expected = value === 'localhost:99999' ? 'a port number from 0 to 65535' : 'HOST:PORT, [IPv6]:PORT or PORT (on loopback), e.g. 127.0.0.1:9464 or 0.0.0.0:9464';
        expect(run.stderr).to.equal(`troupe: TROUPE_E_SETTING: metrics: expected ${expected}, got ${JSON.stringify(value)}`);
      }
    });
  });
});
