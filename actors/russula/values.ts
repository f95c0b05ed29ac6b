/**
 * The values a Russula group's env refers to (`${servers.addresses}`, protocols/russula/templates.ts),
 * computed by the coordinator from the addresses the named group's members reported when they became
 * ready, and sent with the advance that starts the group. Every value is checked against what the
 * workers' schema takes (a `host:port` list, MAX_TEMPLATE_VALUE_CHARS): a value the worker would
 * refuse is an error here, with its reason, rather than a lost advance and a step that times out.
 */
import { MAX_TEMPLATE_VALUE_CHARS, templatesIn } from '../../protocols/russula/index.js';
import { ErrorCodes, RussulaError } from '../../src/errors.js';
import type { GroupPlan } from './placement.js';

/** One address a group reports: a host (name, IPv4, or [IPv6]) and a port. */
const HOST_PORT = /^(?:[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\]):\d{1,5}$/;

/**
 * The values for `plan`'s env. `addressesOf(group)` gives what each member of that group reported
 * (undefined for one that has not yet), or undefined when there is no such group.
 */
export function valuesFor(plan: GroupPlan, addressesOf: (group: string) => readonly (string | undefined)[] | undefined): Record<string, string> {
  const values: Record<string, string> = {};
  for (const value of Object.values(plan.step.env)) {
    for (const { group: g, field, key } of templatesIn(value)) {
      const addresses = addressesOf(g) ?? [];
      if (addresses.length === 0 || addresses.some((a) => a === undefined)) {
        throw new RussulaError(
          ErrorCodes.RUSSULA_NO_VALUE,
          `group ${plan.name} needs \${${g}.${field}}, but ${addresses.length === 0 ? `there is no group ${g}` : `not every member of ${g} has reported an address yet (bring ${g} to ready first)`}`,
        );
      }
      const list = addresses as string[];
      const odd = list.find((a) => !HOST_PORT.test(a));
      if (odd !== undefined) {
        throw new RussulaError(ErrorCodes.RUSSULA_NO_VALUE, `group ${plan.name} needs \${${g}.${field}}, but ${g} reported the address ${JSON.stringify(odd.slice(0, 80))}, not HOST:PORT (check its ready.stdout groups host and port)`);
      }
      const split = list.map((a) => {
        const i = a.lastIndexOf(':');
        return { host: a.slice(0, i), port: a.slice(i + 1) };
      });
      const joined = field === 'hosts' ? split.map((s) => s.host).join(',') : field === 'ports' ? split.map((s) => s.port).join(',') : list.join(',');
      if (joined.length > MAX_TEMPLATE_VALUE_CHARS) {
        throw new RussulaError(ErrorCodes.RUSSULA_NO_VALUE, `group ${plan.name} needs \${${g}.${field}}: ${joined.length} characters, over the limit of ${MAX_TEMPLATE_VALUE_CHARS}`);
      }
      values[key] = joined;
    }
  }
  return values;
}
