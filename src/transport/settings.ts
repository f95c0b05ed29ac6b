/**
 * Transport settings, each with its default and its trade-off. Validated once, at construction,
 * with messages that name the option, the value and what was expected.
 */
import { settingError } from '../errors.js';

/** The manager's port when none is given. */
export const DEFAULT_PORT = 7400;
/** A ping every second: the cost is one tiny control frame per peer per interval. */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 1000;
/** A peer silent this long (no frame, no pong) is unreachable; lower detects faster, but a GC pause can look like death. */
export const DEFAULT_HEARTBEAT_TIMEOUT_MS = 3000;
/**
 * From TCP connect to `welcome`, as one deadline: TLS, the WebSocket upgrade and the hello together
 * (the listening side cuts a socket that has not said a valid hello by then, however it trickles).
 */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 5000;
/** Frames larger than this close the connection with 1009 (message too big). */
export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024; // 16 MiB
/** At most this many envelopes in one frame. */
export const DEFAULT_MAX_BATCH = 1024;
/** Above this many bytes written but not yet flushed to the kernel, a connection is congested. */
export const DEFAULT_HIGH_WATER_BYTES = 4 * 1024 * 1024; // 4 MiB
/**
 * Above this many bytes written to a peer but not yet flushed to the kernel, the peer is cut
 * (cause `slow-consumer`, TROUPE_E_PEER_TOO_SLOW): a peer that never reads cannot grow our memory
 * past it. Flow-controlled senders stop at highWaterBytes, so only a peer that ignores what it is
 * sent gets here; it must be at least highWaterBytes + maxFrameBytes (one frame past congestion).
 */
export const DEFAULT_MAX_BUFFERED_BYTES = 64 * 1024 * 1024; // 64 MiB
/** Reconnect backoff: first delay, cap. Each attempt doubles, then a random 50–100 % of it is used. */
export const DEFAULT_RECONNECT_MIN_MS = 100;
export const DEFAULT_RECONNECT_MAX_MS = 5000;
/** A peer is disconnected after this many invalid frames or envelopes inside STRIKE_WINDOW. */
export const DEFAULT_MAX_STRIKES = 16;
export const DEFAULT_STRIKE_WINDOW_MS = 10_000;

export interface TransportSettings {
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  handshakeTimeoutMs: number;
  maxFrameBytes: number;
  maxBatch: number;
  highWaterBytes: number;
  maxBufferedBytes: number;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  /** Reconnect forever (the default) or give up after the first connection is lost. */
  reconnect: boolean;
  maxStrikes: number;
  strikeWindowMs: number;
}

export const DEFAULT_TRANSPORT_SETTINGS: Readonly<TransportSettings> = Object.freeze({
  heartbeatIntervalMs: DEFAULT_HEARTBEAT_INTERVAL_MS,
  heartbeatTimeoutMs: DEFAULT_HEARTBEAT_TIMEOUT_MS,
  handshakeTimeoutMs: DEFAULT_HANDSHAKE_TIMEOUT_MS,
  maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
  maxBatch: DEFAULT_MAX_BATCH,
  highWaterBytes: DEFAULT_HIGH_WATER_BYTES,
  maxBufferedBytes: DEFAULT_MAX_BUFFERED_BYTES,
  reconnectMinMs: DEFAULT_RECONNECT_MIN_MS,
  reconnectMaxMs: DEFAULT_RECONNECT_MAX_MS,
  reconnect: true,
  maxStrikes: DEFAULT_MAX_STRIKES,
  strikeWindowMs: DEFAULT_STRIKE_WINDOW_MS,
});

function positiveInteger(option: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) throw settingError(option, value, 'a positive integer');
  return value;
}

export function transportSettings(given: Partial<TransportSettings> = {}): TransportSettings {
  const s = { ...DEFAULT_TRANSPORT_SETTINGS, ...given };
  for (const key of Object.keys(DEFAULT_TRANSPORT_SETTINGS) as (keyof TransportSettings)[]) {
    if (key === 'reconnect') {
      if (typeof s.reconnect !== 'boolean') throw settingError('transport.reconnect', s.reconnect, 'true or false');
    } else {
      positiveInteger(`transport.${key}`, s[key]);
    }
  }
  if (s.heartbeatTimeoutMs <= s.heartbeatIntervalMs) {
    throw settingError('transport.heartbeatTimeoutMs', s.heartbeatTimeoutMs, `more than heartbeatIntervalMs (${s.heartbeatIntervalMs})`);
  }
  if (s.reconnectMaxMs < s.reconnectMinMs) {
    throw settingError('transport.reconnectMaxMs', s.reconnectMaxMs, `at least reconnectMinMs (${s.reconnectMinMs})`);
  }
  if (s.maxBufferedBytes < s.highWaterBytes + s.maxFrameBytes) {
    throw settingError(
      'transport.maxBufferedBytes',
      s.maxBufferedBytes,
      `at least highWaterBytes + maxFrameBytes (${s.highWaterBytes} + ${s.maxFrameBytes} = ${s.highWaterBytes + s.maxFrameBytes})`,
    );
  }
  return s;
}
