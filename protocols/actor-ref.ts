/**
 * A reference to an actor anywhere in the cluster: the node it lives on and its path there. It is
 * a value: it crosses the wire as `{node, path}` (a msgpackr extension, so refs nested anywhere in a
 * message come back to life as ActorRef on the other side) and compares by value.
 */
import type { TUnsafe } from '@sinclair/typebox';
import { Kind } from './deferred-schema.js';
import { defineKind } from './schema-check.js';

/**
 * Node names: what a certificate's CN may be, or, for a client, `<CN>~<session>`: each connection
 * of a client certificate is its own member (one person's many `troupe run` at once), and the
 * session part is unique per process. Worker and manager names never carry a session.
 */
export const NODE_NAME = /^[a-z0-9][a-z0-9._-]{0,62}(?:~[a-z0-9]{1,16})?$/i;
/** NODE_NAME as a JSON-schema pattern (no flags there). */
export const NODE_NAME_PATTERN = '^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}(?:~[a-zA-Z0-9]{1,16})?$';
/** Between a client certificate's name and its session in a node name. */
export const SESSION_SEPARATOR = '~';
/** Longest node name: a 63-character CN, the separator and a 16-character session. */
export const MAX_NODE_NAME_LENGTH = 80;

/** The certificate name (CN) a node name was admitted under: the part before `~`, or all of it. */
export function certificateName(node: string): string {
  const at = node.indexOf(SESSION_SEPARATOR);
  return at < 0 ? node : node.slice(0, at);
}
/** Actor paths: nact names joined by '/', or a temporary '$q/N' reply ref. */
export const ACTOR_PATH = /^[a-z0-9$_.+!*'(),-]+(\/[a-z0-9$_.+!*'(),-]+)*$/i;
export const MAX_PATH_LENGTH = 512;

/** A temporary path (a query's `$q/N` reply ref, a receiver's `$r/N`) starts with '$': it names one exchange, not a lasting actor. */
export function isTemporaryPath(path: string): boolean {
  return path.charCodeAt(0) === 0x24; // '$'
}

export class ActorRef {
  constructor(
    readonly node: string,
    readonly path: string,
  ) {}

  /** Builds a ref from untrusted parts, or returns undefined when they are not a valid ref. */
  static parse(node: unknown, path: unknown): ActorRef | undefined {
    if (typeof node !== 'string' || typeof path !== 'string') return undefined;
    if (!NODE_NAME.test(node) || path.length > MAX_PATH_LENGTH || !ACTOR_PATH.test(path)) return undefined;
    return new ActorRef(node, path);
  }

  equals(other: ActorRef | undefined): boolean {
    return other !== undefined && other.node === this.node && other.path === this.path;
  }

  toString(): string {
    return `${this.node}/${this.path}`;
  }

  toJSON(): { node: string; path: string } {
    return { node: this.node, path: this.path };
  }
}

const ACTOR_REF_KIND = 'troupe:ActorRef';
defineKind(ACTOR_REF_KIND, (value) => value instanceof ActorRef);

/** The schema of an ActorRef field in a message: what TypeBox's `Type.Unsafe<ActorRef>({ [Kind]: ACTOR_REF_KIND })` makes. */
export const TActorRef = (): TUnsafe<ActorRef> => ({ [Kind]: ACTOR_REF_KIND }) as unknown as TUnsafe<ActorRef>;
