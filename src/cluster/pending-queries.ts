/**
 * The queries a node waits on. Each has a temporary reply ref `$q/N.<random>` on this node:
 * unguessable, so another node cannot fail our query by naming it (48 random bits each, from the
 * system's CSPRNG, drawn QUERY_TAGS_PER_DRAW at a time: one draw a query cost more than the rest of
 * a local query). A query ends exactly once:
 * with the first message its reply ref gets, at its timeout (TROUPE_E_QUERY_TIMEOUT), or when it is
 * failed with a reason (the target's node went down, no such actor, forbidden, shutdown); its reply
 * ref is gone from then on.
 * Cost: the queries are also kept by the node they were asked of, so a node going down costs its
 * own queries, not a walk over every pending one (a submitter holding 30,000 submits to the manager
 * walked them all for each of 100 workers down).
 */
import { randomBytes } from 'node:crypto';
import { ActorRef } from '../../protocols/actor-ref.js';
import { DeliveryError, ErrorCodes, ForbiddenError, type ErrorCode } from '../errors.js';

/** Reply-ref tags drawn from the CSPRNG at once (12 hex digits, 48 bits, each). */
export const QUERY_TAGS_PER_DRAW = 512;
const TAG_HEX = 12;

interface Pending {
  node: string;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export class PendingQueries {
  #pending = new Map<string, Pending>();
  /** The paths of the pending queries asked of each node. */
  #ofNode = new Map<string, Set<string>>();
  #seq = 0;
  /** Random hex for the next reply refs' tags, and where the next tag starts in it. */
  #tags = '';
  #tagAt = 0;

  /** `receivers`: the node's temporary-path receivers, where a query's reply ref lives. */
  constructor(
    private readonly node: string,
    private readonly receivers: Map<string, (msg: unknown) => void>,
  ) {}

  /** Waits for one message at a new reply ref; `send` sends the query and says whether it could. */
  ask<R>(node: string, timeoutMs: number, what: string, send: (replyTo: ActorRef) => boolean): Promise<R> {
    const path = `$q/${++this.#seq}.${this.#tag()}`;
    const replyTo = new ActorRef(this.node, path);
    return new Promise<R>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#end(path, node);
        reject(new DeliveryError(ErrorCodes.QUERY_TIMEOUT, `${what} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(path, { node, reject, timer });
      let paths = this.#ofNode.get(node);
      if (!paths) this.#ofNode.set(node, (paths = new Set()));
      paths.add(path);
      this.receivers.set(path, (msg) => {
        clearTimeout(timer);
        this.#end(path, node);
        resolve(msg as R);
      });
      if (!send(replyTo)) this.fail(path, ErrorCodes.NODE_UNREACHABLE, `${what}: node ${node} is unreachable`);
    });
  }

  /** Forgets the query at `path` (asked of `node`): no longer pending, its reply ref gone. */
  #end(path: string, node: string): void {
    this.#pending.delete(path);
    this.receivers.delete(path);
    const paths = this.#ofNode.get(node);
    if (paths?.delete(path) && paths.size === 0) this.#ofNode.delete(node);
  }

  /** Pending queries (all, or those asked of `node`). */
  size(node?: string): number {
    return node === undefined ? this.#pending.size : (this.#ofNode.get(node)?.size ?? 0);
  }

  /** The next unguessable tag: every one used once, fresh random bits when the draw is used up. */
  #tag(): string {
    if (this.#tagAt >= this.#tags.length) (this.#tags = randomBytes((QUERY_TAGS_PER_DRAW * TAG_HEX) / 2).toString('hex')), (this.#tagAt = 0);
    const tag = this.#tags.slice(this.#tagAt, this.#tagAt + TAG_HEX);
    this.#tagAt += TAG_HEX;
    return tag;
  }

  /** Fails the query waiting at `path`, if one is. */
  fail(path: string, code: string, reason: string): void {
    const p = this.#pending.get(path);
    if (!p) return;
    clearTimeout(p.timer);
    this.#end(path, p.node);
    const Kind = code === ErrorCodes.FORBIDDEN ? ForbiddenError : DeliveryError;
    p.reject(new Kind(code as ErrorCode, reason));
  }

  /** Fails every query asked of `node` (it went down). */
  failNode(node: string): void {
    const paths = this.#ofNode.get(node);
    if (!paths) return;
    for (const path of [...paths]) this.fail(path, ErrorCodes.NODE_DOWN, `node ${node} went down`);
  }

  /** Rejects every query (the node shuts down). */
  rejectAll(err: Error): void {
    for (const [path, p] of this.#pending) {
      clearTimeout(p.timer);
      this.#pending.delete(path);
      p.reject(err);
    }
    this.#ofNode.clear();
  }
}

/** A query's temporary reply ref: someone waits on it. */
export function isQueryPath(path: string): boolean {
  return path.startsWith('$q/');
}
