/** Scenario parameters, metrics and the bench section: filled in and checked before anything runs. */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { DEFAULT_BENCH_SERIES, DEFAULT_SCRAPE_INTERVAL_MS, parseScenario } from '../../../actors/russula/scenario-file.js';
import { summarize } from '../../../actors/russula/bench-summary.js';
import { search, type BenchPoint, type BenchRunResult } from '../../../actors/russula/bench-sweep.js';
import { ErrorCodes, RussulaError } from '../../../src/errors.js';

const EXAMPLES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..', 'examples');

const BASE = `params: { load: 100, label: "a b" }
groups:
  srv:
    protocol: server
    ready: { stdout: 'on (?<port>\\d+)' }
    metrics: { path: /m }
    command: "serve --rate \${params.load}"
    env: { L: "\${params.label}" }
  cli:
    protocol: client
    metrics: { port: 9100 }
    env: { S: "\${srv.addresses}" }
    command: "load \${params.load}"
steps:
  - { group: srv }
  - { group: cli, until: done }
`;

function problems(text: string, params: Record<string, string> = {}): string {
  try {
    parseScenario(text, 'x.yaml', params);
  } catch (err) {
    expect(err).to.be.instanceOf(RussulaError);
    expect((err as RussulaError).code).to.equal(ErrorCodes.SCENARIO_INVALID);
    return (err as RussulaError).message;
  }
  return expect.fail('expected the scenario to be refused');
}

describe('scenario params, metrics and bench', () => {
  it('fills ${params.NAME} from the defaults, or from the values given', () => {
    const s = parseScenario(BASE, 'x.yaml');
    expect(s.params).to.deep.equal({ load: '100', label: 'a b' });
    expect(s.groups[0]!.step.command).to.equal('serve --rate 100');
    expect(s.groups[0]!.step.env).to.deep.equal({ L: 'a b' });
    const t = parseScenario(BASE, 'x.yaml', { load: '800' });
    expect(t.groups[1]!.step.command).to.equal('load 800');
    expect(t.params.load).to.equal('800');
    expect(t.groups[1]!.step.env.S).to.equal('${srv.addresses}');
  });

  it('keeps where each group exposes metrics, and defaults the bench section to the first such group', () => {
    const s = parseScenario(BASE, 'x.yaml');
    expect(s.groups[0]!.step.metrics).to.deep.equal({ path: '/m', intervalMs: DEFAULT_SCRAPE_INTERVAL_MS });
    expect(s.groups[1]!.step.metrics).to.deep.equal({ port: 9100, path: '/metrics', intervalMs: DEFAULT_SCRAPE_INTERVAL_MS });
    expect(s.bench).to.deep.equal({ group: 'srv', ...DEFAULT_BENCH_SERIES });
    const b = parseScenario(`${BASE}bench: { group: cli, throughput: ops_total, latency: lat_seconds }\n`, 'x.yaml');
    expect(b.bench).to.deep.equal({ group: 'cli', throughput: 'ops_total', latency: 'lat_seconds', errors: DEFAULT_BENCH_SERIES.errors });
    expect(parseScenario('groups:\n  g: { protocol: client, command: "true" }\nsteps:\n  - { group: g, until: done }\n').bench).to.equal(undefined);
  });

  it('refuses undeclared parameters, bad metrics and a bench section that names no measured group, all at once', () => {
    expect(problems(BASE, { rate: '5' })).to.include('a value was given for parameter "rate", which the file does not declare (params: load, label)');
    const bad = BASE.replace('serve --rate ${params.load}', 'serve ${params.nope}')
      .replace('metrics: { path: /m }', 'metrics: { path: m, port: 70000, extra: 1 }')
      .replace('metrics: { port: 9100 }', 'metrics: {}')
      .concat('bench: { group: nowhere, latency: "not a name" }\n');
    const msg = problems(bad);
    expect(msg).to.include('groups.srv.command: ${params.nope} names no parameter (params: load, label)');
    expect(msg).to.include('groups.srv.metrics.extra: unknown key (expected port, path, file)');
    expect(msg).to.include('groups.srv.metrics.port: expected a port from 1 to 65535, got 70000');
    expect(msg).to.include('groups.srv.metrics.path: expected a path starting with "/", got "m"');
    expect(msg).to.include('groups.cli.metrics: no port, and the group\'s ready check gives none');
    expect(msg).to.include('bench.group: expected a group with metrics');
    expect(msg).to.include('bench.latency: expected a metric name, got "not a name"');
    expect(problems(BASE.replace('metrics: { path: /m }', 'metrics: { file: ../out.prom }'))).to.include('groups.srv.metrics.file: expected a path inside the member\'s directory');
    expect(problems(BASE.replace('params: { load: 100, label: "a b" }', 'params: { "1x": 1, ok: [1] }'))).to.match(/"1x" is not a parameter name.*params\.ok: expected a default value/);
  });

  it('parses the bench example', () => {
    const s = parseScenario(fs.readFileSync(path.join(EXAMPLES, 'bench', 'kv.yaml'), 'utf8'), 'kv.yaml', { load: '400', dir: '/opt/kv' });
    expect(s.groups.map((g) => g.name)).to.deep.equal(['servers', 'clients']);
    expect(s.groups[1]!.step.command).to.equal('exec node "/opt/kv/load.cjs" --rate 400 --warmup 1 --duration 5');
    expect(s.bench).to.deep.equal({ group: 'clients', throughput: 'requests_total', latency: 'request_duration_seconds', errors: 'errors_total' });
  });

  it('summarises a group from the samples inside each member\'s window, and names what is missing', () => {
    const spec = { group: 'c', ...DEFAULT_BENCH_SERIES };
    const sample = (at: number, n: number, fast: number, errors?: number) => ({
      at,
      values: { requests_total: n, 'request_duration_seconds_bucket{le="0.01"}': fast, 'request_duration_seconds_bucket{le="+Inf"}': n, ...(errors !== undefined && { errors_total: errors }) },
    });
    const s = summarize(spec, [
      // window [1500, 3500]: the samples at 2000 and 3000 count, not 1000 or 4000
      { member: 'c/0', readyAt: 1000, samples: [sample(1000, 0, 0), sample(2000, 100, 90, 1), sample(3000, 300, 270, 4), sample(4000, 1000, 900, 9)] },
      { member: 'c/1', readyAt: 1000, samples: [sample(2000, 0, 0), sample(2500, 100, 10)] },
      { member: 'c/2', readyAt: 1000, samples: [sample(2000, 0, 0)] },
      { member: 'c/3', readyAt: undefined, samples: [] },
    ], 500, 2000);
    expect(s.throughput).to.equal(200 + 200);
    expect(s.errors).to.equal(3);
    expect(s.observations).to.equal(300);
    // 190 of 300 at or under 10 ms; p50 (rank 150) inside the first bucket: 150 / 190 × 10 ms.
    expect(s.latency.p50).to.be.closeTo((0.01 * 150) / 190, 1e-12);
    expect(s.latency.p99).to.equal(0.01);
    expect(s.windows).to.deep.equal([
      { member: 'c/0', from: 1500, to: 3500, samples: 2 },
      { member: 'c/1', from: 1500, to: 3500, samples: 2 },
      { member: 'c/2', from: 1500, to: 3500, samples: 1 },
    ]);
    expect(s.problems).to.deep.equal([
      { code: ErrorCodes.BENCH_NO_METRIC, message: 'c/2: 1 sample in its measurement window (1 in all); two are needed' },
      { code: ErrorCodes.BENCH_NO_METRIC, message: 'c/3: never ready, so never measured' },
    ]);
    const none = summarize({ ...spec, throughput: 'absent_total', latency: 'absent_seconds' }, [{ member: 'c/0', readyAt: 0, samples: [sample(0, 0, 0), sample(1000, 5, 5)] }], 0, 2000);
    expect(none.throughput).to.equal(null);
    expect(none.latency).to.deep.equal({ p50: null, p90: null, p99: null });
    expect(none.problems.map((p) => p.message)).to.deep.equal(['c/0: no counter absent_total in its samples', 'c/0: no histogram absent_seconds (no absent_seconds_bucket series) in its samples']);
  });

  describe('the search for the breaking point', () => {
    // A system that saturates at 300/s: throughput min(load, 300), p99 10 ms up to 400, then 100 ms.
    const system = (load: number): BenchPoint => ({
      load,
      runs: [{ ok: true, summary: { throughput: Math.min(load, 300), latency: { p50: 0.001, p90: 0.005, p99: load > 400 ? 0.1 : 0.01 } } } as unknown as BenchRunResult],
    });
    const run = async (maxIterations: number, startingLoad = 50, point = system) => {
      const loads: number[] = [];
      const tried = await search({ startingLoad, maxIterations }, async (load) => (loads.push(load), point(load)), () => false);
      expect(tried).to.deep.equal(loads);
      return loads;
    };

    it('doubles while throughput rises, then narrows between the last good and the first bad load', async () => {
      expect(await run(8)).to.deep.equal([50, 100, 200, 400, 800, 600, 500, 450]);
    });

    it('never runs more than its iteration bound', async () => {
      expect(await run(3)).to.deep.equal([50, 100, 200]);
      expect(await run(1)).to.deep.equal([50]);
    });

    it('stops doubling when latency passes the bound, or a run fails', async () => {
      const slow = (load: number): BenchPoint => ({ load, runs: [{ ok: true, summary: { throughput: load, latency: { p50: 0, p90: 0, p99: load >= 400 ? 0.06 : 0.01 } } } as unknown as BenchRunResult] });
      expect(await run(4, 100, slow)).to.deep.equal([100, 200, 400, 300]);
      const failing = (load: number): BenchPoint => ({ load, runs: [{ ok: load < 200, summary: { throughput: load, latency: { p50: 0, p90: 0, p99: 0.01 } } } as unknown as BenchRunResult] });
      expect(await run(10, 100, failing)).to.deep.equal([100, 200, 150, 175, 188, 194, 197, 199]);
    });
  });
});
