/**
 * The check of one schema against untrusted values: every decoded envelope and message goes
 * through one before anything reads it. A schema whose key (deferred-schema.ts) has a prebuilt
 * check (prebuilt-checks.ts: TypeBox's own compiled code for that schema, written out ahead) uses
 * it, and TypeBox is not loaded; any other is compiled with TypeBox on its first value. Either
 * way the verdict is TypeBox's. Saying *what* is wrong with an invalid value (`firstError`) is
 * TypeBox's too, and loads it then.
 *
 * TypeBox is loaded with `require` (its CommonJS build) and only here, so every schema of the
 * process, deferred or not, is checked by one TypeBox instance: the one whose registry knows the
 * custom kinds (`defineKind`).
 */
import { createRequire } from 'node:module';
import type * as TypeBox from '@sinclair/typebox';
import type * as TypeBoxCompiler from '@sinclair/typebox/compiler';
import { DeferredSchema, schemaKey } from './deferred-schema.js';
import { PREBUILT_CHECKS, type KindCheck } from './prebuilt-checks.js';

interface TypeBoxLibrary {
  typebox: typeof TypeBox;
  compiler: typeof TypeBoxCompiler;
}

const require = createRequire(import.meta.url);
let library: TypeBoxLibrary | undefined;
/** Custom schema kinds: a value of the kind is what its function says yes to. */
const kinds = new Map<string, (value: unknown) => boolean>();

/** TypeBox, loaded on first need, with every custom kind registered. */
export function typeBox(): TypeBoxLibrary {
  if (library) return library;
  library = { typebox: require('@sinclair/typebox') as typeof TypeBox, compiler: require('@sinclair/typebox/compiler') as typeof TypeBoxCompiler };
  for (const [name, check] of kinds) library.typebox.TypeRegistry.Set(name, (_schema, value) => check(value));
  return library;
}

/** Declares a custom schema kind (a schema `{[Kind]: name}` accepts what `check` accepts). */
export function defineKind(name: string, check: (value: unknown) => boolean): void {
  kinds.set(name, check);
  library?.typebox.TypeRegistry.Set(name, (_schema, value) => check(value));
}

/** How a prebuilt check asks about a custom kind: as TypeBox's compiled code asks its registry. */
const kindCheck: KindCheck = (name, _instance, value) => kinds.get(name)?.(value) ?? false;

const built = new WeakMap<DeferredSchema, unknown>();

/**
 * The TypeBox schema a declaration stands for: every deferred call made, arguments first, each
 * once (a part shared by several schemas is one object, as it was when built at import).
 * Anything else is returned as it is, or copied with its deferred parts built.
 */
export function materialize<T>(schema: T): T {
  return build(schema) as T;
}

function build(value: unknown): unknown {
  if (value instanceof DeferredSchema) {
    if (built.has(value)) return built.get(value);
    const { typebox } = typeBox();
    const make = (typebox.Type as unknown as Record<string, ((...args: unknown[]) => unknown) | undefined>)[value.method];
    if (typeof make !== 'function') throw new TypeError(`TypeBox has no Type.${value.method}`);
    const schema = make.apply(typebox.Type, value.args.map(build));
    built.set(value, schema);
    return schema;
  }
  if (Array.isArray(value)) {
    const items = value.map(build);
    return items.some((item, i) => item !== value[i]) ? items : value;
  }
  if (typeof value !== 'object' || value === null) return value;
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  const keys = Reflect.ownKeys(value);
  const fields = keys.map((key) => build((value as Record<PropertyKey, unknown>)[key]));
  if (fields.every((field, i) => field === (value as Record<PropertyKey, unknown>)[keys[i]!])) return value;
  const copy: Record<PropertyKey, unknown> = {};
  keys.forEach((key, i) => (copy[key] = fields[i]));
  return copy;
}

/** The first thing wrong with a value, as TypeBox says it. */
export interface SchemaError {
  path: string;
  message: string;
}

export class SchemaCheck {
  readonly #schema: unknown;
  #test: ((value: unknown) => boolean) | undefined;
  #compiled: TypeBoxCompiler.TypeCheck<TypeBox.TSchema> | undefined;

  /** `schema`: deferred (deferred-schema.ts) or TypeBox's. Nothing is looked up or compiled yet. */
  constructor(schema: unknown) {
    this.#schema = schema;
  }

  /** True when the value has the schema's shape. */
  test(value: unknown): boolean {
    return (this.#test ??= this.#prepare())(value);
  }

  /** What is wrong with a value `test` refused (undefined if TypeBox finds nothing). */
  firstError(value: unknown): SchemaError | undefined {
    const first = this.#compile().Errors(value).First();
    return first && { path: first.path, message: first.message };
  }

  /** True when the check needs no TypeBox (a prebuilt one); for tests. */
  get prebuilt(): boolean {
    const key = schemaKey(this.#schema);
    return key !== undefined && Object.hasOwn(PREBUILT_CHECKS, key);
  }

  #prepare(): (value: unknown) => boolean {
    const key = schemaKey(this.#schema);
    const prebuilt = key !== undefined && Object.hasOwn(PREBUILT_CHECKS, key) ? PREBUILT_CHECKS[key] : undefined;
    if (prebuilt) return prebuilt(kindCheck);
    const compiled = this.#compile();
    return (value) => compiled.Check(value);
  }

  #compile(): TypeBoxCompiler.TypeCheck<TypeBox.TSchema> {
    return (this.#compiled ??= typeBox().compiler.TypeCompiler.Compile(materialize(this.#schema) as TypeBox.TSchema));
  }
}
