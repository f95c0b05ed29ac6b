/**
 * ClusterSystem settings, each with its default and its trade-off; the transport's are composed in.
 */
import { settingError } from '../errors.js';
import { transportSettings, type TransportSettings } from '../transport/settings.js';

/**
 * On the manager: how long a node whose connection closed stays `unreachable` before it is `down`
 * (its watches fire, its receptionist entries go). A closed TLS connection means the peer process
 * is gone or restarting (a silent peer is cut at the heartbeat timeout first), so the manager downs
 * it at once, as Erlang's nodedown does; a node that comes back simply joins again.
 */
export const DEFAULT_MANAGER_DOWN_AFTER_MS = 0;
/**
 * On a worker or client: how long the manager may be unreachable (while we redial) before it is
 * `down`. A manager restart that takes less keeps our watches on its actors; its new incarnation
 * downs the old one the moment we reconnect anyway.
 */
export const DEFAULT_MEMBER_DOWN_AFTER_MS = 5000;
/** A query with no answer fails with TROUPE_E_QUERY_TIMEOUT after this long. */
export const DEFAULT_QUERY_TIMEOUT_MS = 5000;
/** Dead letters are logged at debug, at most one summary line per this interval. */
export const DEFAULT_DEAD_LETTER_LOG_INTERVAL_MS = 1000;

export interface ClusterSettings {
  /** See DEFAULT_MANAGER_DOWN_AFTER_MS / DEFAULT_MEMBER_DOWN_AFTER_MS; the default depends on the role. */
  downAfterMs?: number;
  queryTimeoutMs: number;
  deadLetterLogIntervalMs: number;
  transport: TransportSettings;
}

function nonNegativeInteger(option: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) throw settingError(option, value, 'an integer ≥ 0');
}

export function clusterSettings(given: Partial<Omit<ClusterSettings, 'transport'>> & { transport?: Partial<TransportSettings> } = {}): ClusterSettings {
  const s: ClusterSettings = {
    downAfterMs: given.downAfterMs,
    queryTimeoutMs: given.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS,
    deadLetterLogIntervalMs: given.deadLetterLogIntervalMs ?? DEFAULT_DEAD_LETTER_LOG_INTERVAL_MS,
    transport: transportSettings(given.transport),
  };
  if (s.downAfterMs !== undefined) nonNegativeInteger('downAfterMs', s.downAfterMs);
  if (!Number.isInteger(s.queryTimeoutMs) || s.queryTimeoutMs <= 0) throw settingError('queryTimeoutMs', s.queryTimeoutMs, 'a positive integer');
  nonNegativeInteger('deadLetterLogIntervalMs', s.deadLetterLogIntervalMs);
  return s;
}
