/**
 * The envelopes that cross a troupe connection. Every WebSocket message is one binary frame holding
 * a msgpack array of envelopes (a batch; usually one). The first frame each way is the handshake:
 * `hello` from the dialling side, answered by `welcome` or `reject`. After it, envelopes route actor
 * messages (`send`), termination watches, receptionist traffic and membership.
 *
 * A `send` whose message has large `data` may instead come as a raw header and payload, two
 * messages (src/transport/raw-frame.ts); put back together, it is checked as any envelope.
 * Everything decoded is untrusted until `checkEnvelope` says it has the shape declared here.
 * The schemas are declared deferred (deferred-schema.ts): the checks are prebuilt ones, TypeBox is
 * loaded only to say what is wrong with an invalid envelope (schema-check.ts).
 * Field names are short on purpose: `t` is the tag of every envelope.
 */
import type { Static, TSchema } from '@sinclair/typebox';
import { Type } from './deferred-schema.js';
import { SchemaCheck } from './schema-check.js';
import { MAX_NODE_NAME_LENGTH, NODE_NAME_PATTERN, TActorRef } from './actor-ref.js';
import { ROLES } from './roles.js';
import { ErrorCodes } from './error-codes.js';

const Name = Type.String({ minLength: 1, maxLength: MAX_NODE_NAME_LENGTH, pattern: NODE_NAME_PATTERN });
const Key = Type.String({ minLength: 1, maxLength: 128 });
const Code = Type.String({ minLength: 1, maxLength: 64 });
const Reason = Type.String({ maxLength: 2048 });
/**
 * A map whose keys are at most `maxKey` characters. (TypeBox drops `maxLength` on a Record's key
 * schema; a key pattern with additionalProperties false is what holds.)
 */
export function BoundedRecord<T extends TSchema>(maxKey: number, value: T) {
  return Type.Record(Type.String({ pattern: `^[\\s\\S]{0,${maxKey}}$` }), value, { additionalProperties: false });
}
export const Meta = BoundedRecord(64, Type.Unknown());
const RoleT = Type.Union(ROLES.map((r) => Type.Literal(r)));

export const MEMBER_STATUSES = ['up', 'unreachable', 'down'] as const;
export type MemberStatus = (typeof MEMBER_STATUSES)[number];
const Status = Type.Union(MEMBER_STATUSES.map((s) => Type.Literal(s)));

export const TERMINATION_REASONS = ['stopped', 'node-down'] as const;
export type TerminationReason = (typeof TERMINATION_REASONS)[number];

const HelloFields = {
  protocol: Type.Integer(),
  node: Name,
  role: RoleT,
  incarnation: Type.String({ minLength: 1, maxLength: 64 }),
  meta: Meta,
};
export const Hello = Type.Object({ t: Type.Literal('hello'), ...HelloFields });
export const Welcome = Type.Object({ t: Type.Literal('welcome'), ...HelloFields });
export const Reject = Type.Object({ t: Type.Literal('reject'), code: Code, reason: Reason });

/** An actor message for `to`. `q` is the reply ref of a query, so a failed delivery can fail it at once. */
export const Send = Type.Object({
  t: Type.Literal('send'),
  to: TActorRef(),
  msg: Type.Unknown(),
  q: Type.Optional(TActorRef()),
  /** The node that sent it, stamped by the manager when it forwards between two other nodes. */
  from: Type.Optional(Name),
});
/** A message for `to` (a query's reply ref) could not be delivered where it was sent. */
export const Undeliverable = Type.Object({ t: Type.Literal('undeliverable'), to: TActorRef(), code: Code, reason: Reason });
/** Sent back to a peer whose frame or envelope was rejected; logged, never delivered to an actor. */
export const ErrorEnvelope = Type.Object({ t: Type.Literal('error'), code: Code, reason: Reason });
/** Membership, from the manager to every other node. */
export const Member = Type.Object({
  t: Type.Literal('member'),
  node: Name,
  role: RoleT,
  incarnation: Type.String({ minLength: 1, maxLength: 64 }),
  status: Status,
  meta: Meta,
});
export const Watch = Type.Object({ t: Type.Literal('watch'), watcher: TActorRef(), target: TActorRef() });
export const Unwatch = Type.Object({ t: Type.Literal('unwatch'), watcher: TActorRef(), target: TActorRef() });
export const CheckIn = Type.Object({ t: Type.Literal('checkIn'), key: Key, ref: TActorRef(), meta: Meta });
export const CheckOut = Type.Object({ t: Type.Literal('checkOut'), key: Key, ref: TActorRef() });
export const Subscribe = Type.Object({ t: Type.Literal('subscribe'), key: Key, subscriber: TActorRef() });
export const Unsubscribe = Type.Object({ t: Type.Literal('unsubscribe'), key: Key, subscriber: TActorRef() });
export const Lookup = Type.Object({ t: Type.Literal('lookup'), key: Key, replyTo: TActorRef() });

export type Hello = Static<typeof Hello>;
export type Welcome = Static<typeof Welcome>;
export type Reject = Static<typeof Reject>;
export type Send = Static<typeof Send>;
export type Undeliverable = Static<typeof Undeliverable>;
export type ErrorEnvelope = Static<typeof ErrorEnvelope>;
export type Member = Static<typeof Member>;
export type Watch = Static<typeof Watch>;
export type Unwatch = Static<typeof Unwatch>;
export type CheckIn = Static<typeof CheckIn>;
export type CheckOut = Static<typeof CheckOut>;
export type Subscribe = Static<typeof Subscribe>;
export type Unsubscribe = Static<typeof Unsubscribe>;
export type Lookup = Static<typeof Lookup>;

export type HandshakeEnvelope = Hello | Welcome | Reject;
export type Envelope =
  | Send
  | Undeliverable
  | ErrorEnvelope
  | Member
  | Watch
  | Unwatch
  | CheckIn
  | CheckOut
  | Subscribe
  | Unsubscribe
  | Lookup;
export type EnvelopeTag = Envelope['t'];

/** Envelopes only the manager (the hub) may send. */
export const HUB_ONLY: ReadonlySet<string> = new Set(['member']);

function checkOf(schema: TSchema): SchemaCheck {
  return new SchemaCheck(schema);
}

const handshakeChecks: Record<string, SchemaCheck> = {
  hello: checkOf(Hello),
  welcome: checkOf(Welcome),
  reject: checkOf(Reject),
};

const envelopeChecks: Record<string, SchemaCheck> = {
  send: checkOf(Send),
  undeliverable: checkOf(Undeliverable),
  error: checkOf(ErrorEnvelope),
  member: checkOf(Member),
  watch: checkOf(Watch),
  unwatch: checkOf(Unwatch),
  checkIn: checkOf(CheckIn),
  checkOut: checkOf(CheckOut),
  subscribe: checkOf(Subscribe),
  unsubscribe: checkOf(Unsubscribe),
  lookup: checkOf(Lookup),
};

/** What a check says of a value that is not what was expected. */
export interface Invalid {
  code: typeof ErrorCodes.INVALID_MESSAGE | typeof ErrorCodes.UNKNOWN_MESSAGE;
  reason: string;
}

function describeFirstError(check: SchemaCheck, value: unknown, what: string): string {
  const first = check.firstError(value);
  if (!first) return `${what} has the wrong shape`;
  return `${what}${first.path ? ` at ${first.path}` : ''}: ${first.message}`;
}

function tagOf(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const t = (value as { t?: unknown }).t;
  return typeof t === 'string' ? t : undefined;
}

function checkWith(table: Record<string, SchemaCheck>, value: unknown): Invalid | undefined {
  const tag = tagOf(value);
  if (tag === undefined) return { code: ErrorCodes.INVALID_MESSAGE, reason: 'an envelope must be a map with a string tag "t"' };
  const check = Object.hasOwn(table, tag) ? table[tag] : undefined;
  if (!check) return { code: ErrorCodes.UNKNOWN_MESSAGE, reason: `unknown envelope type ${JSON.stringify(tag.slice(0, 64))}` };
  if (check.test(value)) return undefined;
  return { code: ErrorCodes.INVALID_MESSAGE, reason: describeFirstError(check, value, `envelope "${tag}"`) };
}

/** Checks a decoded value is a valid envelope (not a handshake one); undefined when it is. */
export function checkEnvelope(value: unknown): Invalid | undefined {
  return checkWith(envelopeChecks, value);
}

/** Checks a decoded value is a valid handshake envelope; undefined when it is. */
export function checkHandshake(value: unknown): Invalid | undefined {
  return checkWith(handshakeChecks, value);
}
