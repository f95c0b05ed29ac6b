/**
 * What every deploy command shares: the options, the CA, the known hosts, the chosen hosts, running
 * one job per host with at most `fanout` at once, and the per-host result each command reports. A
 * host's failure is its result (a stable code and the host's own message), never an exception that
 * stops the other hosts.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Pem } from '../../certs/index.js';
import { CertificateError, DeployError, ErrorCodes, settingError, TroupeError, type ErrorCode } from '../errors.js';
import { selectHosts, type HostSpec, type Inventory } from './inventory.js';
import { KnownHosts } from './known-hosts.js';
import { RemoteHost } from './remote-host.js';
import { DEFAULT_CONNECT_TIMEOUT_MS, SshSession } from './ssh-session.js';

/** Hosts worked on at once. */
export const DEFAULT_FANOUT = 16;
export const MAX_FANOUT = 1024;

export interface FleetOptions {
  inventory: Inventory;
  /** A `--hosts` selection: names, ranges, @groups. Default: every host. */
  hosts?: string;
  fanout?: number;
  /** Overrides the inventory's knownHosts. */
  knownHosts?: string;
  acceptNewHostKeys?: boolean;
  connectTimeoutMs?: number;
  /** Each step of each host, as it starts: for progress lines. */
  onProgress?: (host: string, step: string) => void;
}

export interface HostResult {
  host: string;
  role: HostSpec['role'];
  ok: boolean;
  code?: ErrorCode;
  error?: string;
  /** What was done there (up: connected, uploaded, certificate, started, restarted, joined, …). */
  done: string[];
  ms: number;
}

export interface FleetReport {
  ok: boolean;
  results: HostResult[];
}

export function checkFanout(value: number | undefined): number {
  const n = value ?? DEFAULT_FANOUT;
  if (!Number.isInteger(n) || n < 1 || n > MAX_FANOUT) throw settingError('fanout', value, `a whole number from 1 to ${MAX_FANOUT}`);
  return n;
}

/** The local CA, which signs the nodes' requests and deploy's own client certificate. Never copied anywhere. */
export function loadCa(dir: string): Pem {
  const read = (file: string) => {
    try {
      return fs.readFileSync(path.join(dir, file), 'utf8');
    } catch (cause) {
      throw new CertificateError(
        ErrorCodes.CERT_MISSING,
        `${path.join(dir, file)}: cannot be read; deploy signs the nodes' certificates with the CA there (make one with \`troupe generate-tls-certificates --out ${dir}\`, or set certs: in the inventory)`,
        { cause },
      );
    }
  };
  return { cert: read('ca.crt'), key: read('ca.key') };
}

export function chosenHosts(options: FleetOptions): HostSpec[] {
  return selectHosts(options.inventory, options.hosts);
}

export function knownHostsOf(options: FleetOptions): KnownHosts {
  return KnownHosts.load(options.knownHosts ?? options.inventory.knownHosts);
}

export async function connectHost(spec: HostSpec, options: FleetOptions, knownHosts: KnownHosts): Promise<RemoteHost> {
  const session = await SshSession.connect({
    host: spec.address,
    port: spec.sshPort,
    user: spec.user,
    identity: spec.identity,
    knownHosts,
    acceptNewHostKeys: options.acceptNewHostKeys ?? false,
    connectTimeoutMs: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
  });
  return new RemoteHost(session, spec);
}

/** Runs `job` for every item, at most `limit` at once, in order of the list. */
export async function fanOut<T, R>(items: readonly T[], limit: number, job: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await job(items[i]!);
    }
  });
  await Promise.all(lanes);
  return results;
}

/** A host's result from a thrown error: its code when it is ours, else an unexpected one. */
export function failure(spec: HostSpec, err: unknown, done: string[], started: number): HostResult {
  const code = err instanceof TroupeError ? err.code : ErrorCodes.SSH_COMMAND;
  const message = err instanceof Error ? err.message : String(err);
  return { host: spec.name, role: spec.role, ok: false, code, error: message, done, ms: Date.now() - started };
}

/** A host not worked on because the rollout stopped before it. */
export function notAttempted(spec: HostSpec, why: string): HostResult {
  return { host: spec.name, role: spec.role, ok: false, code: ErrorCodes.NOT_ATTEMPTED, error: `${spec.name}: not attempted: ${why}`, done: [], ms: 0 };
}

export { DeployError };
