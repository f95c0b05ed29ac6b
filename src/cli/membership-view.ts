/** How the membership reads on a terminal: one line per change, a table on request. */
import type { Member } from '../cluster/membership.js';
import type { MemberEvent } from '../../protocols/cluster-messages.js';

const MARK: Record<MemberEvent['status'], string> = { up: '+', unreachable: '?', down: '-' };

/** `+ worker-1 up (worker, linux/x64, 2 cpus)` */
export function memberLine(event: MemberEvent): string {
  const about = [event.role, platformOf(event.meta)].filter(Boolean).join(', ');
  return `${MARK[event.status]} ${event.node} ${event.status} (${about})`;
}

export function membershipTable(members: readonly Member[]): string {
  const sorted = [...members].sort((a, b) => rank(a) - rank(b) || a.node.localeCompare(b.node, 'en', { numeric: true }));
  const rows = [['NODE', 'ROLE', 'STATUS', 'PLATFORM', 'INCARNATION'], ...sorted.map((m) => [m.node, m.role, m.status, platformOf(m.meta) || '-', m.incarnation])];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const up = members.filter((m) => m.status === 'up').length;
  return [`membership: ${members.length} node${members.length === 1 ? '' : 's'}, ${up} up`, ...rows.map((r) => `  ${r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()}`)].join('\n');
}

function rank(m: Member): number {
  return m.role === 'manager' ? 0 : m.role === 'worker' ? 1 : 2;
}

function platformOf(meta: Record<string, unknown>): string {
  const parts = [typeof meta.platform === 'string' && typeof meta.arch === 'string' ? `${meta.platform}/${meta.arch}` : '', typeof meta.cpus === 'number' ? `${meta.cpus} cpus` : ''];
  return parts.filter(Boolean).join(', ');
}

/** The view a manager command prints membership with (actors/nodes.ts `membership`). */
export const MEMBERSHIP_VIEW = { line: memberLine, table: membershipTable };
