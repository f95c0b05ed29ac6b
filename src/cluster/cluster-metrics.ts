/**
 * The cluster layer's Prometheus metrics, on any node: traffic by peer role, open connections,
 * reconnects, connections refused by error code, heartbeat round trips, dead letters, members by
 * role and status, and the process' own (process-metrics.ts: CPU, memory, event loop lag, with the
 * `troupe_` prefix). See docs/metrics.md for each one.
 *
 * Cost: nothing per message. Traffic is read from each connection's own counters at scrape time
 * (an open link's live counters plus what closed links had counted when they closed); the other
 * counters move on events that are rare (a connect, a refusal, a ping a second per peer).
 * Labels stay bounded: peer roles, error codes and statuses, never node names of clients or ids.
 */
import promClient, { type Registry } from 'prom-client';
import type { Connection } from '../transport/connection.js';
import { series, type Series } from './metric-series.js';
import { registerProcessMetrics } from './process-metrics.js';
import type { ClusterSystem } from './cluster-system.js';

const ROLES = ['manager', 'worker', 'client'] as const;
const STATUSES = ['up', 'unreachable', 'down'] as const;
type Traffic = Connection['stats'];
const TRAFFIC_KEYS = ['bytesIn', 'bytesOut', 'envelopesIn', 'envelopesOut'] as const;
/** Loopback to intercontinental: 100 µs … 2.5 s. */
const RTT_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
/** Node names remembered to tell a reconnect from a first join. */
const MAX_REMEMBERED = 100_000;

/** A registry with the process metrics (process-metrics.ts); every layer adds its own to it. */
export function metricsRegistry(): Registry {
  const registry = new promClient.Registry();
  registerProcessMetrics(registry);
  return registry;
}

/** Registers the cluster metrics of `system`; returns a function that detaches them from it. */
export function registerClusterMetrics(registry: Registry, system: ClusterSystem): () => void {
  const registers = [registry];
  const open = new Set<Connection>();
  const closed: Record<string, Traffic> = {};
  // One pass over the open connections per scrape, shared by the five metrics that read it (their
  // collects run one after another in the same turn of registry.metrics()).
  let scraped: { traffic: Map<string, Pick<Traffic, (typeof TRAFFIC_KEYS)[number]>>; open: Map<string, number> } | undefined;
  const snapshot = () => {
    if (scraped) return scraped;
    const traffic = new Map(ROLES.map((role) => [role as string, { bytesIn: 0, bytesOut: 0, envelopesIn: 0, envelopesOut: 0 }]));
    const counts = new Map<string, number>();
    const add = (role: string, c: Traffic) => {
      let sum = traffic.get(role);
      if (!sum) traffic.set(role, (sum = { bytesIn: 0, bytesOut: 0, envelopesIn: 0, envelopesOut: 0 }));
      for (const k of TRAFFIC_KEYS) sum[k] += c[k];
    };
    for (const [role, c] of Object.entries(closed)) add(role, c);
    for (const c of open) {
      add(c.peer.role, c.stats);
      counts.set(c.peer.role, (counts.get(c.peer.role) ?? 0) + 1);
    }
    scraped = { traffic, open: counts };
    queueMicrotask(() => (scraped = undefined));
    return scraped;
  };
  const totals = (role: string) => snapshot().traffic.get(role)!;
  // Each metric's series by peer role, written in place at each scrape (metric-series.ts), in ROLES' order.
  const perRole = new WeakMap<object, (readonly [string, Series])[]>();
  const byRole = (metric: promClient.Counter | promClient.Gauge) => {
    let list = perRole.get(metric);
    if (list === undefined) perRole.set(metric, (list = ROLES.map((role) => [role, series(metric, { peer_role: role })] as const)));
    return list;
  };
  let memberSeries: (readonly [string, Series])[] | undefined;
  const trafficCounter = (name: string, help: string, key: (typeof TRAFFIC_KEYS)[number]) =>
    new promClient.Counter({
      name,
      help,
      labelNames: ['peer_role'],
      registers,
      collect() {
        for (const [role, s] of byRole(this)) s.set(totals(role)[key]);
      },
    });
  trafficCounter('troupe_transport_received_bytes_total', 'Bytes received from peers (WebSocket frames, encoded), by the peer\'s role', 'bytesIn');
  trafficCounter('troupe_transport_sent_bytes_total', 'Bytes sent to peers (WebSocket frames, encoded), by the peer\'s role', 'bytesOut');
  trafficCounter('troupe_transport_received_messages_total', 'Envelopes (messages) received from peers, by the peer\'s role', 'envelopesIn');
  trafficCounter('troupe_transport_sent_messages_total', 'Envelopes (messages) sent to peers, by the peer\'s role', 'envelopesOut');
  new promClient.Gauge({
    name: 'troupe_connections',
    help: 'Open connections to peers, by the peer\'s role',
    labelNames: ['peer_role'],
    registers,
    collect() {
      for (const [role, s] of byRole(this)) s.set(snapshot().open.get(role) ?? 0);
    },
  });
  const reconnects = new promClient.Counter({ name: 'troupe_reconnects_total', help: 'Connections to a peer this node had been connected to before (a worker rejoining; on a worker: the manager regained)', labelNames: ['peer_role'], registers });
  const refused = new promClient.Counter({ name: 'troupe_connections_refused_total', help: 'Would-be peers refused at TLS or at the handshake, by error code', labelNames: ['code'], registers });
  const rtt = new promClient.Histogram({ name: 'troupe_heartbeat_rtt_seconds', help: 'Heartbeat round trips (ping to pong), by the peer\'s role', labelNames: ['peer_role'], buckets: RTT_BUCKETS, registers });
  const deadLetters = new promClient.Counter({ name: 'troupe_dead_letters_total', help: 'Messages that could not be delivered, by error code', labelNames: ['code'], registers });
  new promClient.Gauge({
    name: 'troupe_members',
    help: 'Members of the cluster this node knows of, by role and status (workers by state: role="worker")',
    labelNames: ['role', 'status'],
    registers,
    collect() {
      const counts = new Map<string, number>();
      for (const m of system.members()) counts.set(`${m.role}/${m.status}`, (counts.get(`${m.role}/${m.status}`) ?? 0) + 1);
      memberSeries ??= ROLES.flatMap((role) => STATUSES.map((status) => [`${role}/${status}`, series(this, { role, status })] as const));
      for (const [key, s] of memberSeries) s.set(counts.get(key) ?? 0);
    },
  });
  for (const role of ROLES) {
    reconnects.inc({ peer_role: role }, 0);
    rtt.zero({ peer_role: role });
  }

  const seen = new Set<string>();
  const onLink = (connection: Connection) => {
    const { node, role } = connection.peer;
    open.add(connection);
    if (seen.has(node)) reconnects.inc({ peer_role: role });
    else if (seen.size < MAX_REMEMBERED) seen.add(node);
    connection.on('rtt', (seconds: number) => rtt.observe({ peer_role: role }, seconds));
    connection.once('close', () => {
      open.delete(connection);
      const sum = (closed[role] ??= { ...connection.stats, bytesIn: 0, bytesOut: 0, envelopesIn: 0, envelopesOut: 0 });
      for (const k of TRAFFIC_KEYS) sum[k] += connection.stats[k];
    });
  };
  const onRefused = (r: { code: string }) => refused.inc({ code: r.code });
  const onDeadLetter = (letter: { code: string }) => deadLetters.inc({ code: letter.code });
  system.on('link', onLink);
  system.on('refused', onRefused);
  system.on('deadLetter', onDeadLetter);
  return () => {
    system.off('link', onLink);
    system.off('refused', onRefused);
    system.off('deadLetter', onDeadLetter);
  };
}
