/**
 * Logs of a command that talks with a person: through the Screen, so that a log line clears and
 * redraws the REPL's prompt instead of breaking it (or to `--log-file`). A session on a terminal,
 * and the one-shot client commands, log at `warn` unless TROUPE_LOG says otherwise: what `info`
 * would say there (joined, left) the REPL already says in its own words.
 */
import { pino } from 'pino';
import { createLogger, levelFromEnv, prettyLine, type Logger, type LogLevel } from '../log.js';
import type { Screen } from './screen.js';

/** TROUPE_LOG when set, else `fallback`; a value that names no level is TROUPE_E_SETTING. */
export function logLevel(fallback: LogLevel, env: NodeJS.ProcessEnv = process.env): LogLevel {
  return levelFromEnv(env, fallback);
}

export interface SessionLogOptions {
  level: LogLevel;
  file?: string;
  /** Log through the screen (a REPL on a terminal); default: straight to stderr. */
  screen?: Screen;
}

export function sessionLogger(node: string, options: SessionLogOptions): Logger {
  const { screen, level, file } = options;
  if (file !== undefined || !screen) return createLogger({ node, level, file });
  const pretty = screen.stderr.isTTY === true;
  return pino({ level, base: { node } }, { write: (line: string) => screen.log(pretty ? prettyLine(line) : line) });
}

/** A local worker's stderr line (JSON from its logger), shown as this session shows its own logs. */
export function workerLogLine(screen: Screen): (line: string) => void {
  const pretty = screen.stderr.isTTY === true;
  return (line) => {
    const shown = pretty ? prettyLine(line) : line;
    screen.log(shown.endsWith('\n') ? shown : `${shown}\n`);
  };
}
