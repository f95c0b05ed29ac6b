/**
 * Runs one scenario file with a RussulaCoordinator on this node (a client node for `troupe scenario
 * run`, the manager for `--sessions`), prints each step as it happens, and always writes the result
 * file beside the scenario (resultFileFor): on success, on a failed step, and for a file that is
 * not a scenario at all.
 *
 * Failure semantics: the first failure (a step's timeout, a member failed, a process exited early,
 * a worker lost) ends the run. Everything the run started is then stopped (`stopAll`: SIGTERM to
 * each process group, SIGKILL after the group's kill grace) and the workers' confirmations are in
 * the result. Nothing is retried here: the coordinator already rides out a worker's reconnect.
 *
 * Traffic: each step's record holds the Russula messages and bytes that crossed during it (both
 * ways, as encoded for the wire, counted by the coordinator, where every one of them starts or
 * ends). A pause while the workers hold still shows zero.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { RussulaCoordinator, type LinkTraffic, type MemberRecord, type Traffic } from './coordinator.js';
import type { ClusterSystem } from '../../src/cluster/cluster-system.js';
import { ErrorCodes, messageOf, RussulaError, TroupeError } from '../../src/errors.js';
import { formatMs, MAX_SCENARIO_BYTES, parseScenario, type Scenario, type ScenarioStep } from './scenario-file.js';

export type Print = (line: string) => void;

/** `echo.yaml` → `echo.result.json`, in the same directory. */
export function resultFileFor(file: string): string {
  return file.replace(/\.ya?ml$/i, '') + '.result.json';
}

export interface StepRecord {
  step: string;
  ok: boolean;
  /** ms since the epoch. */
  startedAt: number;
  durationMs: number;
  /** The Russula messages and bytes that crossed during the step, both ways. */
  traffic: Traffic;
  /** Everything the transport counted on the run's links during the step (not only Russula's messages). */
  link: LinkTraffic;
}

export interface ScenarioResult {
  scenario: string;
  file: string;
  run: string | null;
  ok: boolean;
  error: { code: string; message: string } | null;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  steps: StepRecord[];
  members: (Omit<MemberRecord, 'states'> & { states: { state: string; at: string; ready: boolean }[] })[];
  traffic: Traffic;
}

export interface RunScenarioOptions {
  system: ClusterSystem;
  file: string;
  print: Print;
  /** Where to write the result; default resultFileFor(file). */
  resultFile?: string;
  /** Aborting stops the run (TROUPE_E_RUSSULA_STOPPED) and everything it started; the result is still written. */
  signal?: AbortSignal;
}

/** Reads and parses a scenario file; throws a RussulaError (TROUPE_E_SCENARIO_*) saying what is wrong. */
export function loadScenario(file: string): Scenario {
  return parseScenario(readScenario(file), path.basename(file));
}

/** Runs the scenario in `file`; never rejects for a failed run (the result says how it failed). */
export async function runScenarioFile(options: RunScenarioOptions): Promise<ScenarioResult> {
  const { file, print } = options;
  const resultFile = options.resultFile ?? resultFileFor(file);
  let scenario: Scenario;
  try {
    scenario = loadScenario(file);
  } catch (err) {
    const result = failedResult(file, err);
    writeResult(resultFile, result);
    print(`scenario ${path.basename(file)}: ${result.error!.code}: ${result.error!.message}; result: ${resultFile}`);
    return result;
  }
  const result = await runScenario({ system: options.system, scenario, file, print, signal: options.signal });
  writeResult(resultFile, result);
  print(`scenario ${scenario.name}: ${result.ok ? 'ok' : `failed: ${result.error!.code}`} in ${seconds(result.durationMs)}; result: ${resultFile}`);
  return result;
}

export async function runScenario(options: {
  system: ClusterSystem;
  scenario: Scenario;
  file: string;
  print: Print;
  signal?: AbortSignal;
  /** Called with the run's coordinator before anything is sent (troupe bench watches its states). */
  observe?: (coordinator: RussulaCoordinator) => void;
}): Promise<ScenarioResult> {
  const { system, scenario, print } = options;
  const started = Date.now();
  const t0 = performance.now();
  const run = runId(scenario.name);
  const at = () => `[${((performance.now() - t0) / 1000).toFixed(2).padStart(6)} s]`;
  const coordinator = new RussulaCoordinator(system, { run, groups: scenario.groups, reconnectGraceMs: scenario.reconnectGraceMs });
  options.observe?.(coordinator);
  const steps: StepRecord[] = [];
  let error: TroupeError | undefined;
  const onAbort = () => coordinator.abort(new RussulaError(ErrorCodes.RUSSULA_STOPPED, 'the run was interrupted'));
  if (options.signal?.aborted) onAbort();
  options.signal?.addEventListener('abort', onAbort);
  print(`scenario ${scenario.name}: ${scenario.groups.map((g) => `${g.name} (${g.count} × ${g.step.protocol}${g.selector ? `, ${g.selector}` : ''})`).join(', ')}; ${scenario.steps.length} step${scenario.steps.length === 1 ? '' : 's'}; run ${run}`);

  const step = async (name: string, body: () => Promise<string | void>): Promise<boolean> => {
    const before = coordinator.traffic();
    const linkBefore = coordinator.linkTraffic();
    const startedAt = Date.now();
    const s0 = performance.now();
    try {
      const detail = await body();
      const record = { step: name, ok: true, startedAt, durationMs: Math.round(performance.now() - s0), traffic: minus(coordinator.traffic(), before), link: linkMinus(coordinator.linkTraffic(), linkBefore) };
      steps.push(record);
      print(`${at()} ${name}${detail ? `: ${detail}` : ''} (${seconds(record.durationMs)}, ${record.traffic.sentMessages + record.traffic.receivedMessages} msgs, ${record.traffic.sentBytes + record.traffic.receivedBytes} B)`);
      return true;
    } catch (err) {
      error = asTroupeError(err);
      const record = { step: name, ok: false, startedAt, durationMs: Math.round(performance.now() - s0), traffic: minus(coordinator.traffic(), before), link: linkMinus(coordinator.linkTraffic(), linkBefore) };
      steps.push(record);
      print(`${at()} ${name}: FAILED after ${seconds(record.durationMs)}: ${error.code}: ${error.message}`);
      return false;
    }
  };

  try {
    let ok = await step('assign', async () => {
      await coordinator.assign({ waitForWorkersMs: scenario.waitForWorkersMs });
      return scenario.groups.map((g) => `${g.name} → ${coordinator.group(g.name).map((m) => m.record.worker).join(', ')}`).join('; ');
    });
    for (const s of scenario.steps) {
      if (!ok) break;
      ok = await step(s.text, () => runStep(coordinator, s));
    }
    const open = coordinator.unfinished();
    if (ok && open.length > 0) {
      // The steps are over and some members still run (no "until: done" for them): the run ends them.
      const s0 = performance.now();
      await coordinator.stopAll('the scenario ended');
      print(`${at()} the scenario ended: stopped ${open.map((m) => m.member).join(', ')} (${seconds(Math.round(performance.now() - s0))})`);
    }
    if (!ok) {
      print(`${at()} stopping everything the run started…`);
      const s0 = performance.now();
      await coordinator.stopAll(`the run failed: ${error?.code ?? 'unknown'}`);
      const left = coordinator.unfinished().filter((m) => m.pid !== undefined);
      print(`${at()} stopped (${seconds(Math.round(performance.now() - s0))})${left.length ? `; not confirmed: ${left.map((m) => `${m.member} on ${m.worker}`).join(', ')}` : ''}`);
    }
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    coordinator.close();
  }
  const finished = Date.now();
  return {
    scenario: scenario.name,
    file: options.file,
    run,
    ok: error === undefined,
    error: error ? { code: error.code, message: error.message } : null,
    startedAt: new Date(started).toISOString(),
    finishedAt: new Date(finished).toISOString(),
    durationMs: finished - started,
    steps,
    members: coordinator.records().map((m) => ({ ...m, states: m.states.map((s) => ({ state: s.state, at: new Date(s.at).toISOString(), ready: s.ready })) })),
    traffic: coordinator.traffic(),
  };
}

async function runStep(coordinator: RussulaCoordinator, s: ScenarioStep): Promise<string | void> {
  if (s.kind === 'pause') return coordinator.hold(s.ms);
  if (s.until === 'ready') {
    await coordinator.runTillReady(s.group, s.timeoutMs);
    const addresses = coordinator.group(s.group).map((m) => m.record.address).filter((a) => a !== undefined);
    return addresses.length ? addresses.join(', ') : undefined;
  }
  await coordinator.runTillState(s.group, s.until, s.timeoutMs);
  const codes = coordinator.group(s.group).map((m) => m.record.exitCode).filter((c) => c !== undefined);
  return codes.length ? `exit ${codes.map((c) => c ?? 'signal').join(', ')}` : undefined;
}

function readScenario(file: string): string {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch (err) {
    throw new RussulaError(ErrorCodes.SCENARIO_INVALID, `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  if (!stat.isFile()) throw new RussulaError(ErrorCodes.SCENARIO_INVALID, `${file} is not a file`);
  if (stat.size > MAX_SCENARIO_BYTES) throw new RussulaError(ErrorCodes.SCENARIO_INVALID, `${file}: ${stat.size} bytes, over the limit of ${MAX_SCENARIO_BYTES}`);
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new RussulaError(ErrorCodes.SCENARIO_INVALID, `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
}

/** Written to a temporary name and renamed: a reader (or the watcher) never sees half a result. */
export function writeResult(file: string, result: ScenarioResult): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  fs.writeFileSync(tmp, `${JSON.stringify(result, null, 2)}\n`);
  fs.renameSync(tmp, file);
}

/** The result of a run that never started: the file is not a scenario, or the manager cannot be reached. */
export function failedResult(file: string, err: unknown): ScenarioResult {
  const error = asTroupeError(err);
  const now = new Date().toISOString();
  return {
    scenario: path.basename(file).replace(/\.ya?ml$/i, ''),
    file,
    run: null,
    ok: false,
    error: { code: error.code, message: error.message },
    startedAt: now,
    finishedAt: now,
    durationMs: 0,
    steps: [],
    members: [],
    traffic: { sentBytes: 0, receivedBytes: 0, sentMessages: 0, receivedMessages: 0 },
  };
}

function asTroupeError(err: unknown): TroupeError {
  if (err instanceof TroupeError) return err;
  return new RussulaError(ErrorCodes.RUSSULA_PROCESS_FAILED, `unexpected: ${messageOf(err)}`, { cause: err });
}

/** Unguessable, so that no other worker can push states into this run by naming it. */
function runId(name: string): string {
  const slug = name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 32) || 'run';
  return `${slug}-${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`;
}

function minus(a: Traffic, b: Traffic): Traffic {
  return { sentBytes: a.sentBytes - b.sentBytes, receivedBytes: a.receivedBytes - b.receivedBytes, sentMessages: a.sentMessages - b.sentMessages, receivedMessages: a.receivedMessages - b.receivedMessages };
}

/** A link that reconnected during the step counts from zero again: a field never goes below 0. */
function linkMinus(a: LinkTraffic, b: LinkTraffic): LinkTraffic {
  const d = (x: number, y: number) => Math.max(0, x - y);
  return { bytesIn: d(a.bytesIn, b.bytesIn), bytesOut: d(a.bytesOut, b.bytesOut), messagesIn: d(a.messagesIn, b.messagesIn), messagesOut: d(a.messagesOut, b.messagesOut) };
}

function seconds(ms: number): string {
  return ms < 1000 ? formatMs(ms) : `${(ms / 1000).toFixed(2)} s`;
}
