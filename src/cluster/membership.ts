/**
 * The membership table: every node this node knows of, with its incarnation and status.
 *
 *   up ──(connection lost / silent)──▶ unreachable ──(downAfterMs)──▶ down
 *    ▲                                     │
 *    └───────(same incarnation back)───────┘
 *
 * A node that comes back with a new incarnation (it restarted) first downs the old incarnation,
 * then is up as a fresh member: there is no tombstone that locks a name out, and a node that was
 * downed and returns with the same incarnation (a frozen process thawed) simply joins again.
 * Every change is emitted once, as a `member` event, in the order it happened.
 *
 * A client that is down is forgotten once its `down` is emitted: a client's node name is one
 * process's session (`client-1~<session>`) and never comes back after it, so keeping it would
 * grow the table (and what every newcomer is sent) by one entry per `troupe run`. Should the same
 * session return after all (a process frozen past downAfterMs), it simply joins again.
 */
import { EventEmitter } from 'node:events';
import type { MemberEvent } from '../../protocols/cluster-messages.js';
import type { MemberStatus } from '../../protocols/wire.js';
import type { Role } from '../../protocols/roles.js';

export interface Member {
  node: string;
  role: Role;
  incarnation: string;
  status: MemberStatus;
  meta: Record<string, unknown>;
  /** When it entered this status (ms since the epoch). */
  since: number;
}

export type MemberIdentity = Pick<Member, 'node' | 'role' | 'incarnation' | 'meta'>;

export class Membership extends EventEmitter {
  #members = new Map<string, Member>();
  #downTimers = new Map<string, NodeJS.Timeout>();

  get(node: string): Member | undefined {
    return this.#members.get(node);
  }

  list(): Member[] {
    return [...this.#members.values()];
  }

  isUp(node: string): boolean {
    return this.#members.get(node)?.status === 'up';
  }

  /** True when the node is known and not down: messages to it may still arrive. */
  isAlive(node: string): boolean {
    const m = this.#members.get(node);
    return m !== undefined && m.status !== 'down';
  }

  up(identity: MemberIdentity): void {
    const current = this.#members.get(identity.node);
    if (current && current.incarnation !== identity.incarnation && current.status !== 'down') {
      this.#set(current, 'down');
    }
    this.#cancelDown(identity.node);
    if (current && current.incarnation === identity.incarnation && current.status === 'up') return;
    this.#set({ ...identity, status: 'up', since: 0 }, 'up');
  }

  /** Marks the node unreachable, and down after `downAfterMs` unless it comes back first. */
  unreachable(node: string, incarnation: string, downAfterMs: number): void {
    const current = this.#members.get(node);
    if (!current || current.incarnation !== incarnation || current.status !== 'up') return;
    if (downAfterMs === 0) {
      this.#set(current, 'unreachable');
      this.#set(this.#members.get(node)!, 'down');
      return;
    }
    this.#set(current, 'unreachable');
    // Unref: a pending down is no reason to keep a process alive (its sockets and servers are).
    this.#downTimers.set(
      node,
      setTimeout(() => {
        this.#downTimers.delete(node);
        this.down(node, incarnation);
      }, downAfterMs).unref(),
    );
  }

  down(node: string, incarnation?: string): void {
    const current = this.#members.get(node);
    if (!current || current.status === 'down') return;
    if (incarnation !== undefined && current.incarnation !== incarnation) return;
    this.#cancelDown(node);
    this.#set(current, 'down');
  }

  /** Applies a status learned from the manager. */
  apply(event: MemberIdentity & { status: MemberStatus }): void {
    if (event.status === 'up') this.up(event);
    else if (event.status === 'down') {
      const current = this.#members.get(event.node);
      if (current && current.incarnation === event.incarnation) this.down(event.node, event.incarnation);
      else if (!current && event.role !== 'client') this.#members.set(event.node, { ...event, since: Date.now() });
    } else {
      const current = this.#members.get(event.node);
      if (current && current.incarnation === event.incarnation && current.status === 'up') this.#set(current, 'unreachable');
    }
  }

  clear(): void {
    for (const timer of this.#downTimers.values()) clearTimeout(timer);
    this.#downTimers.clear();
  }

  #cancelDown(node: string): void {
    const timer = this.#downTimers.get(node);
    if (timer) {
      clearTimeout(timer);
      this.#downTimers.delete(node);
    }
  }

  #set(member: Member, status: MemberStatus): void {
    const next: Member = { ...member, status, since: Date.now() };
    this.#members.set(member.node, next);
    const event: MemberEvent = { type: 'member', node: next.node, role: next.role, incarnation: next.incarnation, status, meta: next.meta };
    this.emit('member', event, next);
    if (status === 'down' && next.role === 'client' && this.#members.get(next.node) === next) this.#members.delete(next.node);
  }
}
