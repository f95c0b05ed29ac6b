/**
 * Settings from the environment: `TROUPE_CERTS`, `TROUPE_JOIN`, `TROUPE_NAME`… stand for the option
 * of the same name (`--certs`, `--join`, `--name`) of the command being run; an option given on the
 * command line wins. Only the options listed here are read, per command, so a variable meant for
 * one command (TROUPE_JOIN, for workers) never trips another (`troupe manager` has no --join).
 * yargs' own `.env()` reads every TROUPE_* variable for every command, which strict parsing then
 * refuses as unknown arguments; hence this list.
 */

/** The options of each command that the environment may set. */
export const ENV_OPTIONS: Readonly<Record<string, readonly string[]>> = {
  manager: ['certs', 'name', 'host', 'port', 'local-workers', 'sessions', 'log-file', 'metrics', 'state-dir'],
  worker: ['certs', 'cert', 'key', 'ca', 'name', 'join', 'slots', 'tags', 'log-file', 'metrics'],
  demo: ['certs', 'port', 'workers', 'sessions', 'log-file', 'state-dir'],
  attach: ['certs', 'cert', 'key', 'ca', 'name', 'join', 'connect-timeout', 'log-file'],
  run: ['certs', 'cert', 'key', 'ca', 'name', 'join', 'connect-timeout', 'wait', 'log-file'],
  logs: ['certs', 'cert', 'key', 'ca', 'name', 'join', 'connect-timeout', 'log-file'],
  audit: ['certs', 'cert', 'key', 'ca', 'name', 'join', 'connect-timeout', 'log-file'],
  status: ['certs', 'cert', 'key', 'ca', 'name', 'join', 'connect-timeout', 'log-file'],
  top: ['certs', 'cert', 'key', 'ca', 'name', 'join', 'connect-timeout', 'log-file'],
  scenario: ['certs', 'cert', 'key', 'ca', 'name', 'join', 'connect-timeout', 'log-file'],
  'generate-tls-certificates': ['out=certs'],
};

/** `--local-workers` ← TROUPE_LOCAL_WORKERS */
export function envName(option: string): string {
  return `TROUPE_${option.toUpperCase().replace(/-/g, '_')}`;
}

/** The command line with the environment's settings added (as `--option=value`, before any `--`). */
export function withEnvOptions(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): string[] {
  const dash = argv.indexOf('--');
  const head = dash < 0 ? [...argv] : argv.slice(0, dash);
  const tail = dash < 0 ? [] : argv.slice(dash);
  const command = head.find((a) => !a.startsWith('-'));
  const extra: string[] = [];
  for (const entry of ENV_OPTIONS[command ?? ''] ?? []) {
    const [option, variable] = entry.includes('=') ? entry.split('=') as [string, string] : [entry, entry];
    const value = env[envName(variable)];
    if (value === undefined || value === '') continue;
    if (head.some((a) => a === `--${option}` || a.startsWith(`--${option}=`))) continue;
    extra.push(`--${option}=${value}`);
  }
  return [...head, ...extra, ...tail];
}
