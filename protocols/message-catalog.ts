/**
 * The actor messages a node accepts from other nodes. Every message that arrives over the wire is
 * checked here before any actor sees it: it must be a map with a string `type` that the catalog
 * knows, of the declared shape, and the sending node's role must be allowed to send it.
 * Messages sent between actors of one process are not checked: they never were untrusted.
 * Each type's check is made when the first message of that type arrives, not when the catalog
 * is made: a node accepts dozens of types and a short-lived one (`troupe run`) sees a few. The
 * schemas are declared deferred and checked by prebuilt checks where there are (schema-check.ts),
 * so a process that receives only valid messages of troupe's own types never loads TypeBox.
 */
import type { Static, TObject, TProperties, TLiteral } from '@sinclair/typebox';
import { Type } from './deferred-schema.js';
import type { Role } from './roles.js';
import { ErrorCodes } from './error-codes.js';
import { materialize, SchemaCheck } from './schema-check.js';

export interface MessageSpec<T extends string = string, P extends TProperties = TProperties> {
  readonly type: T;
  /** The TypeBox schema (built, and TypeBox loaded, when first read). */
  readonly schema: TObject<P & { type: TLiteral<T> }>;
  /** The roles that may send it; every role when absent. */
  readonly allow?: readonly Role[];
}

/** The schema of each spec made by defineMessage, as declared (deferred). */
const declared = new WeakMap<MessageSpec, unknown>();

/** Declares a message: its type tag, its fields, which roles may send it. */
export function defineMessage<T extends string, P extends TProperties>(
  type: T,
  properties: P,
  options: { allow?: readonly Role[] } = {},
): MessageSpec<T, P> {
  const schema = Type.Object({ ...properties, type: Type.Literal(type) } as P & { type: TLiteral<T> });
  const spec: MessageSpec<T, P> = {
    type,
    get schema() {
      return materialize(schema);
    },
    allow: options.allow,
  };
  declared.set(spec as unknown as MessageSpec, schema);
  return spec;
}

/** A spec's schema as declared: deferred when defineMessage made it (no TypeBox loaded). */
export function declaredSchema(spec: MessageSpec): unknown {
  return declared.has(spec) ? declared.get(spec) : spec.schema;
}

/** The TypeScript type of a message declared with defineMessage. */
export type MessageOf<S> = S extends MessageSpec<string, TProperties> ? Static<S['schema']> : never;

export type CatalogVerdict =
  | { ok: true }
  | { ok: false; code: typeof ErrorCodes.INVALID_MESSAGE | typeof ErrorCodes.UNKNOWN_MESSAGE | typeof ErrorCodes.FORBIDDEN; reason: string };

interface Entry {
  /** Prepared on first use. */
  check: SchemaCheck;
  allow?: ReadonlySet<Role>;
}

const OK: CatalogVerdict = { ok: true };

export class MessageCatalog {
  readonly #entries = new Map<string, Entry>();

  constructor(specs: Iterable<MessageSpec> = []) {
    for (const spec of specs) this.add(spec);
  }

  /** Adds message specs; a type may be declared once. */
  add(...specs: MessageSpec[]): this {
    for (const spec of specs) {
      if (this.#entries.has(spec.type)) throw new TypeError(`message type ${JSON.stringify(spec.type)} is declared twice`);
      this.#entries.set(spec.type, {
        check: new SchemaCheck(declaredSchema(spec)),
        allow: spec.allow ? new Set(spec.allow) : undefined,
      });
    }
    return this;
  }

  has(type: string): boolean {
    return this.#entries.has(type);
  }

  /** Checks an untrusted message sent by a node of role `from`. */
  check(msg: unknown, from: Role): CatalogVerdict {
    if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) {
      return { ok: false, code: ErrorCodes.INVALID_MESSAGE, reason: 'a message must be a map with a string "type"' };
    }
    const type = (msg as { type?: unknown }).type;
    if (typeof type !== 'string') {
      return { ok: false, code: ErrorCodes.INVALID_MESSAGE, reason: 'a message must be a map with a string "type"' };
    }
    const entry = this.#entries.get(type);
    if (!entry) return { ok: false, code: ErrorCodes.UNKNOWN_MESSAGE, reason: `unknown message type ${JSON.stringify(type.slice(0, 64))}` };
    if (entry.allow && !entry.allow.has(from)) {
      return { ok: false, code: ErrorCodes.FORBIDDEN, reason: `a ${from} may not send "${type}"` };
    }
    if (entry.check.test(msg)) return OK;
    const first = entry.check.firstError(msg);
    return {
      ok: false,
      code: ErrorCodes.INVALID_MESSAGE,
      reason: `message "${type}"${first?.path ? ` at ${first.path}` : ''}: ${first?.message ?? 'wrong shape'}`,
    };
  }
}
