/**
 * The `${group.field}` templates a Russula step's env may hold, declared once: the scenario checker
 * refuses a malformed one before anything runs, the coordinator computes each value from the
 * addresses the named group reported, and the worker expands them in the env when the step starts.
 *
 * Grammar: `${GROUP.FIELD}` where GROUP is a group name and FIELD one of `addresses` (`host:port`
 * list), `hosts` or `ports` (comma-separated). A value is at most MAX_TEMPLATE_VALUE_CHARS long, the
 * limit of russulaAdvance's schema: a longer one is refused by the coordinator with a reason, since
 * the worker would drop the advance and the step would time out.
 */

/** The fields a template may name. */
export const TEMPLATE_FIELDS = ['addresses', 'hosts', 'ports'] as const;
export type TemplateField = (typeof TEMPLATE_FIELDS)[number];

/** The longest value one template expands to (and russulaAdvance carries per key): 16 KiB. */
export const MAX_TEMPLATE_VALUE_CHARS = 16 * 1024;

/** Any `${…}`, well-formed or not (the scenario checker names the malformed ones). */
const ANY_TEMPLATE = /\$\{([^}]*)\}/g;
/** A well-formed `${group.field}`. */
const TEMPLATE = /\$\{([A-Za-z0-9_-]+)\.([A-Za-z]+)\}/g;

export interface TemplateRef {
  /** The template as written, `${servers.addresses}`. */
  whole: string;
  group: string;
  field: string;
  /** The key of its value in russulaAdvance's `values`: `servers.addresses`. */
  key: string;
}

/** The key under which the value of `${group.field}` travels. */
export function templateKey(group: string, field: string): string {
  return `${group}.${field}`;
}

export function isTemplateField(field: string): field is TemplateField {
  return (TEMPLATE_FIELDS as readonly string[]).includes(field);
}

/** Every `${…}` in `value`: the well-formed ones as a TemplateRef, the others as `{ whole }` alone. */
export function scanTemplates(value: string): (TemplateRef | { whole: string; group?: undefined })[] {
  const out: (TemplateRef | { whole: string })[] = [];
  for (const [whole, inner] of value.matchAll(ANY_TEMPLATE)) {
    const [group, field, ...rest] = inner!.split('.');
    if (rest.length > 0 || !group || !field || !isTemplateField(field)) out.push({ whole });
    else out.push({ whole, group, field, key: templateKey(group, field) });
  }
  return out;
}

/** The well-formed templates in `value` (the ones the coordinator fills in). */
export function templatesIn(value: string): TemplateRef[] {
  return [...value.matchAll(TEMPLATE)].map(([whole, group, field]) => ({ whole, group: group!, field: field!, key: templateKey(group!, field!) }));
}

/** `value` with each well-formed template replaced by `valueOf(its key)`. */
export function expandTemplates(value: string, valueOf: (key: string) => string): string {
  return value.replace(TEMPLATE, (_all, group: string, field: string) => valueOf(templateKey(group, field)));
}
