/**
 * What a ClusterSystem is started with, and the events it emits. Every setting is in settings.ts
 * with its default; these are the node's identity, where it listens or joins, and what it accepts.
 */
import type { Logger } from 'pino';
import type { MemberEvent } from '../../protocols/cluster-messages.js';
import type { MessageSpec } from '../../protocols/message-catalog.js';
import type { Role } from '../../protocols/roles.js';
import type { TroupeError } from '../errors.js';
import type { CloseInfo, Connection } from '../transport/connection.js';
import type { DeadLetter } from './dead-letters.js';
import type { TlsMaterial } from '../transport/websocket-server.js';
import type { clusterSettings } from './settings.js';

export interface HostPort {
  host: string;
  port: number;
}

export interface ClusterIdentity extends TlsMaterial {
  name: string;
  role: Role;
}

/** What the manager needs of a revocation list; a RevocationWatcher is one. */
export interface Revocation {
  isRevoked(serial: string): boolean;
  on(event: 'reloaded', listener: (list: { number: number; entries: readonly unknown[] }) => void): unknown;
  on(event: 'invalid', listener: (err: TroupeError) => void): unknown;
  off(event: 'reloaded' | 'invalid', listener: (...args: never[]) => void): unknown;
}

export interface ClusterOptions {
  identity: ClusterIdentity;
  /** The manager listens here. Port 0 picks a free port. */
  listen?: HostPort;
  /** Every other node joins the manager here. */
  join?: HostPort;
  /** Published in this node's membership record (tags, platform, slots…). */
  meta?: Record<string, unknown>;
  /** The application messages this node accepts from other nodes. */
  messages?: readonly MessageSpec[];
  settings?: Parameters<typeof clusterSettings>[0];
  log?: Logger;
  /**
   * On the manager: the certificates shut out (certs/revocation-watcher.ts). A peer whose
   * certificate it names is refused at the handshake with TROUPE_E_REVOKED, and one already
   * connected is disconnected as soon as the list that names it is `reloaded`.
   */
  revocation?: Revocation;
}

export type ClusterEvents = {
  member: [MemberEvent];
  deadLetter: [DeadLetter];
  connected: [string];
  disconnected: [string, CloseInfo];
  failure: [TroupeError, { fatal: boolean; retryInMs?: number }];
  /** The manager refused a would-be peer, at TLS or at the handshake. */
  refused: [{ from: string; code: string; reason: string }];
  /** A connection to a peer is established (before `connected`): metrics read its `stats` and `rtt` events. */
  link: [Connection];
};
