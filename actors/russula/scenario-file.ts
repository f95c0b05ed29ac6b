/**
 * Scenario files (YAML): the groups of a Russula run (which workers, which protocol, what each
 * runs) and its steps (which state to drive a group to, pauses). Parsed and checked here, once,
 * before anything runs: every mistake is reported with its place in the file, all at once, as a
 * RussulaError TROUPE_E_SCENARIO_SYNTAX (not YAML) or TROUPE_E_SCENARIO_INVALID (not a scenario).
 *
 *   name: echo
 *   groups:
 *     servers: { select: tag=server, count: 2, protocol: server, command: "…", ready: { stdout: 'port (?<port>\d+)' } }
 *     clients: { select: tag=client, count: 3, protocol: client, command: "…", env: { SERVERS: "${servers.addresses}" } }
 *   steps:
 *     - { group: servers, until: ready, timeout: 10s }
 *     - { group: clients, until: done }
 *     - { pause: 500ms }
 *     - { group: servers, until: done }
 *
 * Parameters (`params: { load: 100 }`, used as `${params.load}` in any string of the groups and
 * steps) are filled in before the checks, from their defaults or from the values the caller
 * gives (`troupe bench`); a value for an undeclared parameter, or a use of one, is a problem too.
 * A group's `metrics` says where its members expose Prometheus metrics; `bench` which group and
 * which series a benchmark summarises (docs/bench.md).
 */
import path from 'node:path';
import { parseDocument } from 'yaml';
import { DEFAULT_KILL_GRACE_MS } from '../process/run-command.js';
import { DEFAULT_RECONNECT_GRACE_MS, type GroupPlan } from './coordinator.js';
import { parseSelector } from '../tasks/selector.js';
import { MAX_STEP_COMMAND_BYTES, type MetricsSpec, PROTOCOL_NAMES, protocolNamed, scanTemplates, workerStates, type Readiness } from '../../protocols/russula/index.js';
import { ErrorCodes, RussulaError } from '../../src/errors.js';

/** A step waits this long for its group unless it says otherwise: 30 seconds. */
export const DEFAULT_STEP_TIMEOUT_MS = 30_000;
/** A run waits this long for enough matching workers to join before it fails: 5 seconds. */
export const DEFAULT_WAIT_FOR_WORKERS_MS = 5000;
/** Scenario files larger than this are refused: 1 MiB. */
export const MAX_SCENARIO_BYTES = 1024 * 1024;

const GROUP_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,31}$/;
const PARAM_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
/** A parameter's value is at most this long: 1 KiB. */
export const MAX_PARAM_CHARS = 1024;
/** A group's members are scraped this often unless the caller says otherwise: 1 second. */
export const DEFAULT_SCRAPE_INTERVAL_MS = 1000;
export const DEFAULT_METRICS_PATH = '/metrics';
/** The series `bench` summarises unless the file names others. */
export const DEFAULT_BENCH_SERIES = { throughput: 'requests_total', latency: 'request_duration_seconds', errors: 'errors_total' } as const;

/** What a benchmark measures: one group's counter rate, histogram quantiles and error counter. */
export interface BenchSpec {
  group: string;
  throughput: string;
  latency: string;
  errors: string;
}
const MAX_MS = 24 * 3600 * 1000;

export type ScenarioStep =
  | { kind: 'until'; group: string; until: string; timeoutMs: number; text: string }
  | { kind: 'pause'; ms: number; text: string };

export interface Scenario {
  name: string;
  waitForWorkersMs: number;
  reconnectGraceMs: number;
  groups: GroupPlan[];
  steps: ScenarioStep[];
  /** Every declared parameter with the value used (its default unless the caller gave one). */
  params: Record<string, string>;
  /** Present when some group declares metrics. */
  bench?: BenchSpec;
}

/**
 * Parses and checks a scenario; throws a RussulaError listing every problem found. `params`
 * overrides declared parameters' defaults.
 */
export function parseScenario(text: string, source = 'scenario', params: Record<string, string> = {}): Scenario {
  if (Buffer.byteLength(text) > MAX_SCENARIO_BYTES) {
    throw new RussulaError(ErrorCodes.SCENARIO_INVALID, `${source}: ${Buffer.byteLength(text)} bytes, over the limit of ${MAX_SCENARIO_BYTES}`);
  }
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const first = doc.errors[0]!;
    const at = first.linePos?.[0] ? ` at line ${first.linePos[0].line}, column ${first.linePos[0].col}` : '';
    throw new RussulaError(ErrorCodes.SCENARIO_SYNTAX, `${source}: not valid YAML${at}: ${first.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`);
  }
  const problems: string[] = [];
  const scenario = check(doc.toJS({ maxAliasCount: 100 }) as unknown, problems, params);
  if (problems.length > 0 || !scenario) {
    throw new RussulaError(ErrorCodes.SCENARIO_INVALID, `${source}: ${problems.length === 1 ? problems[0] : `${problems.length} problems: ${problems.join('; ')}`}`);
  }
  return scenario;
}

function check(raw: unknown, problems: string[], overrides: Record<string, string>): Scenario | undefined {
  if (!isMap(raw)) {
    problems.push(`expected a map with "groups" and "steps", got ${kind(raw)}`);
    return undefined;
  }
  unknownKeys(raw, '', ['name', 'groups', 'steps', 'waitForWorkers', 'reconnectGrace', 'params', 'bench'], problems);
  const params = checkParams(raw.params, overrides, problems);
  const doc = { ...raw, groups: fillParams(raw.groups, 'groups', params, problems), steps: fillParams(raw.steps, 'steps', params, problems) } as Record<string, unknown>;
  const name = doc.name === undefined ? 'scenario' : typeof doc.name === 'string' && doc.name.trim() !== '' && doc.name.length <= 200 ? doc.name : (problems.push(`name: expected a string of up to 200 characters, got ${kind(doc.name)}`), 'scenario');
  const waitForWorkersMs = duration(doc.waitForWorkers, 'waitForWorkers', DEFAULT_WAIT_FOR_WORKERS_MS, problems, true);
  const reconnectGraceMs = duration(doc.reconnectGrace, 'reconnectGrace', DEFAULT_RECONNECT_GRACE_MS, problems, true);

  const groups: GroupPlan[] = [];
  if (!isMap(doc.groups) || Object.keys(doc.groups).length === 0) {
    problems.push(`groups: expected a map of group names to groups (at least one), got ${isMap(doc.groups) ? 'an empty map' : kind(doc.groups)}`);
  } else {
    for (const [gname, g] of Object.entries(doc.groups)) {
      const plan = checkGroup(gname, g, problems);
      if (plan) groups.push(plan);
    }
    for (const plan of groups) checkTemplates(plan, groups, doc.groups, problems);
  }

  const steps: ScenarioStep[] = [];
  if (!Array.isArray(doc.steps) || doc.steps.length === 0) {
    problems.push(`steps: expected a list of steps (at least one), got ${Array.isArray(doc.steps) ? 'an empty list' : kind(doc.steps)}`);
  } else {
    doc.steps.forEach((s, i) => {
      const step = checkStep(s, `steps[${i}]`, groups, isMap(doc.groups) ? doc.groups : {}, problems);
      if (step) steps.push(step);
    });
  }
  const bench = checkBench(raw.bench, groups, problems);
  return { name, waitForWorkersMs, reconnectGraceMs, groups, steps, params, ...(bench && { bench }) };
}

function checkParams(declared: unknown, overrides: Record<string, string>, problems: string[]): Record<string, string> {
  const params: Record<string, string> = {};
  if (declared !== undefined && !isMap(declared)) problems.push(`params: expected a map of parameter names to default values, got ${kind(declared)}`);
  for (const [key, value] of Object.entries(isMap(declared) ? declared : {})) {
    if (!PARAM_NAME.test(key)) problems.push(`params: ${JSON.stringify(key)} is not a parameter name (a letter or "_", then letters, digits or "_")`);
    else if ((typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') && String(value).length <= MAX_PARAM_CHARS) params[key] = String(value);
    else problems.push(`params.${key}: expected a default value (a string or number of up to ${MAX_PARAM_CHARS} characters), got ${kind(value)}`);
  }
  for (const [key, value] of Object.entries(overrides)) {
    if (!Object.hasOwn(params, key)) problems.push(`a value was given for parameter "${key}", which the file does not declare (params: ${Object.keys(params).join(', ') || 'none'})`);
    else if (String(value).length > MAX_PARAM_CHARS) problems.push(`parameter ${key}: over ${MAX_PARAM_CHARS} characters`);
    else params[key] = String(value);
  }
  return params;
}

/** Every string under `value` with `${params.NAME}` replaced by the parameter's value. */
function fillParams(value: unknown, at: string, params: Record<string, string>, problems: string[]): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$\{params\.([^}]*)\}/g, (whole, name: string) => {
      if (Object.hasOwn(params, name)) return params[name]!;
      problems.push(`${at}: ${whole} names no parameter (params: ${Object.keys(params).join(', ') || 'none'})`);
      return whole;
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => fillParams(v, `${at}[${i}]`, params, problems));
  if (isMap(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fillParams(v, `${at}.${k}`, params, problems)]));
  return value;
}

function checkMetrics(m: unknown, at: string, hasReadyPort: boolean, problems: string[]): MetricsSpec | undefined {
  if (!isMap(m)) {
    problems.push(`${at}: expected { port, path } or { file }, got ${kind(m)}`);
    return undefined;
  }
  unknownKeys(m, at, ['port', 'path', 'file'], problems);
  const spec: MetricsSpec = { path: DEFAULT_METRICS_PATH, intervalMs: DEFAULT_SCRAPE_INTERVAL_MS };
  if (m.port !== undefined) {
    const port = typeof m.port === 'string' && /^\d+$/.test(m.port) ? Number(m.port) : m.port;
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) problems.push(`${at}.port: expected a port from 1 to 65535, got ${show(m.port)}`);
    else spec.port = port;
  }
  if (m.path !== undefined) {
    if (typeof m.path !== 'string' || !m.path.startsWith('/') || m.path.length > 1024) problems.push(`${at}.path: expected a path starting with "/", got ${show(m.path)}`);
    else spec.path = m.path;
  }
  if (m.file !== undefined) {
    if (typeof m.file !== 'string' || m.file === '' || m.file.length > 1024 || path.isAbsolute(m.file) || m.file.split('/').includes('..')) problems.push(`${at}.file: expected a path inside the member's directory, got ${show(m.file)}`);
    else spec.file = m.file;
    if (m.port !== undefined) problems.push(`${at}: give port (an endpoint) or file, not both`);
  } else if (m.port === undefined && !hasReadyPort) {
    problems.push(`${at}: no port, and the group's ready check gives none (give metrics.port, or ready.stdout with (?<port>…), or ready.port)`);
  }
  return spec;
}

function checkBench(b: unknown, groups: GroupPlan[], problems: string[]): BenchSpec | undefined {
  const measured = groups.filter((g) => g.step.metrics);
  if (b === undefined) {
    if (measured.length === 0) return undefined;
    return { group: measured[0]!.name, ...DEFAULT_BENCH_SERIES };
  }
  if (!isMap(b)) {
    problems.push(`bench: expected { group, throughput, latency, errors }, got ${kind(b)}`);
    return undefined;
  }
  unknownKeys(b, 'bench', ['group', 'throughput', 'latency', 'errors'], problems);
  const spec: BenchSpec = { group: measured[0]?.name ?? '', ...DEFAULT_BENCH_SERIES };
  if (b.group !== undefined) {
    if (typeof b.group !== 'string' || !measured.some((g) => g.name === b.group)) problems.push(`bench.group: expected a group with metrics (${measured.map((g) => g.name).join(', ') || 'none'}), got ${show(b.group)}`);
    else spec.group = b.group;
  } else if (measured.length === 0) problems.push('bench: no group declares metrics');
  for (const key of ['throughput', 'latency', 'errors'] as const) {
    if (b[key] === undefined) continue;
    if (typeof b[key] !== 'string' || !/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(b[key])) problems.push(`bench.${key}: expected a metric name, got ${show(b[key])}`);
    else spec[key] = b[key];
  }
  return spec;
}

function checkGroup(name: string, g: unknown, problems: string[]): GroupPlan | undefined {
  const at = `groups.${name}`;
  if (!GROUP_NAME.test(name)) problems.push(`${at}: a group name is a letter then up to 31 letters, digits, "_" or "-"`);
  if (!isMap(g)) {
    problems.push(`${at}: expected a map (select, count, protocol, command…), got ${kind(g)}`);
    return undefined;
  }
  unknownKeys(g, at, ['select', 'count', 'protocol', 'command', 'env', 'ready', 'killGrace', 'metrics'], problems);
  const before = problems.length;
  let selector = '';
  if (g.select !== undefined) {
    if (typeof g.select !== 'string') problems.push(`${at}.select: expected a selector such as "tag=server", got ${kind(g.select)}`);
    else {
      try {
        selector = parseSelector(g.select).text;
      } catch (err) {
        problems.push(`${at}.select: ${(err as Error).message}`);
      }
    }
  }
  const count = g.count === undefined ? 1 : g.count;
  if (typeof count !== 'number' || !Number.isInteger(count) || count < 1 || count > 1000) problems.push(`${at}.count: expected a whole number from 1 to 1000, got ${show(g.count)}`);
  if (typeof g.protocol !== 'string' || !protocolNamed(g.protocol)) problems.push(`${at}.protocol: expected one of ${PROTOCOL_NAMES.join(', ')}, got ${show(g.protocol)}`);
  if (typeof g.command !== 'string' || g.command.trim() === '') problems.push(`${at}.command: expected a shell command, got ${show(g.command)}`);
  else if (Buffer.byteLength(g.command) > MAX_STEP_COMMAND_BYTES) problems.push(`${at}.command: ${Buffer.byteLength(g.command)} bytes, over the limit of ${MAX_STEP_COMMAND_BYTES}`);
  const env: Record<string, string> = {};
  if (g.env !== undefined) {
    if (!isMap(g.env)) problems.push(`${at}.env: expected a map of variable names to values, got ${kind(g.env)}`);
    else {
      for (const [key, value] of Object.entries(g.env)) {
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) problems.push(`${at}.env: ${JSON.stringify(key)} is not a variable name`);
        else if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') env[key] = String(value);
        else problems.push(`${at}.env.${key}: expected a string, got ${kind(value)}`);
      }
    }
  }
  let ready: Readiness | undefined;
  if (g.ready !== undefined) {
    if (!isMap(g.ready)) problems.push(`${at}.ready: expected { stdout: REGEX } or { port: N }, got ${kind(g.ready)}`);
    else {
      unknownKeys(g.ready, `${at}.ready`, ['stdout', 'port'], problems);
      const { stdout, port } = g.ready;
      if ((stdout === undefined) === (port === undefined)) problems.push(`${at}.ready: give exactly one of stdout (a regular expression) or port (a TCP port)`);
      if (stdout !== undefined) {
        if (typeof stdout !== 'string' || stdout === '' || stdout.length > 1024) problems.push(`${at}.ready.stdout: expected a regular expression, got ${show(stdout)}`);
        else {
          try {
            new RegExp(stdout);
            ready = { stdout };
          } catch (err) {
            problems.push(`${at}.ready.stdout: not a regular expression: ${(err as Error).message}`);
          }
        }
      }
      if (port !== undefined) {
        if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) problems.push(`${at}.ready.port: expected a port from 1 to 65535, got ${show(port)}`);
        else ready = { port };
      }
    }
  }
  const killGraceMs = duration(g.killGrace, `${at}.killGrace`, DEFAULT_KILL_GRACE_MS, problems, true);
  const hasReadyPort = ready?.port !== undefined || (ready?.stdout !== undefined && /\(\?<port>/.test(ready.stdout));
  const metrics = g.metrics === undefined ? undefined : checkMetrics(g.metrics, `${at}.metrics`, hasReadyPort, problems);
  if (problems.length > before) return undefined;
  return { name, selector, count: count as number, step: { protocol: g.protocol as string, command: g.command as string, env, ...(ready && { ready }), killGraceMs, ...(metrics && { metrics }) } };
}

/** `${servers.addresses}` must name another group and one of addresses, hosts, ports. */
function checkTemplates(plan: GroupPlan, groups: GroupPlan[], declared: Record<string, unknown>, problems: string[]): void {
  for (const [key, value] of Object.entries(plan.step.env)) {
    for (const { whole, group: g } of scanTemplates(value)) {
      const at = `groups.${plan.name}.env.${key}`;
      if (g === undefined) {
        problems.push(`${at}: ${whole} is not a value; use \${GROUP.addresses}, \${GROUP.hosts} or \${GROUP.ports}`);
      } else if (!Object.hasOwn(declared, g)) {
        problems.push(`${at}: ${whole} names no group (groups: ${Object.keys(declared).join(', ')})`);
      } else if (g === plan.name) {
        problems.push(`${at}: ${whole}: a group cannot take its own addresses`);
      } else if (groups.some((p) => p.name === g) && groups.find((p) => p.name === g)!.step.ready === undefined) {
        problems.push(`${at}: ${whole}: group ${g} has no ready check, so it reports no address (give it ready.port or ready.stdout with (?<port>…))`);
      }
    }
  }
}

function checkStep(s: unknown, at: string, groups: GroupPlan[], declared: Record<string, unknown>, problems: string[]): ScenarioStep | undefined {
  if (!isMap(s)) {
    problems.push(`${at}: expected { group, until, timeout } or { pause }, got ${kind(s)}`);
    return undefined;
  }
  if (s.pause !== undefined) {
    unknownKeys(s, at, ['pause'], problems);
    const ms = duration(s.pause, `${at}.pause`, 0, problems, true);
    return { kind: 'pause', ms, text: `pause ${formatMs(ms)}` };
  }
  unknownKeys(s, at, ['group', 'until', 'timeout'], problems);
  if (typeof s.group !== 'string' || !Object.hasOwn(declared, s.group)) {
    problems.push(`${at}.group: expected one of the groups (${Object.keys(declared).join(', ')}), got ${show(s.group)}`);
    return undefined;
  }
  const plan = groups.find((g) => g.name === s.group);
  const until = s.until === undefined ? 'ready' : s.until;
  if (plan) {
    const states = workerStates(protocolNamed(plan.step.protocol)!).slice(0, -2);
    if (typeof until !== 'string' || (until !== 'ready' && !states.includes(until))) {
      problems.push(`${at}.until: expected "ready" or a state of protocol ${plan.step.protocol} (${states.join(', ')}), got ${show(s.until)}`);
    }
  }
  const timeoutMs = duration(s.timeout, `${at}.timeout`, DEFAULT_STEP_TIMEOUT_MS, problems, false);
  return { kind: 'until', group: s.group, until: String(until), timeoutMs, text: until === 'ready' ? `${s.group} ready` : `${s.group} until ${String(until)}` };
}

/** `500ms`, `10s`, `2m`, or a number of seconds. */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? Math.round(value * 1000) : undefined;
  if (typeof value !== 'string') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$/.exec(value);
  if (!m) return undefined;
  const n = Number(m[1]);
  return Math.round(m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000);
}

function duration(value: unknown, at: string, fallback: number, problems: string[], zeroOk: boolean): number {
  if (value === undefined) return fallback;
  const ms = parseDuration(value);
  if (ms === undefined || ms > MAX_MS || (!zeroOk && ms === 0)) {
    problems.push(`${at}: expected a duration such as 500ms, 10s or 2m (${zeroOk ? 'up to' : 'above 0, up to'} 24 h), got ${show(value)}`);
    return fallback;
  }
  return ms;
}

export function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

function unknownKeys(map: Record<string, unknown>, at: string, known: string[], problems: string[]): void {
  for (const key of Object.keys(map)) if (!known.includes(key)) problems.push(`${at ? `${at}.` : ''}${key}: unknown key (expected ${known.join(', ')})`);
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function kind(v: unknown): string {
  return v === undefined ? 'nothing' : v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'a map' : `${typeof v} ${show(v)}`;
}

function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}…` : s;
}
