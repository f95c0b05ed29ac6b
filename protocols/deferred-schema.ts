/**
 * Message schemas declared without loading TypeBox. TypeBox is about 220 modules, a third of what
 * a one-shot `troupe run` would load (issue 17), and a process needs it only to check a message
 * type that has no prebuilt check (prebuilt-checks.ts), or to say what is wrong with an invalid one.
 *
 * `Type` here has TypeBox's signature, so every `Static<typeof X>` is TypeBox's own type; but a
 * call only records itself: `Type.String({ maxLength: 8 })` is a DeferredSchema `String({...})`.
 * schema-check.ts builds the real schema with TypeBox (`materialize`) on first need, by making the
 * same calls in the same order, so it is exactly the schema TypeBox would have made at import.
 * A DeferredSchema is opaque: read it only through schema-check.ts, never as a JSON schema.
 *
 * `schemaKey` names a declaration by what it says (its calls and their arguments, in order); equal
 * keys are equal schemas. A prebuilt check is found by its schema's key, so a declaration changed
 * without regenerating prebuilt-checks.ts finds none and is compiled with TypeBox as before.
 */
import { createHash } from 'node:crypto';
import type { Type as TypeBoxType } from '@sinclair/typebox';

/** TypeBox's schema kind symbol (TypeBox takes it from the global symbol registry, as here). */
export const Kind: unique symbol = Symbol.for('TypeBox.Kind') as never;

/** A TypeBox builder call not made yet: `Type[method](...args)`, the args possibly deferred too. */
export class DeferredSchema {
  /** What `schemaKey` made of it: shared parts (a task record in several messages) are written once. */
  text: string | undefined;
  constructor(
    readonly method: string,
    readonly args: readonly unknown[],
  ) {}
}

/**
 * TypeBox's `Type`, deferred (see above): every builder method, by name. Builders that take a
 * callback (`Type.Recursive`) cannot be deferred: declare such a schema with TypeBox itself.
 */
export const Type = new Proxy(Object.freeze({}), {
  get: (_target, method) => (typeof method === 'string' ? (...args: unknown[]) => new DeferredSchema(method, args) : undefined),
}) as unknown as typeof TypeBoxType;

/** Thrown by `schemaText` for a value it cannot name (a function, a class instance other than a schema's). */
class Unnameable extends Error {}

function schemaText(value: unknown): string {
  if (value instanceof DeferredSchema) return (value.text ??= `${value.method}(${value.args.map(schemaText).join(',')})`);
  if (Array.isArray(value)) return `[${value.map(schemaText).join(',')}]`;
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
    case 'boolean':
    case 'undefined':
      return String(value);
    case 'object': {
      if (value === null) return 'null';
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) throw new Unnameable();
      const fields = Reflect.ownKeys(value).map((key) => {
        const name = typeof key === 'symbol' ? `@${Symbol.keyFor(key) ?? ''}` : JSON.stringify(key);
        if (name === '@') throw new Unnameable();
        return `${name}:${schemaText((value as Record<PropertyKey, unknown>)[key])}`;
      });
      return `{${fields.join(',')}}`;
    }
    default:
      throw new Unnameable();
  }
}

/**
 * The key of a schema (deferred, TypeBox's, or a mix): a hash of everything it declares, in order.
 * Undefined for one that holds something without a plain value (a function, an object of a class).
 */
export function schemaKey(schema: unknown): string | undefined {
  let text: string;
  try {
    text = schemaText(schema);
  } catch (err) {
    if (err instanceof Unnameable) return undefined;
    throw err;
  }
  return createHash('sha256').update(text).digest('hex').slice(0, 32);
}
