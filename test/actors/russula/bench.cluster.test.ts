/**
 * `troupe bench` end to end: a real manager with 4 local workers (tags server, server, and two
 * untagged), the real CLI as a client node, the example kv servers and load generators
 * (examples/bench) as real node processes scraped over loopback by their own workers. Runs are
 * short (0.3 s warmup, 1 s measured, 100 ms scrapes).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import type { BenchRunResult } from '../../../actors/russula/bench-sweep.js';
import { ErrorCodes } from '../../../src/errors.js';
import { CliProcess, killAllCli } from '../../fixtures/cli-process.js';
import { testPki } from '../../fixtures/pki.js';
import { isGone } from '../../fixtures/processes.js';

const BENCH = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..', 'examples', 'bench');
const SHORT = ['--duration', '1s', '--warmup', '0.3s', '--scrape-interval', '100ms'];

/** The summary as the test computes it from the raw samples in the result, independently of bench-summary.ts. */
function recompute(r: BenchRunResult): { throughput: number; errors: number; p50: number; p90: number; p99: number } {
  let throughput = 0;
  let errors = 0;
  const buckets = new Map<number, number>();
  for (const m of r.result.members.filter((x) => x.group === 'clients')) {
    const ready = Date.parse(m.states.find((s) => s.state === 'running' && s.ready)!.at);
    const from = ready + r.measurement.warmupMs;
    const inside = (m.samples ?? []).filter((s) => s.at >= from && s.at <= from + r.measurement.durationMs);
    const [a, b] = [inside[0]!, inside[inside.length - 1]!];
    throughput += (b.values.requests_total! - a.values.requests_total!) / ((b.at - a.at) / 1000);
    errors += b.values.errors_total! - a.values.errors_total!;
    for (const [key, v] of Object.entries(b.values)) {
      const le = /^request_duration_seconds_bucket\{le="([^"]+)"\}$/.exec(key)?.[1];
      if (le === undefined) continue;
      const bound = le === '+Inf' ? Infinity : Number(le);
      buckets.set(bound, (buckets.get(bound) ?? 0) + v - (a.values[key] ?? 0));
    }
  }
  const sorted = [...buckets.entries()].sort((x, y) => x[0] - y[0]);
  const total = sorted[sorted.length - 1]![1];
  const quantile = (q: number) => {
    const rank = q * total;
    const i = sorted.findIndex(([, c]) => c >= rank);
    if (sorted[i]![0] === Infinity) return sorted[i - 1]![0];
    const [lower, below] = i === 0 ? [0, 0] : sorted[i - 1]!;
    return lower + (sorted[i]![0] - lower) * ((rank - below) / (sorted[i]![1] - below));
  };
  return { throughput, errors, p50: quantile(0.5), p90: quantile(0.9), p99: quantile(0.99) };
}

/** Well-formed XML (every tag closed in order, attributes quoted) with an <svg> root. */
function expectWellFormedSvg(text: string): void {
  const body = text.replace(/^<\?xml[^?]*\?>\s*/, '');
  const stack: string[] = [];
  const tag = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>|([^<]+)/gy;
  let m: RegExpExecArray | null;
  let end = 0;
  while ((m = tag.exec(body)) !== null) {
    end = tag.lastIndex;
    if (m[5] !== undefined) {
      expect(m[5], 'text').to.not.match(/&(?!amp;|lt;|gt;|quot;|apos;)/);
      continue;
    }
    if (m[1]) expect(stack.pop(), `closing </${m[2]}>`).to.equal(m[2]);
    else if (!m[4]) stack.push(m[2]!);
    else if (stack.length === 0) expect.fail('a self-closed root');
  }
  expect(end, 'parsed to the end').to.equal(body.length);
  expect(stack).to.deep.equal([]);
  expect(body).to.match(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" /);
}

describe('troupe bench on a cluster of real processes', function () {
  this.timeout(60_000);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-bench-'));
  const certs = path.join(tmp, 'certs');
  const results = path.join(tmp, 'results');
  let port = 0;
  const readRun = (label: string, file: string) => JSON.parse(fs.readFileSync(path.join(results, label, file), 'utf8')) as BenchRunResult;
  const runFiles = (label: string) => fs.readdirSync(path.join(results, label)).filter((f) => f.endsWith('.json')).sort();
  const bench = (file: string, ...args: string[]) => CliProcess.run(['bench', file, `127.0.0.1:${port}`, '--certs', certs, '--results', results, '--param', `dir=${BENCH}`, ...SHORT, ...args]);

  before(async () => {
    fs.mkdirSync(certs, { recursive: true });
    for (const file of fs.readdirSync(testPki().dir)) fs.copyFileSync(path.join(testPki().dir, file), path.join(certs, file));
    const manager = CliProcess.start(['manager', '--no-repl', '--certs', certs, '--host', '127.0.0.1', '--port', '0', '--local-workers', '4', '--local-worker-tags', 'server', '--local-worker-tags', 'server'], { env: { TMPDIR: tmp } });
    const line = await manager.waitForLine(/listening on wss:\/\/127\.0\.0\.1:\d+/);
    port = Number(/:(\d+) \(certificates/.exec(line)![1]);
    await manager.waitForLine(/^all 4 local workers joined/);
  });

  after(async () => {
    await killAllCli();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('a sweep of three loads writes three results whose summaries are what the raw samples give, with no traffic while measured', async () => {
    const { code, stdout, stderr } = await bench(path.join(BENCH, 'kv.yaml'), '--loads', '40,80,120', '--label', 'sweep');
    expect(code, `${stdout}\n${stderr}`).to.equal(0);
    expect(runFiles('sweep')).to.deep.equal(['load-120-run-1.json', 'load-40-run-1.json', 'load-80-run-1.json']);
    for (const load of [40, 80, 120]) {
      const r = readRun('sweep', `load-${load}-run-1.json`);
      expect(r.ok, JSON.stringify(r.errors)).to.equal(true);
      expect([r.load, r.run, r.params.load, r.params.duration, r.params.warmup]).to.deep.equal([load, 1, String(load), '1', '0.3']);
      const mine = recompute(r);
      expect(r.summary.throughput).to.be.closeTo(mine.throughput, 1e-9);
      expect(r.summary.throughput).to.be.above(0);
      expect(r.summary.errors).to.equal(mine.errors);
      expect(r.summary.latency.p50).to.be.closeTo(mine.p50, 1e-12);
      expect(r.summary.latency.p90).to.be.closeTo(mine.p90, 1e-12);
      expect(r.summary.latency.p99).to.be.closeTo(mine.p99, 1e-12);
      // Nothing crossed the network under test while it was measured: no Russula message, no envelope at all.
      expect(r.measurement.traffic).to.deep.equal({ sentBytes: 0, receivedBytes: 0, sentMessages: 0, receivedMessages: 0 });
      expect(r.measurement.link).to.deep.equal({ bytesIn: 0, bytesOut: 0, messagesIn: 0, messagesOut: 0 });
      // The servers were scraped too, by their own workers.
      for (const m of r.result.members.filter((x) => x.group === 'servers')) expect(m.samples!.some((s) => (s.values.kv_requests_total ?? 0) > 0), m.member).to.equal(true);
    }
    const table = stdout.split('\n').filter((l) => /^sweep\s+\d+\s+1\s+ok\s/.test(l));
    expect(table).to.have.length(3);
  });

  it('a search stops within its iteration bound', async () => {
    const { stdout, stderr } = await bench(path.join(BENCH, 'kv.yaml'), '--search', '--starting-load', '30', '--max-iterations', '2', '--label', 'search');
    const files = runFiles('search');
    expect(files.length, `${stdout}\n${stderr}`).to.be.within(1, 2);
    expect(files).to.include('load-30-run-1.json');
    // Doubling while good: the second point, if any, is 60 (or a narrowing below it, never above).
    for (const f of files) expect(Number(/load-(\d+)/.exec(f)![1])).to.be.at.most(60);
  });

  it('a fault kills a member and restarts it, and the result says when', async () => {
    const { code, stdout, stderr } = await bench(path.join(BENCH, 'kv.yaml'), '--loads', '40', '--faults', '1', '--crash-interval', '0.5s', '--recover', '--label', 'faults');
    const r = readRun('faults', 'load-40-run-1.json');
    expect(code, `${stdout}\n${stderr}\n${JSON.stringify(r.errors)}`).to.equal(0);
    expect(r.faults.map((f) => [f.member, f.action])).to.deep.equal([
      ['servers/0', 'kill'],
      ['servers/0', 'restart'],
    ]);
    const [kill, restart] = r.faults;
    expect(Date.parse(kill!.at)).to.be.at.most(Date.parse(restart!.at));
    const server = r.result.members.find((m) => m.member === 'servers/0')!;
    const readyAt = Date.parse(server.states.find((s) => s.state === 'running' && s.ready)!.at);
    expect(Date.parse(kill!.at)).to.be.at.least(readyAt + 500);
    expect(kill!.pid).to.be.a('number');
    expect(isGone(kill!.pid!)).to.equal(true);
    expect(server.pid).to.not.equal(kill!.pid);
    expect(restart!.pid).to.equal(server.pid);
    expect(server.state).to.equal('done');
    expect(stdout).to.match(/^faults\s+40\s+1\s+ok\s.*\s1\s+0$/m);
  });

  it('a load generator that exits non-zero is an error in that run\'s result, and the next load still runs', async () => {
    const text = fs.readFileSync(path.join(BENCH, 'kv.yaml'), 'utf8').replace('exec node "${params.dir}/load.cjs"', 'node "${params.dir}/load.cjs"')
      .replace('--duration ${params.duration}', '--duration ${params.duration} && [ ${params.load} != 40 ]');
    const file = path.join(tmp, 'kv-fails.yaml');
    fs.writeFileSync(file, text);
    const { code, stdout, stderr } = await bench(file, '--loads', '40,80', '--label', 'fails');
    expect(code, `${stdout}\n${stderr}`).to.equal(1);
    expect(stderr).to.match(/troupe: TROUPE_E_RUSSULA_PROCESS_FAILED: 1 of 2 runs had errors; the first: load 40 run 1: clients\/\d on worker-\d+: the process exited with code 1/);
    const failed = readRun('fails', 'load-40-run-1.json');
    expect(failed.ok).to.equal(false);
    expect(failed.errors[0]!.code).to.equal(ErrorCodes.RUSSULA_PROCESS_FAILED);
    expect(failed.errors[0]!.message).to.match(/^clients\/\d on worker-\d+: the process exited with code 1$/);
    const next = readRun('fails', 'load-80-run-1.json');
    expect(next.ok, JSON.stringify(next.errors)).to.equal(true);
    expect(next.summary.throughput).to.be.above(0);
  });

  it('reads a metrics file the member writes, and a metric that never appears is named in the result', async () => {
    const file = path.join(tmp, 'file-metrics.yaml');
    fs.writeFileSync(
      file,
      [
        'name: file-metrics',
        'params: { load: 10, duration: 1, warmup: 0, dir: unused }',
        'groups:',
        '  writers:',
        '    protocol: client',
        '    metrics: { file: stats.prom }',
        '    command: |',
        '      for i in $(seq 1 25); do printf "# TYPE requests_total counter\\nrequests_total %d\\n" $((i * ${params.load})) > stats.tmp && mv stats.tmp stats.prom; sleep 0.08; done',
        'bench: { latency: absent_seconds }',
        'steps:',
        '  - { group: writers, until: done, timeout: 20s }',
        '',
      ].join('\n'),
    );
    const { code, stdout, stderr } = await bench(file, '--loads', '10', '--label', 'file');
    expect(code, `${stdout}\n${stderr}`).to.equal(1);
    const r = readRun('file', 'load-10-run-1.json');
    expect(r.result.members, JSON.stringify(r.errors)).to.have.length(1);
    const writer = r.result.members[0]!;
    expect(writer.samples!.length, JSON.stringify(writer.scrapeErrors)).to.be.at.least(2);
    expect(writer.samples!.every((s) => Object.keys(s.values).length === 1 && s.values.requests_total! % 10 === 0)).to.equal(true);
    expect(r.summary.throughput).to.be.above(0);
    expect(r.errors).to.deep.equal([{ code: ErrorCodes.BENCH_NO_METRIC, message: 'writers/0: no histogram absent_seconds (no absent_seconds_bucket series) in its samples' }]);
  });

  it('bench plot writes a valid SVG with one line per label', async () => {
    const out = path.join(tmp, 'compare.svg');
    const { code, stdout, stderr } = await CliProcess.run(['bench', 'plot', path.join(results, 'sweep'), path.join(results, 'fails'), '--out', out]);
    expect(code, stderr).to.equal(0);
    expect(stdout).to.include('sweep: 3 points');
    expect(stdout).to.include('fails: 1 point');
    const svg = fs.readFileSync(out, 'utf8');
    expectWellFormedSvg(svg);
    const lines = [...svg.matchAll(/<polyline class="series" data-label="([^"]*)" points="([^"]*)"/g)].map((m) => [m[1], m[2]!.split(' ').length]);
    expect(lines).to.deep.equal([
      ['sweep', 3],
      ['fails', 1],
    ]);
    // The sweep wrote its own plot too.
    expectWellFormedSvg(fs.readFileSync(path.join(results, 'sweep', 'plot.svg'), 'utf8'));
  });
});
