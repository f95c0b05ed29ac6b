/**
 * `troupe run`'s command line: its options (for yargs and its help, in main.ts) and a parser of the
 * usual form that does without yargs, so that a one-shot `troupe run HOST -- CMD` starts without
 * loading it (yargs and its help rendering are about a fifth of that command's start-up).
 *
 * The quick parser takes only lines whose meaning is not in doubt, and returns undefined for any
 * other, which main.ts then gives to yargs; so every line means what yargs makes of it, and every
 * error is yargs' own. It takes: `run`, at most one word before `--` (the manager), the options of
 * the table below as `--name VALUE` or `--name=VALUE` (a boolean as `--name` or `-v` alone), each
 * at most once, a number as plain digits, and the command after `--`, word for word. Anything else
 * (another option or spelling, `--help`, `--no-…`, a repeated option, a value that starts with `-`,
 * command words before `--`, no `--`) goes to yargs.
 *
 * The command's words are taken as typed, in both parsers: yargs would otherwise read the words
 * after `--` as numbers where they look like one (`echo 1.50` ran as `echo 1.5`).
 */
import type { Argv } from 'yargs';
import { settingError } from '../errors.js';
import { DEFAULT_RECONNECT_GRACE_MS, DEFAULT_WAIT_FOR_WORKER_MS } from './client-settings.js';
import { CERTS_OPTION, CLIENT_CERT_OPTIONS, clientCertOptions, clientConnection, CONNECT_OPTIONS, connectOptions, MANAGER_ARGUMENT, seconds } from './command-options.js';
import type { RunCommand } from './client-commands.js';

/** `troupe run`'s own options, beside the certificate and connection options every client command has. */
export const RUN_OPTIONS = {
  name: { type: 'string', describe: 'Node name: which certificate in --certs (default: the only client certificate there)' },
  on: { type: 'string', describe: 'Run on a worker that matches: tag=gpu, name=worker-2, platform=linux, arch=x64 ("," for and)' },
  all: { type: 'boolean', default: false, describe: 'Run on every (matching) worker; lines prefixed "worker-N: "; exit status the highest' },
  timeout: { type: 'number', describe: 'Kill the command after this many seconds (exit status 124)' },
  wait: { type: 'number', default: DEFAULT_WAIT_FOR_WORKER_MS / 1000, describe: 'Seconds to wait for a first worker when none has joined' },
  verbose: { alias: 'v', type: 'boolean', default: false, describe: 'A status line (task, worker, exit, duration) on stderr for every task' },
  'reconnect-grace': { type: 'number', default: DEFAULT_RECONNECT_GRACE_MS / 1000, describe: 'Seconds the manager may be away (restarting) before the task counts as lost' },
} as const;

/** What either parser makes of a `troupe run` line: the values its options and words have. */
export interface RunArgs {
  manager?: string;
  /** The words of the command, as typed. */
  words: string[];
  certs: string;
  cert?: string;
  key?: string;
  ca?: string;
  join?: string;
  'connect-timeout': number;
  'log-file'?: string;
  name?: string;
  on?: string;
  all: boolean;
  timeout?: number;
  wait: number;
  verbose: boolean;
  'reconnect-grace': number;
}

/** The `run` command's positionals and options, for yargs. */
export function runBuilder<T>(y: Argv<T>) {
  return connectOptions(clientCertOptions(y).positional('manager', { type: 'string', describe: MANAGER_ARGUMENT }))
    .positional('command', { type: 'string', array: true, describe: 'The shell command (after --, so that its options are not taken for ours)' })
    .parserConfiguration({ 'parse-positional-numbers': false })
    .usage('$0 run [HOST:PORT] [options] -- COMMAND…')
    .options(RUN_OPTIONS)
    .example('$0 run 10.0.0.5 -- uname -a', 'on any free worker')
    .example("$0 run 10.0.0.5 --all -- 'df -h /'", 'on every worker, pdsh style')
    .example('$0 run 10.0.0.5 --on tag=gpu -- nvidia-smi', 'on a worker tagged gpu');
}

/** The run's arguments from yargs' parse of the command line. */
export function runArgsOf(args: Omit<RunArgs, 'words'> & { command?: string[]; _: (string | number)[] }): RunArgs {
  const { command, _, ...rest } = args;
  return { ...rest, words: [...(command ?? []), ..._.slice(1).map(String)] };
}

/** What runOnCluster is given, checked (TROUPE_E_SETTING naming the option); reads the identity. */
export function runCommandOptions(args: RunArgs): RunCommand {
  const command = args.words.join(' ');
  if (command.trim() === '') throw settingError('command', command, "a shell command after --, e.g. troupe run HOST:PORT -- 'uname -a'");
  return {
    ...clientConnection(args, 'troupe run'),
    command,
    selector: args.on,
    all: args.all,
    timeoutMs: args.timeout === undefined ? undefined : seconds('timeout', args.timeout),
    waitForWorkerMs: seconds('wait', args.wait),
    verbose: args.verbose,
    reconnectGraceMs: seconds('reconnect-grace', args['reconnect-grace']),
  };
}

type OptionSpec = { readonly type: 'string' | 'number' | 'boolean'; readonly default?: unknown; readonly alias?: string };
const QUICK_OPTIONS: Readonly<Record<string, OptionSpec>> = { ...CERTS_OPTION, ...CLIENT_CERT_OPTIONS, ...CONNECT_OPTIONS, ...RUN_OPTIONS };
const SHORT: Readonly<Record<string, string>> = Object.fromEntries(
  Object.entries(QUICK_OPTIONS).flatMap(([name, spec]) => (spec.alias === undefined ? [] : [[`-${spec.alias}`, name]])),
);
/** A number as yargs would read it too, with no doubt: digits, maybe a fraction. */
const PLAIN_NUMBER = /^\d+(\.\d+)?$/;

/**
 * The usual `troupe run` line (after the environment's options are added, env-options.ts) parsed
 * without yargs; undefined when it is not that form (see the opening comment).
 */
export function quickRunArgs(argv: readonly string[]): RunArgs | undefined {
  if (argv[0] !== 'run') return undefined;
  const dash = argv.indexOf('--');
  if (dash < 0) return undefined;
  const values: Record<string, string | number | boolean> = {};
  const positionals: string[] = [];
  for (let i = 1; i < dash; i++) {
    const word = argv[i]!;
    if (!word.startsWith('-')) {
      positionals.push(word);
      continue;
    }
    const eq = word.indexOf('=');
    const name = word.startsWith('--') ? word.slice(2, eq < 0 ? undefined : eq) : SHORT[word];
    if (name === undefined || !Object.hasOwn(QUICK_OPTIONS, name) || Object.hasOwn(values, name)) return undefined;
    const spec = QUICK_OPTIONS[name]!;
    if (spec.type === 'boolean') {
      if (eq >= 0) return undefined;
      values[name] = true;
      continue;
    }
    let text: string | undefined;
    if (eq >= 0 && word.startsWith('--')) text = word.slice(eq + 1);
    else if (eq < 0 && i + 1 < dash && !argv[i + 1]!.startsWith('-')) text = argv[++i];
    if (text === undefined || text === '') return undefined;
    if (spec.type === 'number') {
      if (!PLAIN_NUMBER.test(text)) return undefined;
      values[name] = Number(text);
    } else {
      values[name] = text;
    }
  }
  if (positionals.length > 1) return undefined;
  for (const [name, spec] of Object.entries(QUICK_OPTIONS)) if (!Object.hasOwn(values, name) && spec.default !== undefined) values[name] = spec.default as string | number | boolean;
  return { ...(values as unknown as Omit<RunArgs, 'words' | 'manager'>), manager: positionals[0], words: argv.slice(dash + 1) };
}
