/**
 * The options the CLI's commands share (certificates, how a client reaches the manager, counts and
 * seconds, the task journal's), each checked with a message that names the option (TROUPE_E_SETTING):
 * beside main.ts so that it stays about the commands.
 */
import type { Argv } from 'yargs';
import type { Identity } from '../../certs/index.js';
import { settingError } from '../errors.js';
import { DEFAULT_CONNECT_TIMEOUT_MS } from './client-settings.js';
import { DEFAULT_CERTS_DIR, identityFrom, parseHostPort, type CertificateOptions, type HostPort } from './options.js';

export const MANAGER_ARGUMENT = 'The manager, HOST[:PORT] (default port 7400); or --join / TROUPE_JOIN';

// The options as data as well, for the parser of `troupe run` that does without yargs (run-line.ts).
export const CERTS_OPTION = {
  certs: { type: 'string', default: DEFAULT_CERTS_DIR, describe: "Directory holding ca.crt and this node's NAME.crt / NAME.key (env TROUPE_CERTS)" },
} as const;

export const CLIENT_CERT_OPTIONS = {
  cert: { type: 'string', describe: 'This node\'s certificate file, instead of --certs (with --key and --ca)' },
  key: { type: 'string', describe: 'Its private key file' },
  ca: { type: 'string', describe: 'The cluster CA certificate file' },
} as const;

export const CONNECT_OPTIONS = {
  join: { type: 'string', describe: 'The manager, when not given as the first argument (env TROUPE_JOIN)' },
  'connect-timeout': { type: 'number', default: DEFAULT_CONNECT_TIMEOUT_MS / 1000, describe: 'Seconds to keep trying to reach the manager' },
  'log-file': { type: 'string', describe: 'Append logs (JSON lines) to this file instead of stderr' },
} as const;

export function certsOptions<T>(y: Argv<T>) {
  return y.options(CERTS_OPTION);
}

export function clientCertOptions<T>(y: Argv<T>) {
  return certsOptions(y).options(CLIENT_CERT_OPTIONS);
}

export function connectOptions<T>(y: Argv<T>) {
  return y.options(CONNECT_OPTIONS);
}

export function replOptions<T>(y: Argv<T>) {
  return y
    .option('repl', { type: 'boolean', default: true, describe: 'Read commands from stdin (--no-repl: only run the node, as a service)' })
    .option('log-file', { type: 'string', describe: 'Append logs (JSON lines, also the local workers\') to this file instead of stderr' });
}

/** How a client command (attach, run, status, scenario run) reaches the manager, from its options. */
export function clientConnection(
  args: CertificateOptions & { manager?: string; join?: string; 'connect-timeout': number; 'log-file'?: string },
  command: string,
): { identity: Identity; join: HostPort; connectTimeoutMs: number; logFile: string | undefined } {
  return { identity: identityFrom(args, 'client', command), join: managerAddress(args), connectTimeoutMs: seconds('connect-timeout', args['connect-timeout']), logFile: args['log-file'] };
}

export function managerAddress(args: { manager?: string; join?: string }): HostPort {
  if (args.manager !== undefined) return parseHostPort('manager', args.manager);
  if (args.join !== undefined) return parseHostPort('join', args.join);
  throw settingError('manager', undefined, 'the manager as HOST[:PORT], the first argument (or --join, or TROUPE_JOIN)');
}

export function count(option: string, value: number): number {
  if (!Number.isInteger(value) || value < 0 || value > 1000) throw settingError(option, value, 'a whole number from 0 to 1000');
  return value;
}

/** A number of seconds given on the command line, as milliseconds. */
export function seconds(option: string, value: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > 7 * 86400) throw settingError(option, value, 'a number of seconds above 0 (at most a week)');
  return Math.round(value * 1000);
}

/** The defaults of the task journal's options, from the journal and the Controller's settings. */
export interface JournalDefaults {
  stateDir: string;
  keepTasks: number;
  keepDays: number;
  restoreGraceMs: number;
}

/**
 * Loads the journal's defaults: with the journal come SQLite and the protocols, so only the commands
 * that have these options (`manager`, `demo`) load them, before their options are defined.
 */
export async function loadJournalDefaults(): Promise<JournalDefaults> {
  const [journal, controller] = await Promise.all([import('../../actors/tasks/journal.js'), import('../../actors/tasks/controller-settings.js')]);
  return { stateDir: journal.DEFAULT_STATE_DIR, keepTasks: journal.DEFAULT_KEEP_TASKS, keepDays: journal.DEFAULT_KEEP_DAYS, restoreGraceMs: controller.DEFAULT_RESTORE_GRACE_MS };
}

/** The task journal's options of `troupe manager` and `troupe demo` (actors/tasks/journal.ts). */
export function journalOptions(defaults: JournalDefaults) {
  return {
    'state-dir': { type: 'string', default: defaults.stateDir, describe: 'Directory of the task journal (tasks, their output, the audit trail), kept through restarts' },
    'keep-tasks': { type: 'number', default: defaults.keepTasks, describe: 'Finished tasks kept in the journal (oldest removed first)' },
    'keep-days': { type: 'number', default: defaults.keepDays, describe: 'Days a finished task is kept in the journal' },
    'restore-grace': { type: 'number', default: defaults.restoreGraceMs / 1000, describe: 'Seconds a task running before a restart waits for its worker to report it before it counts as lost' },
  } as const;
}

export function journalSettings(args: { 'state-dir': string; 'keep-tasks': number; 'keep-days': number; 'restore-grace': number }) {
  return { stateDir: args['state-dir'], keepTasks: args['keep-tasks'], keepDays: args['keep-days'], restoreGraceMs: seconds('restore-grace', args['restore-grace']) };
}
