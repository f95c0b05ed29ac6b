/**
 * The settings file of a testbed (`testbed.yaml`, docs/testbed.md): read once, `${ENV}` references
 * substituted in string values, every key checked, and every mistake reported at once as one
 * TestbedError TROUPE_E_TESTBED_SETTINGS whose parts each name the file, the line and the key
 * (`testbed.yaml:4: allowedCidrs: …`). Nothing here talks to AWS or reads the key file: a bad
 * file is refused before any request is made.
 */
import fs from 'node:fs';
import { isIP } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { isMap, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import { ErrorCodes, TestbedError } from '../errors.js';

/** The settings file used when none is named: `testbed.yaml` in the working directory. */
export const DEFAULT_SETTINGS_FILE = 'testbed.yaml';
export const DEFAULT_INSTANCE_TYPE = 't3.small';
export const DEFAULT_USER = 'admin';
export const DEFAULT_PUBLIC_KEY = '~/.ssh/id_ed25519.pub';
/** Root volume size in GiB. */
export const DEFAULT_ROOT_VOLUME_GIB = 16;
export const DEFAULT_SSH_PORT = 22;
export const DEFAULT_MANAGER_PORT = 7400;
/** An instance powers itself off (and so is terminated) this long after it was created: 8 hours. */
export const DEFAULT_MAX_LIFETIME_MINUTES = 8 * 60;
/** How long `deploy`, `start`, `stop` and `destroy` wait for the instances: 10 minutes. */
export const DEFAULT_WAIT_TIMEOUT_MS = 10 * 60 * 1000;
/** How often a wait looks at the instances again: 5 seconds. */
export const DEFAULT_POLL_INTERVAL_MS = 5000;
/** The environment variable that points every EC2 client at another endpoint (moto, LocalStack). */
export const ENDPOINT_ENV = 'TROUPE_EC2_ENDPOINT';
export const MAX_SETTINGS_BYTES = 256 * 1024;
const MAX_LIFETIME_LIMIT_MINUTES = 7 * 24 * 60;

export type ImageChoice = { kind: 'ids'; ids: Record<string, string> } | { kind: 'lookup'; name: string; owner: string };

export interface TestbedSettings {
  /** The file the settings came from (for messages). */
  file: string;
  id: string;
  regions: string[];
  instanceType: string;
  image: ImageChoice;
  user: string;
  /** Absolute path of the OpenSSH public key imported as the key pair. */
  publicKeyFile: string;
  /** Absolute path of its private key (for the ssh line and the inventory); never read. */
  identityFile: string;
  rootVolumeGiB: number;
  allowedCidrs: string[];
  sshPort: number;
  managerPort: number;
  market: 'on-demand' | 'spot';
  maxLifetimeMinutes: number;
  manager: 'first' | 'local';
  /** Where the workers dial a `manager: local` (this machine's public address or DNS name). */
  managerAddress: string | undefined;
  remoteDir: string | undefined;
  endpoint: string | undefined;
  profile: string | undefined;
  waitTimeoutMs: number;
  pollIntervalMs: number;
}

const KEYS = [
  'id', 'regions', 'instanceType', 'image', 'user', 'publicKey', 'privateKey', 'rootVolume', 'allowedCidrs',
  'sshPort', 'managerPort', 'market', 'maxLifetime', 'manager', 'managerAddress', 'remoteDir', 'endpoint', 'profile', 'waitTimeout', 'pollInterval',
];
const ID = /^[a-z0-9][a-z0-9-]{0,31}$/;
const REGION = /^[a-z]{2}(-[a-z]+)+-\d{1,2}$/;
const AMI = /^ami-[0-9a-f]{8,17}$/;
const INSTANCE_TYPE = /^[a-z0-9-]+\.[a-z0-9-]+$/;
const USER = /^[a-z_][a-z0-9_.-]{0,31}$/;
const ENV_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** Reads and checks a settings file; throws one TestbedError listing every problem. */
export function loadTestbedSettings(file: string = DEFAULT_SETTINGS_FILE, env: NodeJS.ProcessEnv = process.env): TestbedSettings {
  let text: string;
  try {
    const size = fs.statSync(file).size;
    if (size > MAX_SETTINGS_BYTES) throw new TestbedError(ErrorCodes.TESTBED_SETTINGS, `${file}: ${size} bytes, over the limit of ${MAX_SETTINGS_BYTES}`);
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof TestbedError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    const hint = code === 'ENOENT' ? ` (make one from docs/testbed.md, or name it with --settings FILE)` : '';
    throw new TestbedError(ErrorCodes.TESTBED_SETTINGS, `${file}: cannot read the testbed settings: ${code ?? String(err)}${hint}`, { cause: err });
  }
  return parseTestbedSettings(text, file, env);
}

/** Parses and checks settings text; `file` names it in messages and anchors relative key paths. */
export function parseTestbedSettings(text: string, file = DEFAULT_SETTINGS_FILE, env: NodeJS.ProcessEnv = process.env): TestbedSettings {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const first = doc.errors[0]!;
    const line = lineCounter.linePos(first.pos[0]).line;
    throw new TestbedError(ErrorCodes.TESTBED_SETTINGS, `${file}:${line}: not valid YAML: ${first.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`);
  }
  const c = new Checker(doc, lineCounter, file, env);
  const settings = c.check(path.dirname(path.resolve(file)));
  if (c.problems.length > 0 || !settings) {
    const shown = c.problems.length === 1 ? c.problems[0]! : `${c.problems.length} problems:\n  ${c.problems.join('\n  ')}`;
    throw new TestbedError(ErrorCodes.TESTBED_SETTINGS, shown);
  }
  return settings;
}

/** A duration as the settings write it: `90s`, `30m`, `8h`, `1.5h`, or a bare number of `unit`. */
export function parseDuration(value: unknown, unitMs: number): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value) && value > 0) return value * unitMs;
  if (typeof value !== 'string') return undefined;
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/.exec(value.trim());
  if (!m) return undefined;
  const n = Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
  return n > 0 ? n : undefined;
}

/** True for an IPv4 or IPv6 CIDR (`203.0.113.7/32`, `2001:db8::/48`). */
export function isCidr(value: string): boolean {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(value);
  if (!m) return false;
  const family = isIP(m[1]!);
  const bits = Number(m[2]);
  return (family === 4 && bits <= 32) || (family === 6 && bits <= 128);
}

function expandHome(p: string, base: string): string {
  if (p === '~' || p.startsWith('~/')) return path.join(os.homedir(), p.slice(1));
  return path.resolve(base, p);
}

class Checker {
  readonly problems: string[] = [];
  readonly #root: Record<string, unknown> | undefined;

  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
    private readonly file: string,
    private readonly env: NodeJS.ProcessEnv,
  ) {
    const js = doc.toJS({ maxAliasCount: 100 }) as unknown;
    this.#root = js !== null && typeof js === 'object' && !Array.isArray(js) ? (js as Record<string, unknown>) : undefined;
  }

  check(base: string): TestbedSettings | undefined {
    const root = this.#root;
    if (!root) {
      this.problems.push(`${this.file}:1: expected a map of settings (id, regions, image, allowedCidrs, …), got ${this.doc.contents === null ? 'an empty file' : 'something else'}`);
      return undefined;
    }
    for (const key of Object.keys(root)) if (!KEYS.includes(key)) this.problem([key], `${key}: unknown setting (the settings are: ${KEYS.join(', ')})`, true);

    const id = this.string(['id'], undefined, ID, 'a testbed id: 1 to 32 lowercase letters, digits or "-", starting with a letter or digit');
    const regions = this.regions();
    const instanceType = this.string(['instanceType'], DEFAULT_INSTANCE_TYPE, INSTANCE_TYPE, 'an EC2 instance type such as t3.small');
    const image = this.image(regions);
    const user = this.string(['user'], DEFAULT_USER, USER, 'a login name such as admin, ubuntu or ec2-user');
    const publicKey = this.string(['publicKey'], DEFAULT_PUBLIC_KEY, /./, 'the path of an OpenSSH public key file');
    const privateKey = this.string(['privateKey'], publicKey?.replace(/\.pub$/, ''), /./, 'the path of the private key beside the public key');
    const rootVolumeGiB = this.integer(['rootVolume'], DEFAULT_ROOT_VOLUME_GIB, 1, 16384, 'a size in GiB from 1 to 16384');
    const allowedCidrs = this.cidrs();
    const sshPort = this.integer(['sshPort'], DEFAULT_SSH_PORT, 1, 65535, 'a port from 1 to 65535');
    const managerPort = this.integer(['managerPort'], DEFAULT_MANAGER_PORT, 1, 65535, 'a port from 1 to 65535');
    const market = this.choice(['market'], 'on-demand', ['on-demand', 'spot'] as const);
    const manager = this.choice(['manager'], 'first', ['first', 'local'] as const);
    const managerAddress = this.string(['managerAddress'], undefined, /^[A-Za-z0-9.:-]{1,253}$/, 'the address or DNS name the workers dial this machine at', true);
    if (manager === 'local' && managerAddress === undefined && this.#value(['managerAddress']) === undefined) {
      this.problem(['manager'], 'manager: local needs managerAddress: the address or DNS name the instances dial this machine at');
    }
    const maxLifetimeMinutes = this.duration(['maxLifetime'], DEFAULT_MAX_LIFETIME_MINUTES * 60_000, 60_000, MAX_LIFETIME_LIMIT_MINUTES * 60_000, 'a lifetime such as 8h or 90m (whole minutes, at least 1m, at most 7d)');
    const waitTimeoutMs = this.duration(['waitTimeout'], DEFAULT_WAIT_TIMEOUT_MS, 1000, 24 * 3_600_000, 'a duration such as 10m or 90s (1s to 24h)');
    const pollIntervalMs = this.duration(['pollInterval'], DEFAULT_POLL_INTERVAL_MS, 10, 600_000, 'a duration such as 5s or 200ms (10ms to 10m)');
    const remoteDir = this.string(['remoteDir'], undefined, /^[^\0]+$/, 'a directory on the hosts', true);
    const endpoint = this.string(['endpoint'], this.env[ENDPOINT_ENV] || undefined, /^https?:\/\/[^\s]+$/, 'an http(s) URL', true);
    const profile = this.string(['profile'], undefined, /^[A-Za-z0-9_.+=,@-]+$/, 'a profile name from ~/.aws/config', true);
    if (this.problems.length > 0) return undefined;
    return {
      file: this.file,
      id: id!,
      regions: regions!,
      instanceType: instanceType!,
      image: image!,
      user: user!,
      publicKeyFile: expandHome(publicKey!, base),
      identityFile: expandHome(privateKey!, base),
      rootVolumeGiB: rootVolumeGiB!,
      allowedCidrs: allowedCidrs!,
      sshPort: sshPort!,
      managerPort: managerPort!,
      market: market!,
      maxLifetimeMinutes: Math.round(maxLifetimeMinutes! / 60_000),
      manager: manager!,
      managerAddress,
      remoteDir,
      endpoint,
      profile,
      waitTimeoutMs: waitTimeoutMs!,
      pollIntervalMs: pollIntervalMs!,
    };
  }

  /** The line of a key's value (or of the key, or of the nearest map that holds it). */
  #line(keys: (string | number)[], ofKey = false): number {
    for (let n = keys.length; n >= 0; n--) {
      const node = this.doc.getIn(keys.slice(0, n), true) as Node | undefined;
      if (n === keys.length && ofKey && n > 0) {
        const parent = this.doc.getIn(keys.slice(0, n - 1), true) as Node | undefined;
        if (parent && isMap(parent)) {
          const pair = parent.items.find((p) => (p.key as { value?: unknown } | null)?.value === keys[n - 1]);
          const range = (pair?.key as Node | undefined)?.range;
          if (range) return this.lines.linePos(range[0]).line;
        }
      }
      if (node?.range) return this.lines.linePos(node.range[0]).line;
    }
    return 1;
  }

  problem(keys: (string | number)[], message: string, ofKey = false): void {
    this.problems.push(`${this.file}:${this.#line(keys, ofKey)}: ${message}`);
  }

  #value(keys: (string | number)[]): unknown {
    let v: unknown = this.#root;
    for (const k of keys) v = v !== null && typeof v === 'object' ? (v as Record<string | number, unknown>)[k] : undefined;
    return v;
  }

  #name(keys: (string | number)[]): string {
    return keys.map((k, i) => (typeof k === 'number' ? `[${k}]` : i === 0 ? k : `.${k}`)).join('');
  }

  /** A string with `${NAME}` and `${NAME:-default}` replaced from the environment. */
  #substitute(keys: (string | number)[], value: string): string | undefined {
    let missing: string | undefined;
    const out = value.replace(ENV_REF, (_all, name: string, fallback: string | undefined) => {
      const v = this.env[name];
      if (v !== undefined && v !== '') return v;
      if (fallback !== undefined) return fallback;
      missing ??= name;
      return '';
    });
    if (missing !== undefined) {
      this.problem(keys, `${this.#name(keys)}: the environment variable ${missing} is not set (write \${${missing}:-default} for a default)`);
      return undefined;
    }
    return out;
  }

  string(keys: (string | number)[], fallback: string | undefined, pattern: RegExp, expected: string, optional = false): string | undefined {
    const raw = this.#value(keys);
    if (raw === undefined || raw === null) {
      if (fallback === undefined && !optional) this.problem(keys.slice(0, -1), `${this.#name(keys)}: missing; expected ${expected}`);
      return fallback;
    }
    if (typeof raw !== 'string' && typeof raw !== 'number') {
      this.problem(keys, `${this.#name(keys)}: expected ${expected}, got ${describe(raw)}`);
      return undefined;
    }
    const value = this.#substitute(keys, String(raw));
    if (value === undefined) return undefined;
    if (!pattern.test(value)) {
      this.problem(keys, `${this.#name(keys)}: expected ${expected}, got ${JSON.stringify(value)}`);
      return undefined;
    }
    return value;
  }

  integer(keys: string[], fallback: number, min: number, max: number, expected: string): number | undefined {
    const raw = this.#value(keys);
    if (raw === undefined || raw === null) return fallback;
    const value = typeof raw === 'string' ? Number(this.#substitute(keys, raw)) : raw;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      this.problem(keys, `${this.#name(keys)}: expected ${expected}, got ${describe(raw)}`);
      return undefined;
    }
    return value;
  }

  duration(keys: string[], fallbackMs: number, minMs: number, maxMs: number, expected: string): number | undefined {
    const raw = this.#value(keys);
    if (raw === undefined || raw === null) return fallbackMs;
    const text = typeof raw === 'string' ? this.#substitute(keys, raw) : raw;
    // A bare number is minutes for maxLifetime, seconds otherwise.
    const ms = parseDuration(text, keys[0] === 'maxLifetime' ? 60_000 : 1000);
    if (ms === undefined || ms < minMs || ms > maxMs || (keys[0] === 'maxLifetime' && ms % 60_000 !== 0)) {
      this.problem(keys, `${this.#name(keys)}: expected ${expected}, got ${describe(raw)}`);
      return undefined;
    }
    return ms;
  }

  choice<T extends string>(keys: string[], fallback: T, choices: readonly T[]): T | undefined {
    const value = this.string(keys, fallback, /./, choices.join(' or '));
    if (value === undefined) return undefined;
    if (!choices.includes(value as T)) {
      this.problem(keys, `${this.#name(keys)}: expected ${choices.map((c) => JSON.stringify(c)).join(' or ')}, got ${JSON.stringify(value)}`);
      return undefined;
    }
    return value as T;
  }

  regions(): string[] | undefined {
    const raw = this.#value(['regions']);
    if (raw === undefined || raw === null) {
      this.problem([], 'regions: missing; expected a list of AWS regions, e.g. [us-east-1, eu-west-1]');
      return undefined;
    }
    const list = typeof raw === 'string' ? [raw] : raw;
    if (!Array.isArray(list) || list.length === 0) {
      this.problem(['regions'], `regions: expected a list of at least one AWS region, got ${describe(raw)}`);
      return undefined;
    }
    const out: string[] = [];
    list.forEach((_r, i) => {
      const keys = typeof raw === 'string' ? ['regions'] : ['regions', i];
      const r = this.string(keys, undefined, REGION, 'an AWS region name such as us-east-1');
      if (r === undefined) return;
      if (out.includes(r)) this.problem(keys, `${this.#name(keys)}: ${r} is listed twice`);
      else out.push(r);
    });
    return out.length === list.length ? out : undefined;
  }

  image(regions: string[] | undefined): ImageChoice | undefined {
    const raw = this.#value(['image']);
    const expected = 'an AMI id per region ({ us-east-1: ami-… }) or a lookup ({ name: "debian-12-amd64-*", owner: "136693071363" })';
    if (raw === undefined || raw === null) {
      this.problem([], `image: missing; expected ${expected}`);
      return undefined;
    }
    if (typeof raw !== 'object' || Array.isArray(raw)) {
      this.problem(['image'], `image: expected ${expected}, got ${describe(raw)}`);
      return undefined;
    }
    const map = raw as Record<string, unknown>;
    if ('name' in map || 'owner' in map) {
      for (const key of Object.keys(map)) if (key !== 'name' && key !== 'owner') this.problem(['image', key], `image.${key}: unknown key of an image lookup (name, owner)`, true);
      const name = this.string(['image', 'name'], undefined, /^.{1,128}$/, 'an image name pattern (* and ? allowed), e.g. "debian-12-amd64-*"');
      const owner = this.string(['image', 'owner'], undefined, /^(\d{12}|amazon|aws-marketplace|self)$/, 'the owner: a 12-digit account id, amazon, aws-marketplace or self');
      return name !== undefined && owner !== undefined ? { kind: 'lookup', name, owner } : undefined;
    }
    const ids: Record<string, string> = {};
    for (const key of Object.keys(map)) {
      const ami = this.string(['image', key], undefined, AMI, 'an AMI id such as ami-0123456789abcdef0');
      if (ami !== undefined) ids[key] = ami;
      if (regions && !regions.includes(key)) this.problem(['image', key], `image.${key}: not one of the regions (${regions.join(', ')})`, true);
    }
    for (const r of regions ?? []) if (!(r in map)) this.problem(['image'], `image: no AMI id for the region ${r} (AMI ids differ per region)`);
    return { kind: 'ids', ids };
  }

  cidrs(): string[] | undefined {
    const raw = this.#value(['allowedCidrs']);
    const expected = 'a list of the CIDRs allowed to reach SSH and the manager port, e.g. [203.0.113.7/32] (there is no default that opens them to the world)';
    if (raw === undefined || raw === null) {
      this.problem([], `allowedCidrs: missing; expected ${expected}`);
      return undefined;
    }
    if (!Array.isArray(raw) || raw.length === 0) {
      this.problem(['allowedCidrs'], `allowedCidrs: ${Array.isArray(raw) ? 'the list is empty' : `got ${describe(raw)}`}; expected ${expected}`);
      return undefined;
    }
    const out: string[] = [];
    raw.forEach((_c, i) => {
      const c = this.string(['allowedCidrs', i], undefined, /./, 'a CIDR such as 203.0.113.7/32');
      if (c === undefined) return;
      if (!isCidr(c)) this.problem(['allowedCidrs', i], `allowedCidrs[${i}]: expected a CIDR such as 203.0.113.7/32 or 2001:db8::/48, got ${JSON.stringify(c)}`);
      else out.push(c);
    });
    return out.length === raw.length ? [...new Set(out)] : undefined;
  }
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return value.length === 0 ? 'an empty list' : 'a list';
  if (value === null) return 'nothing';
  if (typeof value === 'object') return 'a map';
  return JSON.stringify(value);
}
