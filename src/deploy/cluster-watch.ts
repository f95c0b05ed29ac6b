/**
 * Deploy's view of the cluster: a client node joined to the manager with a short-lived client
 * certificate signed in memory by the local CA (nothing written), following membership and the
 * receptionist listing of `worker`. "Joined" means what a user means: the node is an `up` member
 * and, for a worker, its Worker actor has checked in (so it takes tasks). A restart is told apart
 * from the old process by the member's incarnation. Waiting is on the cluster's own events, never
 * a sleep; it ends at a deadline.
 */
import { randomBytes } from 'node:crypto';
import { WORKER_KEY } from '../../protocols/receptionist-keys.js';
import { issueCertificate, type Identity } from '../../certs/index.js';
import type { Pem } from '../../certs/x509.js';
import type { ListingEntry } from '../../protocols/cluster-messages.js';
import { CLIENT_TASK_MESSAGES } from '../../protocols/tasks.js';
import { ClusterSystem } from '../cluster/cluster-system.js';
import { DeployError, ErrorCodes, TroupeError } from '../errors.js';
import type { Logger } from '../log.js';
import { createLogger } from '../log.js';

/** How long `up` waits for a started node to join. */
export const DEFAULT_JOIN_TIMEOUT_MS = 60_000;
/** How long deploy tries to reach the manager as a client. */
export const DEFAULT_MANAGER_CONNECT_TIMEOUT_MS = 15_000;

export interface Joined {
  incarnation: string;
  since: number;
}

export class ClusterWatch {
  #listing: readonly ListingEntry[] = [];
  #heard = false;
  #wake = new Set<() => void>();
  #stopListing: () => void;

  private constructor(readonly system: ClusterSystem) {
    this.#stopListing = system.receptionist.listing(WORKER_KEY, (entries) => {
      this.#listing = entries;
      this.#heard = true;
      this.#notify();
    });
    system.on('member', () => this.#notify());
  }

  static async connect(options: { ca: Pem; address: string; port: number; timeoutMs?: number; log?: Logger }): Promise<ClusterWatch> {
    const name = `deploy-${randomBytes(4).toString('hex')}`;
    const pair = issueCertificate(options.ca, { name, role: 'client', days: 1 });
    const now = Date.now();
    const identity: Identity = { name, role: 'client', cert: pair.cert, key: pair.key, ca: options.ca.cert, notBefore: new Date(now - 5 * 60_000), notAfter: new Date(now + 86_400_000) };
    const log = options.log ?? createLogger({ node: name, level: 'warn' });
    const system = await ClusterSystem.start({ identity, join: { host: options.address, port: options.port }, messages: CLIENT_TASK_MESSAGES, log });
    let last: TroupeError | undefined;
    system.on('failure', (err) => (last = err));
    const ms = options.timeoutMs ?? DEFAULT_MANAGER_CONNECT_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        system.ready(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new DeployError(ErrorCodes.JOIN_TIMEOUT, `cannot reach the manager at ${options.address}:${options.port} within ${ms / 1000} s${last ? ` (${last.code}: ${last.message})` : ''}`)),
            ms,
          );
        }),
      ]);
    } catch (err) {
      await system.shutdown();
      throw err;
    } finally {
      clearTimeout(timer);
    }
    return new ClusterWatch(system);
  }

  /** The node as the cluster sees it now: up (and checked in, for a worker), or undefined. */
  joined(name: string, role: 'worker' | 'manager' = 'worker'): Joined | undefined {
    const member = this.system.members().find((m) => m.node === name);
    if (!member || member.status !== 'up') return undefined;
    if (role === 'worker' && !this.#listing.some((e) => e.ref.node === name)) return undefined;
    return { incarnation: member.incarnation, since: member.since };
  }

  /** The listing has been heard at least once (so that "not in it" means not joined). */
  async settled(timeoutMs = 5000): Promise<void> {
    await this.#until(() => this.#heard, timeoutMs, () => new DeployError(ErrorCodes.JOIN_TIMEOUT, 'no worker listing from the manager'));
  }

  /**
   * Resolves once `name` has joined with an incarnation other than `notIncarnation` (the process it
   * replaced); rejects with TROUPE_E_JOIN_TIMEOUT at the deadline or when `abort` fires first.
   */
  async waitJoined(name: string, options: { role?: 'worker' | 'manager'; notIncarnation?: string; timeoutMs?: number; abort?: Promise<never> } = {}): Promise<Joined> {
    const ms = options.timeoutMs ?? DEFAULT_JOIN_TIMEOUT_MS;
    let found: Joined | undefined;
    const check = () => {
      const j = this.joined(name, options.role);
      if (j && j.incarnation !== options.notIncarnation) found = j;
      return found !== undefined;
    };
    const waiting = this.#until(check, ms, () => new DeployError(ErrorCodes.JOIN_TIMEOUT, `${name}: started, but did not join the manager within ${ms / 1000} s (its log: troupe deploy logs ${name})`));
    waiting.catch(() => {}); // when abort wins, the deadline still rejects this one: nobody listens then
    await (options.abort ? Promise.race([waiting, options.abort]) : waiting);
    return found!;
  }

  async close(): Promise<void> {
    this.#stopListing();
    await this.system.shutdown();
  }

  #notify(): void {
    for (const wake of [...this.#wake]) wake();
  }

  #until(condition: () => boolean, ms: number, timeout: () => Error): Promise<void> {
    if (condition()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const wake = () => {
        if (!condition()) return;
        done();
        resolve();
      };
      const timer = setTimeout(() => {
        done();
        reject(timeout());
      }, ms);
      const done = () => {
        clearTimeout(timer);
        this.#wake.delete(wake);
      };
      this.#wake.add(wake);
    });
  }
}
