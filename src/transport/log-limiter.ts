/**
 * Rate-limits one kind of log line that a stranger can cause (a refused TLS handshake, a refused
 * hello, refused input): the first `burst` lines of each interval at warn, the rest at debug, and
 * the first warn of the next interval says how many went to debug in between. A port scanner or a
 * peer that keeps reconnecting with garbage cannot flood the log, and nothing goes unsaid.
 */
import type { Logger } from 'pino';

/** Warn lines of one kind per interval before the rest go to debug. */
export const DEFAULT_LOG_BURST = 20;
export const DEFAULT_LOG_INTERVAL_MS = 60_000; // 1 minute

export class LogLimiter {
  #windowStart = 0;
  #inWindow = 0;
  #suppressed = 0;

  constructor(
    readonly burst = DEFAULT_LOG_BURST,
    readonly intervalMs = DEFAULT_LOG_INTERVAL_MS,
  ) {}

  /** Logs `msg` with `fields` at warn while the burst lasts, else at debug. */
  warn(log: Logger, fields: Record<string, unknown>, msg: string, now = Date.now()): void {
    if (now - this.#windowStart >= this.intervalMs) {
      this.#windowStart = now;
      this.#inWindow = 0;
    }
    if (this.#inWindow < this.burst) {
      this.#inWindow++;
      const suppressed = this.#suppressed;
      this.#suppressed = 0;
      log.warn(suppressed > 0 ? { ...fields, suppressed } : fields, msg);
    } else {
      this.#suppressed++;
      log.debug(fields, msg);
    }
  }
}
