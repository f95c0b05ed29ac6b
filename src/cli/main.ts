/**
 * The `troupe` command. Each subcommand parses its options here and hands plain values to the code
 * that does the work; errors with a troupe code print as `troupe: CODE: message` and exit 1, usage
 * errors exit 2 with the help. Commands that run something on the cluster (`run`, the REPL) exit
 * with the status of what they ran. Options can also come from the environment (env-options.ts).
 *
 * Start-up: each command loads what it needs and nothing else. The definitions here (options,
 * defaults, help) load only light modules; a command's work is imported when it runs (`run` loads
 * the client node and the protocols, never the certificate library, YAML, Russula or the REPL),
 * and the commands defined in heavy modules (deploy, testbed, bench; the journal's defaults of
 * manager and demo) are loaded only when the command line names them (`troupe --help` lists them
 * from command-summaries.ts). So `troupe --help` prints every command and option as before, sooner.
 */
import type { Argv, CommandModule } from 'yargs';
import { ROLES, type Role } from '../../protocols/roles.js';
import { settingError, TroupeError } from '../errors.js';
import { DEFAULT_METRICS_HOST, parseMetricsAddress } from '../cluster/metrics-server.js';
import { DEFAULT_PORT } from '../transport/settings.js';
import { withEnvOptions } from './env-options.js';
import type { Print } from '../../actors/nodes.js';
import { TAGS_EXPECTED, workerSlots, workerTags } from '../../actors/tasks/worker-settings.js';
import { MEMBERSHIP_VIEW } from './membership-view.js';
import { certsOptions, clientCertOptions, clientConnection, connectOptions, count, journalOptions, journalSettings, loadJournalDefaults, MANAGER_ARGUMENT, replOptions, seconds, type JournalDefaults } from './command-options.js';
import { BENCH_SUMMARY, DEPLOY_SUMMARY, TESTBED_SUMMARY, type CommandSummary } from './command-summaries.js';
import { checkPort, DEFAULT_CERTS_DIR, parseHostPort } from './options.js';
import { quickRunArgs, runArgsOf, runBuilder, runCommandOptions } from './run-line.js';
import type { managerSession } from './sessions.js';

const DEFAULT_LOCAL_WORKERS = 2;

export interface CliIo {
  print: Print;
  error: Print;
}

const processIo: CliIo = {
  print: (line) => process.stdout.write(`${line}\n`),
  error: (line) => process.stderr.write(`${line}\n`),
};


/** Runs the command line; resolves with the exit code once the command is done (a node: when it stopped). */
export async function main(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  const line = withEnvOptions(argv);
  // The usual one-shot `troupe run HOST -- CMD`: parsed without loading yargs (run-line.ts).
  const quick = quickRunArgs(line);
  if (quick) {
    try {
      const options = runCommandOptions(quick);
      return await (await import('./client-commands.js')).runOnCluster(options);
    } catch (err) {
      io.error(await describe(err));
      return 1;
    }
  }
  let job: (() => Promise<number>) | undefined;
  let usageError: string | undefined;
  // A command's handler chooses its job and leaves yargs at once (see JobChosen).
  const choose = (chosen: () => Promise<number>): never => {
    job = chosen;
    throw new JobChosen();
  };
  let loaded: Awaited<ReturnType<typeof loadDefinitions>>;
  try {
    loaded = await loadDefinitions(argv);
  } catch (err) {
    io.error(await describe(err));
    return 1;
  }
  const { default: yargs } = await import('yargs');
  const cli = yargs(line)
    .scriptName('troupe')
    .usage(
      '$0 <command> [options]\n\nA distributed actor cluster: a manager, workers joined over mutual TLS, shell commands run on the workers.\n' +
        'Options can also be set in the environment: --certs as TROUPE_CERTS, --join as TROUPE_JOIN, and so on.',
    )
    .command(
      'generate-tls-certificates',
      'Create a CA and node certificates (manager, workers, clients), or add one node to an existing CA',
      (y) =>
        y
          .option('out', { type: 'string', default: DEFAULT_CERTS_DIR, describe: 'Directory to write the certificates to (env TROUPE_CERTS)' })
          .option('hostname', { type: 'string', array: true, describe: 'A DNS name or IP address the manager is reached at (repeat for several)' })
          .option('workers', { type: 'number', default: 2, describe: 'Worker certificates to issue (worker-1 … worker-N)' })
          .option('clients', { type: 'number', default: 1, describe: 'Client certificates to issue (client-1 … client-N)' })
          .option('days', { type: 'number', default: 365, describe: 'Validity of the node certificates, in days' })
          .option('force', { type: 'boolean', default: false, describe: 'Overwrite existing files' })
          .option('add', { type: 'string', describe: 'Issue one more certificate with this node name from the CA in --out' })
          .option('role', { choices: ROLES, describe: 'The role of the --add node' })
          .example('$0 generate-tls-certificates --hostname manager.example.com --hostname 10.0.0.5 --workers 8', 'a cluster set for 8 workers')
          .example('$0 generate-tls-certificates --add worker-9 --role worker', 'one more worker later'),
      (args) => {
        choose(async () => {
          const { runGenerateCommand } = await import('../../certs/index.js');
          io.print(runGenerateCommand({ out: args.out, hostname: args.hostname, workers: args.workers, clients: args.clients, days: args.days, force: args.force, add: args.add, role: args.role as Role | undefined }));
          return 0;
        });
      },
    )
    .command(
      'revoke [name]',
      'Shut a node out: add its certificate(s) to the revocation list next to the CA (revoked.crl), which the manager follows',
      (y) =>
        certsOptions(y)
          .positional('name', { type: 'string', describe: 'Revoke every certificate issued under this node name (the current one and any it replaced)' })
          .option('serial', { type: 'string', array: true, describe: 'Revoke the certificate with this serial number (hex; repeat for several) instead of by name' })
          .option('replaced', { type: 'boolean', default: false, describe: 'With NAME: only the certificates of NAME that `--add NAME --force` replaced, not its current one' })
          .example('$0 revoke worker-2', 'worker-2 is disconnected and refused from now on (TROUPE_E_REVOKED)')
          .example('$0 revoke worker-1 --replaced', 'after `generate-tls-certificates --add worker-1 --role worker --force`: the old certificate is shut out, the new one works')
          .example('$0 revoke --serial 4f0c…', 'one certificate, by the serial `openssl x509 -serial -noout -in CERT` prints'),
      (args) => {
        if (args.name === undefined && (args.serial === undefined || args.serial.length === 0)) throw settingError('name', undefined, 'a node name to revoke, or --serial HEX');
        choose(async () => {
          const { runRevokeCommand } = await import('../../certs/index.js');
          io.print(runRevokeCommand({ certs: args.certs, name: args.name, serial: args.serial, replaced: args.replaced }));
          return 0;
        });
        },
      )
      .command(
      'certificate-request',
      false, // internal: what `troupe deploy` runs on a host, so that the node's key is made there and never leaves it
      (y) =>
        y
          .option('key', { type: 'string', demandOption: true, describe: 'The private key file (made, mode 0600, if missing)' })
          .option('name', { type: 'string', demandOption: true, describe: 'The node name' })
          .option('role', { choices: ROLES, demandOption: true, describe: 'The node role' })
          .option('new-key', { type: 'boolean', default: false, describe: 'Replace the key with a new one' }),
      (args) => {
        choose(async () => {
          const { makeSigningRequest } = await import('../../certs/index.js');
          io.print(makeSigningRequest({ key: args.key, name: args.name, role: args.role as Role, newKey: args['new-key'] }).csr.trimEnd());
          return 0;
        });
      },
    )
    .command(
      'manager',
      'Run the manager and its REPL: workers and clients join it over mutual TLS; type shell commands to run them on the workers',
      (y) =>
        replOptions(certsOptions(y))
          .option('host', { type: 'string', default: '0.0.0.0', describe: 'Address to listen on' })
          .option('port', { type: 'number', default: DEFAULT_PORT, describe: 'Port to listen on (0: a free one)' })
          .option('name', { type: 'string', describe: 'Node name: which certificate in --certs (default: the only manager certificate there)' })
          .option('local-workers', { type: 'number', default: 0, describe: 'Also start N workers on this machine, joined over loopback' })
          .option('local-worker-tags', localWorkerTagsOption)
          .option('sessions', sessionsOption)
          .option('metrics', metricsOption)
          .options(journalOptions(needed(loaded.journal)))
          .example('$0 manager --local-workers 4', 'a manager, four local workers, and the REPL')
          .example('$0 manager --no-repl --metrics 0.0.0.0:9464', 'as a service, Prometheus metrics on every interface (docs/metrics.md)')
          .example('$0 manager --no-repl --sessions ./sessions', 'run every scenario file dropped into ./sessions (docs/russula.md)')
          .example("echo 'uname -a' | $0 manager --local-workers 1", 'from a script: the lines run in order, the exit status is the last one\'s')
          .example('$0 manager --no-repl', 'as a service (also when stdin is /dev/null)'),
      (args) => {
        const options = {
          certs: args.certs,
          name: args.name,
          listen: { host: args.host, port: checkPort('port', args.port) },
          localWorkers: count('local-workers', args['local-workers']),
          localWorkerTags: localWorkerTags(args['local-worker-tags']),
          sessions: args.sessions,
          metrics: args.metrics === undefined ? undefined : parseMetricsAddress('metrics', args.metrics),
          ...journalSettings(args),
        };
        choose(withRepl(args.repl, args['log-file'], async (hooks) => (await import('../../actors/nodes.js')).runManager({ ...options, ...hooks, membership: MEMBERSHIP_VIEW }), io));
      },
    )
    .command(
      'worker',
      'Run a worker: join the manager (and rejoin whenever it is lost) and run what it is given',
      (y) =>
        clientCertOptions(y)
          .option('join', { type: 'string', demandOption: true, describe: 'The manager, HOST[:PORT] (default port 7400)' })
          .option('name', { type: 'string', describe: 'Node name: which certificate in --certs (default: the only worker certificate there)' })
          .option('slots', { type: 'number', describe: 'Tasks run at once (default: the number of cpus)' })
          .option('tags', { type: 'string', describe: 'Comma-separated tags tasks can select with tag=… (e.g. gpu,ssd)' })
          .option('log-file', { type: 'string', describe: 'Append logs (JSON lines) to this file instead of stderr' })
          .option('metrics', metricsOption)
          .option('exit-with-parent', { type: 'boolean', default: false, hidden: true })
          .example('$0 worker --join 10.0.0.5 --name worker-3 --tags gpu', 'join a manager on the default port')
          .example('$0 worker --join mgr:7400 --cert w3.crt --key w3.key --ca ca.crt', 'with the three files anywhere'),
      (args) => {
        const options = {
          certs: args.certs,
          cert: args.cert,
          key: args.key,
          ca: args.ca,
          name: args.name,
          join: parseHostPort('join', args.join),
          exitWithParent: args['exit-with-parent'],
          slots: args.slots === undefined ? undefined : workerSlots(args.slots),
          tags: parseTags(args.tags),
          logFile: args['log-file'],
          metrics: args.metrics === undefined ? undefined : parseMetricsAddress('metrics', args.metrics),
          print: io.print,
        };
        choose(async () => {
          const { runWorker } = await import('../../actors/nodes.js');
          const node = await runWorker(options);
          await node.stopped;
          return 0;
        });
      },
    )
    .command(
      'attach [manager]',
      'Open the manager\'s REPL from another machine, with a client certificate (as iex --remsh)',
      (y) =>
        connectOptions(clientCertOptions(y).positional('manager', { type: 'string', describe: MANAGER_ARGUMENT }))
          .option('name', { type: 'string', describe: 'Node name: which certificate in --certs (default: the only client certificate there)' })
          .example('$0 attach manager.example.com --certs ~/troupe-certs', 'a REPL on the cluster from a laptop'),
      (args) => {
        const options = clientConnection(args, 'troupe attach');
        choose(async () => (await import('./sessions.js')).attachSession(options));
      },
    )
    .command(
      'run [manager] [command..]',
      'Run one shell command on the cluster, output streamed, its exit status returned (as ssh or pdsh)',
      (y) => runBuilder(y),
      (args) => {
        const options = runCommandOptions(runArgsOf(args));
        choose(async () => (await import('./client-commands.js')).runOnCluster(options));
      },
    )
    .command(
      'logs <id> [manager]',
      "Print a task's output as the manager stored it (finished or running); --follow to its end, as kubectl logs -f",
      (y) =>
        connectOptions(clientCertOptions(y).positional('id', { type: 'string', demandOption: true, describe: 'The task id' }).positional('manager', { type: 'string', describe: MANAGER_ARGUMENT }))
          .option('name', { type: 'string', describe: 'Node name: which certificate in --certs (default: the only client certificate there)' })
          .option('follow', { alias: 'f', type: 'boolean', default: false, describe: 'Keep printing new output until the task ends' })
          .option('stdout', { type: 'boolean', describe: 'Only its stdout' })
          .option('stderr', { type: 'boolean', describe: 'Only its stderr' })
          .option('tail', { type: 'number', describe: 'Only the last N lines of what is there now' })
          .conflicts('stdout', 'stderr')
          .example('$0 logs k3f-12 10.0.0.5 --follow', 'the output so far, then as it comes'),
      (args) => {
        const options = {
          ...clientConnection(args, 'troupe logs'),
          id: args.id,
          follow: args.follow,
          stream: args.stdout ? ('stdout' as const) : args.stderr ? ('stderr' as const) : undefined,
          tail: args.tail === undefined ? undefined : count('tail', args.tail),
        };
        choose(async () => (await import('./client-commands.js')).showLogs(options));
      },
    )
    .command(
      'audit [manager]',
      'Show the audit trail: every submit, cancel and attach, by certificate name, address and time',
      (y) =>
        connectOptions(clientCertOptions(y).positional('manager', { type: 'string', describe: MANAGER_ARGUMENT }))
          .option('name', { type: 'string', describe: 'Node name: which certificate in --certs (default: the only client certificate there)' })
          .option('since', { type: 'string', describe: 'Only entries since this time (ISO 8601, e.g. 2026-12-01T10:00Z)' })
          .option('by', { type: 'string', describe: 'Only entries by this certificate name' })
          .option('json', { type: 'boolean', default: false, describe: 'As a JSON array' }),
      (args) => {
        const since = args.since === undefined ? undefined : Date.parse(args.since);
        if (since !== undefined && !Number.isFinite(since)) throw settingError('since', args.since, 'a time, ISO 8601 (e.g. 2026-12-01T10:00Z)');
        const options = { ...clientConnection(args, 'troupe audit'), since, by: args.by, json: args.json, print: io.print };
        choose(async () => (await import('./client-commands.js')).showAudit(options));
      },
    )
    .command(
      'status [manager]',
      'Show the workers (tags, slots, load, memory, running tasks) and the tasks',
      (y) =>
        connectOptions(clientCertOptions(y).positional('manager', { type: 'string', describe: MANAGER_ARGUMENT }))
          .option('name', { type: 'string', describe: 'Node name: which certificate in --certs (default: the only client certificate there)' })
          .option('json', { type: 'boolean', default: false, describe: 'Everything as one JSON object (every task the manager remembers)' })
          .example('$0 status 10.0.0.5', 'tables')
          .example('$0 status 10.0.0.5 --json | jq ".workers[].worker"', 'for scripts'),
      (args) => {
        const options = {
          ...clientConnection(args, 'troupe status'),
          json: args.json,
          print: io.print,
        };
        choose(async () => (await import('./client-commands.js')).showStatus(options));
      },
    )
    .command(
      'top [manager]',
      'A live full-screen view of the cluster: workers (cpu, load, memory, slots), running tasks, the queue, tasks/s, membership',
      (y) =>
        connectOptions(clientCertOptions(y).positional('manager', { type: 'string', describe: MANAGER_ARGUMENT }))
          .option('name', { type: 'string', describe: 'Node name: which certificate in --certs (default: the only client certificate there)' })
          .example('$0 top 10.0.0.5', 'keys: q quit, s sort, / filter by selector, ↑↓ select, Enter live output, c cancel')
          .epilog('Updated as the manager pushes changes (at most 4 times a second). NO_COLOR turns colours off.'),
      (args) => {
        const options = clientConnection(args, 'troupe top');
        choose(async () => (await import('./top.js')).runTop(options));
      },
    )
    .command(
      'scenario',
      'Russula: coordinated multi-phase runs (servers, then clients, then stop) from scenario files',
      (y) =>
        y
          .command(
            'run <file> [manager]',
            'Run a scenario file against a manager; print each step; write FILE.result.json beside it',
            (z) =>
              connectOptions(clientCertOptions(z).positional('file', { type: 'string', demandOption: true, describe: 'The scenario (YAML): groups and steps, see docs/russula.md' }).positional('manager', { type: 'string', describe: MANAGER_ARGUMENT }))
                .option('name', { type: 'string', describe: 'Node name: which certificate in --certs (default: the only client certificate there)' })
                .example('$0 scenario run examples/echo.yaml 10.0.0.5', 'servers, then clients that talk to them, then stop the servers')
                .example('TROUPE_JOIN=127.0.0.1:7400 $0 scenario run examples/echo.yaml', 'the manager from the environment')
                .epilog('Exit status: 0 when every step passed, 1 otherwise (one line: the error code and why). The result file (echo.yaml → echo.result.json) has every member\'s states with timestamps, exit codes, output tails, and the coordination traffic of each step.'),
            (args) => {
              const options = {
                ...clientConnection(args, 'troupe scenario run'),
                file: args.file,
                print: io.print,
              };
              choose(async () => (await import('./scenario-command.js')).runScenarioCommand(options));
            },
          )
          .demandCommand(1, 'Name a scenario command: troupe scenario run FILE HOST:PORT'),
    )
    .command(
      // troupe deploy (src/cli/deploy-command.ts)
      loaded.deploy ? loaded.deploy.deployCommand({ print: io.print, setJob: (j) => (job = j), count, seconds }) : summaryOnly(DEPLOY_SUMMARY),
    )
    .command(
      // troupe bench (src/cli/bench-command.ts)
      loaded.bench
        ? loaded.bench.benchCommand({
            print: io.print,
            setJob: (j) => (job = j),
            clientOptions: (y) => connectOptions(clientCertOptions(y)).option('name', { type: 'string', describe: 'Node name: which certificate in --certs (default: the only client certificate there)' }),
            connection: (args) => clientConnection(args as unknown as Parameters<typeof clientConnection>[0], 'troupe bench'),
          })
        : summaryOnly(BENCH_SUMMARY),
    )
    .command(
      'demo',
      'Development certificates (if none), a manager on 127.0.0.1, local workers and the REPL: what `npm start` runs',
      (y) =>
        replOptions(y)
          .option('workers', { type: 'number', default: DEFAULT_LOCAL_WORKERS, describe: 'Local workers to start' })
          .option('port', { type: 'number', describe: `Port to listen on (default ${DEFAULT_PORT}, or a free one if taken)` })
          .option('certs', { type: 'string', default: DEFAULT_CERTS_DIR, describe: 'Certificates directory (created if empty)' })
          .option('local-worker-tags', localWorkerTagsOption)
          .option('sessions', sessionsOption)
          .options(journalOptions(needed(loaded.journal))),
      (args) => {
        const options = {
          certs: args.certs,
          workers: count('workers', args.workers),
          port: args.port === undefined ? undefined : checkPort('port', args.port),
          localWorkerTags: localWorkerTags(args['local-worker-tags']),
          sessions: args.sessions,
          ...journalSettings(args),
        };
        choose(withRepl(args.repl, args['log-file'], async (hooks) => (await import('../../actors/nodes.js')).runDemo({ ...options, ...hooks, membership: MEMBERSHIP_VIEW }), io));
      },
    )
    .demandCommand(1, 'Name a command: troupe <command> --help shows its options.')
    .recommendCommands()
    .strict()
    .help()
    .alias('help', 'h')
    .version(false)
    .wrap(Math.min(110, process.stdout.columns || 110))
    .exitProcess(false)
    .fail((message, err) => {
      if (err) throw err;
      usageError = message;
    });
  if (loaded.testbed) loaded.testbed.testbedCommand(cli, io, (j) => (job = j));
  else cli.command(summaryOnly(TESTBED_SUMMARY));

  try {
    try {
      await cli.parseAsync();
    } catch (err) {
      if (!(err instanceof JobChosen)) throw err;
    }
    if (usageError !== undefined) {
      io.error(`${await cli.getHelp()}\n\n${usageError}`);
      return 2;
    }
    return job ? await job() : 0;
  } catch (err) {
    io.error(await describe(err));
    return 1;
  }
}

/**
 * Thrown by a command's handler once it has chosen its job, past yargs to main. After a handler
 * returns, yargs renders that command's whole help (usage.cacheHelpMessage, kept for a failure
 * later), tens of milliseconds of CPU for a one-shot command (`troupe run`) to print nothing; a
 * handler that throws skips it, as one that throws a setting error always has. Validation is done
 * by then: yargs runs a handler only for a command line it accepted.
 */
class JobChosen extends Error {
  constructor() {
    super('job chosen');
    this.name = 'JobChosen';
  }
}

/** The commands named on the command line (any word before `--` that is one: a superset of the one yargs runs). */
function namedCommands(argv: readonly string[]): Set<string> {
  const dash = argv.indexOf('--');
  return new Set((dash < 0 ? argv : argv.slice(0, dash)).filter((a) => !a.startsWith('-')));
}

/**
 * What the definitions of the named commands need from heavy modules: the journal's defaults
 * (manager, demo), and the deploy, testbed and bench commands' modules. Loaded before yargs
 * builds the command line, whose builders are synchronous; a command not named is listed by its
 * summary only (its builder never runs: yargs builds only the command it runs, or shows help of).
 */
async function loadDefinitions(argv: readonly string[]) {
  const named = namedCommands(argv);
  const [journal, deploy, testbed, bench] = await Promise.all([
    named.has('manager') || named.has('demo') ? loadJournalDefaults() : undefined,
    named.has(DEPLOY_SUMMARY.command) ? import('./deploy-command.js') : undefined,
    named.has(TESTBED_SUMMARY.command) ? import('./testbed-command.js') : undefined,
    named.has(BENCH_SUMMARY.command) ? import('./bench-command.js') : undefined,
  ]);
  return { journal, deploy, testbed, bench };
}

/** A command listed in the help by its summary, for a command line that does not name it. */
function summaryOnly(summary: CommandSummary): CommandModule {
  return { command: summary.command, describe: summary.describe, builder: (y: Argv) => y, handler: () => {} };
}

function needed(defaults: JournalDefaults | undefined): JournalDefaults {
  if (defaults === undefined) throw new Error('internal: the journal\'s defaults were not loaded for this command (main.ts, loadDefinitions)');
  return defaults;
}

/** A manager (or demo) with its REPL on stdin, or without one: `--no-repl`, or nothing to read on stdin. */
function withRepl(
  repl: boolean,
  logFile: string | undefined,
  start: Parameters<typeof managerSession>[0],
  io: CliIo,
): () => Promise<number> {
  return async () => {
    if (repl) {
      const { managerSession, stdinKind } = await import('./sessions.js');
      if (stdinKind() !== 'none') return managerSession(start, { logFile });
    }
    const { createLogger } = await import('../log.js');
    const node = await start({ print: io.print, ...(logFile !== undefined ? { log: (name: string) => createLogger({ node: name, file: logFile }), workerArgs: ['--log-file', logFile] } : {}) });
    await node.stopped;
    return 0;
  };
}

const localWorkerTagsOption = {
  type: 'string',
  array: true,
  describe: 'Tags of the local workers: the first value for worker-1, the next for worker-2…, the last for the rest (e.g. --local-worker-tags server --local-worker-tags client)',
} as const;

const metricsOption = {
  type: 'string',
  describe: `Serve Prometheus metrics at http://HOST:PORT/metrics (and /healthz, /readyz); PORT alone binds to ${DEFAULT_METRICS_HOST} (default: off; docs/metrics.md)`,
} as const;

const sessionsOption = {
  type: 'string',
  describe: 'Run every scenario file (*.yaml) dropped into this directory, one at a time; results beside them (docs/russula.md)',
} as const;

function localWorkerTags(values: readonly string[] | undefined): string[] | undefined {
  if (values === undefined) return undefined;
  return values.map((v) => parseTags(v).join(','));
}

/** `--tags a,b`: checked as the Worker's settings check them (worker-settings.ts). */
function parseTags(text: string | undefined): string[] {
  if (text === undefined) return [];
  return workerTags(text.split(',').map((t) => t.trim()).filter((t) => t !== ''), `${TAGS_EXPECTED}, separated by commas`);
}

async function describe(err: unknown): Promise<string> {
  const debug = await debugging();
  if (err instanceof TroupeError) return `troupe: ${err.code}: ${err.message}${debug && err.stack ? `\n${err.stack}` : ''}`;
  return `troupe: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`;
}

/** TROUPE_LOG at debug or trace. An invalid value is not debugging (and is itself the error being described). */
async function debugging(): Promise<boolean> {
  try {
    const { levelFromEnv } = await import('../log.js');
    return ['debug', 'trace'].includes(levelFromEnv());
  } catch {
    return false;
  }
}
