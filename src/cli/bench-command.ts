/**
 * `troupe bench SCENARIO [HOST:PORT]` and `troupe bench plot DIR…`: the command-line face of
 * actors/russula/bench-sweep.ts (the sweep, its results and table) and bench-plot.ts (the SVG).
 * Options are checked here, before anything connects: a bad one is a SettingError
 * (TROUPE_E_SETTING). Exit status: 0 when every run was ok, 1 otherwise (the results say why).
 * Ctrl-C (or SIGTERM) stops the run in progress and the sweep; a second one leaves at once.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import type { Identity } from '../../certs/index.js';
import { runBench, DEFAULT_BENCH_DURATION_MS, DEFAULT_BENCH_SCRAPE_INTERVAL_MS, DEFAULT_BENCH_WARMUP_MS, DEFAULT_MAX_ITERATIONS } from '../../actors/russula/bench-sweep.js';
import { writePlot } from '../../actors/russula/bench-plot.js';
import { parseDuration, MAX_SCENARIO_BYTES } from '../../actors/russula/scenario-file.js';
import { ErrorCodes, RussulaError, settingError } from '../errors.js';
import { connectClient } from './client-node.js';
import type { HostPort } from './options.js';
import { logLevel, sessionLogger } from './session-log.js';
import { BENCH_SUMMARY } from './command-summaries.js';

type Print = (line: string) => void;

export interface BenchCliHooks {
  print: Print;
  setJob(job: () => Promise<number>): void;
  /** Adds the connection and certificate options every client command has. */
  clientOptions(y: Argv): Argv;
  connection(args: Record<string, unknown>): { identity: Identity; join: HostPort; connectTimeoutMs: number; logFile: string | undefined };
}

/** The `bench` command (and `bench plot`), for main.ts's yargs. */
export function benchCommand(hooks: BenchCliHooks): CommandModule {
  return {
    ...BENCH_SUMMARY,
    handler: () => {},
    builder: (b: Argv) =>
      b
        .command(
          'plot <dirs..>',
          'Plot p99 latency against throughput, one line per results directory (results/LABEL)',
          (z) => z.positional('dirs', { type: 'string', array: true, demandOption: true }).option('out', { type: 'string', describe: 'The SVG file (default: plot.svg beside the first directory)' }),
          (args) => {
            const dirs = (args.dirs as string[]).map(String);
            const out = args.out ?? path.join(path.dirname(path.resolve(dirs[0]!)), 'plot.svg');
            hooks.setJob(async () => {
              const series = writePlot(out, dirs);
              for (const s of series) hooks.print(`${s.label}: ${s.points.length} point${s.points.length === 1 ? '' : 's'}`);
              hooks.print(`plot: ${out}`);
              return 0;
            });
          },
        )
        .command(
          '$0 <scenario> [manager]',
          'Run the scenario once per load (and per run), write results/LABEL/*.json, print a table, plot',
          (z) =>
            hooks
              .clientOptions(z)
              .positional('scenario', { type: 'string', demandOption: true, describe: 'The scenario (YAML) with params and metrics, see docs/bench.md' })
              .positional('manager', { type: 'string', describe: 'The manager, HOST[:PORT]; or --join / TROUPE_JOIN' })
              .option('loads', { type: 'string', describe: 'Loads to run, comma-separated: 200,400,800 (sets ${params.load})' })
              .option('search', { type: 'boolean', default: false, describe: 'Search for the breaking point: double from --starting-load, then narrow down' })
              .option('starting-load', { type: 'number', describe: 'With --search: the first load' })
              .option('max-iterations', { type: 'number', default: DEFAULT_MAX_ITERATIONS, describe: 'With --search: points to run at most' })
              .option('runs', { type: 'number', default: 1, describe: 'Runs per load' })
              .option('duration', { type: 'string', default: `${DEFAULT_BENCH_DURATION_MS / 1000}s`, describe: 'The measurement phase of each run (sets ${params.duration}, seconds)' })
              .option('warmup', { type: 'string', default: `${DEFAULT_BENCH_WARMUP_MS / 1000}s`, describe: 'Not measured at the start of each run (sets ${params.warmup}, seconds)' })
              .option('scrape-interval', { type: 'string', default: `${DEFAULT_BENCH_SCRAPE_INTERVAL_MS / 1000}s`, describe: 'How often each worker scrapes its own members' })
              .option('faults', { type: 'number', default: 0, describe: 'Members of the fault group to crash (SIGKILL) during each run' })
              .option('crash-interval', { type: 'string', default: '30s', describe: 'With --faults: member i crashes (i+1) × this after it became ready' })
              .option('recover', { type: 'boolean', default: false, describe: 'With --faults: restart each crashed member at once' })
              .option('fault-group', { type: 'string', describe: 'With --faults: the group (default: the first with protocol server)' })
              .option('label', { type: 'string', describe: 'results/LABEL (default: --system\'s git commit, else a timestamp)' })
              .option('system', { type: 'string', describe: 'A git checkout of the system under test: its commit is the default label' })
              .option('results', { type: 'string', default: 'results', describe: 'Where LABEL/ is made' })
              .option('param', { type: 'string', array: true, describe: 'NAME=VALUE for a declared parameter (repeat)' })
              .option('fail-fast', { type: 'boolean', default: false, describe: 'Stop the sweep at the first failed run' })
              .example('$0 bench examples/bench/kv.yaml 127.0.0.1:7400 --param dir=$PWD/examples/bench --loads 200,400,800 --duration 5s', 'a sweep of three loads')
              .example('$0 bench plot results/v1 results/v2', 'compare two versions on one plot'),
          (args) => {
            const file = String(args.scenario);
            const text = readScenarioText(file);
            const loads = args.loads === undefined ? undefined : parseLoads(args.loads);
            if (args.search && loads) throw settingError('loads', args.loads, 'no --loads with --search (it picks the loads)');
            if (!args.search && !loads) throw settingError('loads', undefined, 'a list of loads such as 200,400,800 (or --search --starting-load L)');
            const startingLoad = args['starting-load'];
            if (args.search && (typeof startingLoad !== 'number' || !(startingLoad > 0) || !Number.isFinite(startingLoad))) throw settingError('starting-load', startingLoad, 'a load above 0 (with --search)');
            const whole = (option: string, v: number, min: number, max: number) => {
              if (!Number.isInteger(v) || v < min || v > max) throw settingError(option, v, `a whole number from ${min} to ${max}`);
              return v;
            };
            const options = {
              ...hooks.connection(args as Record<string, unknown>),
              file,
              text,
              loads,
              search: args.search ? { startingLoad: startingLoad!, maxIterations: whole('max-iterations', args['max-iterations'], 1, 100) } : undefined,
              runs: whole('runs', args.runs, 1, 1000),
              durationMs: duration('duration', args.duration, false),
              warmupMs: duration('warmup', args.warmup, true),
              scrapeIntervalMs: duration('scrape-interval', args['scrape-interval'], false),
              faults: args.faults > 0 ? { count: whole('faults', args.faults, 0, 100), intervalMs: duration('crash-interval', args['crash-interval'], false), recover: args.recover, group: args['fault-group'] } : undefined,
              label: labelOf(args.label, args.system),
              resultsDir: args.results,
              params: parseParams(args.param ?? []),
              failFast: args['fail-fast'],
            };
            hooks.setJob(() => runBenchCommand(options, hooks.print));
          },
        ),
  };
}

async function runBenchCommand(
  o: { identity: Identity; join: HostPort; connectTimeoutMs: number; logFile: string | undefined } & Omit<Parameters<typeof runBench>[0], 'system' | 'print' | 'signal'>,
  print: Print,
): Promise<number> {
  const log = sessionLogger(o.identity.name, { level: logLevel('warn'), file: o.logFile });
  const client = await connectClient({ identity: o.identity, join: o.join, connectTimeoutMs: o.connectTimeoutMs, log });
  const interrupt = new AbortController();
  let interrupts = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    interrupts += 1;
    if (interrupts > 1) process.exit(signal === 'SIGINT' ? 130 : 143);
    print(`troupe: ${signal === 'SIGINT' ? '^C' : signal}: stopping the run and the sweep (again to leave at once)`);
    interrupt.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const points = await runBench({ ...o, system: client.system, print, signal: interrupt.signal });
    const runs = points.flatMap((p) => p.runs);
    const failed = runs.filter((r) => !r.ok);
    if (failed.length > 0) throw new RussulaError(failed[0]!.errors[0]!.code as typeof ErrorCodes.BENCH_INVALID, `${failed.length} of ${runs.length} runs had errors; the first: load ${failed[0]!.load} run ${failed[0]!.run}: ${failed[0]!.errors[0]!.message}`);
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await client.shutdown();
  }
}

function readScenarioText(file: string): string {
  try {
    const stat = fs.statSync(file);
    if (stat.size > MAX_SCENARIO_BYTES) throw new RussulaError(ErrorCodes.SCENARIO_INVALID, `${file}: ${stat.size} bytes, over the limit of ${MAX_SCENARIO_BYTES}`);
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof RussulaError) throw err;
    throw new RussulaError(ErrorCodes.SCENARIO_INVALID, `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
}

export function parseLoads(text: string): number[] {
  const loads = String(text).split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number);
  if (loads.length === 0 || loads.length > 1000 || loads.some((l) => !Number.isFinite(l) || l <= 0)) throw settingError('loads', text, 'loads above 0, comma-separated: 200,400,800');
  return loads;
}

function parseParams(items: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items) {
    const i = String(item).indexOf('=');
    if (i <= 0) throw settingError('param', item, 'NAME=VALUE');
    const name = String(item).slice(0, i);
    if (['load', 'duration', 'warmup'].includes(name)) throw settingError('param', item, `another parameter: ${name} is set by --${name === 'load' ? 'loads' : name}`);
    out[name] = String(item).slice(i + 1);
  }
  return out;
}

function duration(option: string, value: unknown, zeroOk: boolean): number {
  const ms = parseDuration(value);
  if (ms === undefined || (!zeroOk && ms === 0) || ms > 24 * 3600 * 1000) throw settingError(option, value, `a duration such as 500ms, 10s or 2m${zeroOk ? '' : ' (above 0)'}`);
  return ms;
}

/** --label, or the short commit of --system's checkout, or a timestamp. */
function labelOf(label: string | undefined, system: string | undefined): string {
  if (label !== undefined) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(label)) throw settingError('label', label, 'letters, digits, ".", "_" or "-" (up to 64), a directory name');
    return label;
  }
  if (system !== undefined) {
    try {
      return execFileSync('git', ['-C', system, 'rev-parse', '--short=12', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      throw settingError('system', system, 'a git checkout (its commit is the label), or give --label');
    }
  }
  return new Date().toISOString().replace(/[:.]/g, '-');
}
