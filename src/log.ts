/**
 * Logging: pino, JSON lines to stderr (or a file), level from TROUPE_LOG. Every line names the node.
 * Log message types and ids, never payloads or command output.
 */
import { pino, type Logger } from 'pino';
import { settingError } from './errors.js';

export type { Logger };

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const DEFAULT_LOG_LEVEL: LogLevel = 'info';

/**
 * The level TROUPE_LOG names (any case), or `fallback` when it is unset or empty. A value that names
 * no level is a SettingError (TROUPE_E_SETTING), not a silent `info`: a person who asked for
 * `TROUPE_LOG=verbose` must learn that it did nothing.
 */
export function levelFromEnv(env: NodeJS.ProcessEnv = process.env, fallback: LogLevel = DEFAULT_LOG_LEVEL): LogLevel {
  const given = env.TROUPE_LOG?.trim().toLowerCase();
  if (!given) return fallback;
  if (!(LOG_LEVELS as readonly string[]).includes(given)) throw settingError('TROUPE_LOG', env.TROUPE_LOG, `one of ${LOG_LEVELS.join(', ')}`);
  return given as LogLevel;
}

export interface LoggerOptions {
  /** The node this process is; bound to every line. */
  node: string;
  level?: LogLevel;
  /** A file to append to instead of stderr. */
  file?: string;
}

/**
 * A root logger for one node. Writes synchronously so that a crash or exit loses no line. JSON lines,
 * except on a terminal, where a person reads them: one short line each.
 */
export function createLogger(options: LoggerOptions): Logger {
  const level = options.level ?? levelFromEnv();
  if (options.file) return pino({ level, base: { node: options.node } }, pino.destination({ dest: options.file, sync: true, mkdir: true }));
  const fd2 = pino.destination({ fd: 2, sync: true });
  const destination = process.stderr.isTTY ? { write: (line: string) => fd2.write(prettyLine(line)) } : fd2;
  return pino({ level, base: { node: options.node } }, destination);
}

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

/** `12:00:01 WARN  manager: peer silent past the heartbeat timeout peer=worker-1 silentMs=3249` */
export function prettyLine(json: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const { level, time, node, msg, pid: _pid, hostname: _hostname, ...rest } = record;
  const clock = typeof time === 'number' ? new Date(time).toTimeString().slice(0, 8) : '';
  const fields = Object.entries(rest)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  return `${clock} ${(LEVEL_NAMES[level as number] ?? String(level)).padEnd(5)} ${String(node)}: ${String(msg ?? '')}${fields ? ` ${fields}` : ''}\n`;
}

/** A logger that writes nothing: for embedding and for tests that do not look at logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
