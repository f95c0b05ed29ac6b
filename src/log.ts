/**
 * Logging: pino, JSON lines to stderr (or a file), level from TROUPE_LOG. Every line names the node.
 * Log message types and ids, never payloads or command output.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const DEFAULT_LOG_LEVEL: LogLevel = 'info';

export function levelFromEnv(env: NodeJS.ProcessEnv = process.env): LogLevel {
  const given = env.TROUPE_LOG?.trim().toLowerCase();
  return given && (LOG_LEVELS as readonly string[]).includes(given) ? (given as LogLevel) : DEFAULT_LOG_LEVEL;
}

export interface LoggerOptions {
  /** The node this process is; bound to every line. */
  node: string;
  level?: LogLevel;
  /** A file to append to instead of stderr. */
  file?: string;
}

/** A root logger for one node. Writes synchronously so that a crash or exit loses no line. */
export function createLogger(options: LoggerOptions): Logger {
  const destination = options.file
    ? pino.destination({ dest: options.file, sync: true, mkdir: true })
    : pino.destination({ fd: 2, sync: true });
  return pino({ level: options.level ?? levelFromEnv(), base: { node: options.node } }, destination);
}

/** A logger that writes nothing: for embedding and for tests that do not look at logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
