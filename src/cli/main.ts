/**
 * The `troupe` command. Each subcommand parses its options here and hands plain values to the code
 * that does the work; errors with a troupe code print as `troupe: CODE: message` and exit 1, usage
 * errors exit 2 with the help.
 */
import yargs, { type Argv } from 'yargs';
import { runGenerateCommand } from '../../certs/index.js';
import { ROLES, type Role } from '../../protocols/roles.js';
import { settingError, TroupeError } from '../errors.js';
import { DEFAULT_PORT } from '../transport/settings.js';
import { runDemo, runManager, runWorker, type Print, type RunningNode } from './nodes.js';
import { checkPort, DEFAULT_CERTS_DIR, parseHostPort } from './options.js';

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
  let running: Promise<RunningNode> | undefined;
  let usageError: string | undefined;
  const cli = yargs([...argv])
    .scriptName('troupe')
    .usage('$0 <command> [options]\n\nA distributed actor cluster: a manager, workers joined over mutual TLS, shell commands run on the workers.')
    .command(
      'generate-tls-certificates',
      'Create a CA and node certificates (manager, workers, clients), or add one node to an existing CA',
      (y) =>
        y
          .option('out', { type: 'string', default: DEFAULT_CERTS_DIR, describe: 'Directory to write the certificates to' })
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
        io.print(runGenerateCommand({ out: args.out, hostname: args.hostname, workers: args.workers, clients: args.clients, days: args.days, force: args.force, add: args.add, role: args.role as Role | undefined }));
      },
    )
    .command(
      'manager',
      'Run the manager: listen for workers and clients over mutual TLS',
      (y) =>
        certsOptions(y)
          .option('host', { type: 'string', default: '0.0.0.0', describe: 'Address to listen on' })
          .option('port', { type: 'number', default: DEFAULT_PORT, describe: 'Port to listen on (0: a free one)' })
          .option('name', { type: 'string', describe: 'Node name: which certificate in --certs (default: the only manager certificate there)' })
          .option('local-workers', { type: 'number', default: 0, describe: 'Also start N workers on this machine, joined over loopback' })
          .example('$0 manager --local-workers 4', 'a manager and four local workers'),
      (args) => {
        running = runManager({ certs: args.certs, name: args.name, listen: { host: args.host, port: checkPort('port', args.port) }, localWorkers: count('local-workers', args['local-workers']), print: io.print });
      },
    )
    .command(
      'worker',
      'Run a worker: join the manager and run what it is given',
      (y) =>
        certsOptions(y)
          .option('join', { type: 'string', demandOption: true, describe: 'The manager, HOST[:PORT] (default port 7400)' })
          .option('name', { type: 'string', describe: 'Node name: which certificate in --certs (default: the only worker certificate there)' })
          .option('slots', { type: 'number', describe: 'Tasks run at once (default: the number of cpus)' })
          .option('tags', { type: 'string', describe: 'Comma-separated tags tasks can select with tag=… (e.g. gpu,ssd)' })
          .option('exit-with-parent', { type: 'boolean', default: false, hidden: true })
          .example('$0 worker --join 10.0.0.5 --name worker-3', 'join a manager on the default port'),
      (args) => {
        running = runWorker({
          certs: args.certs,
          name: args.name,
          join: parseHostPort('join', args.join),
          exitWithParent: args['exit-with-parent'],
          slots: args.slots === undefined ? undefined : slots(args.slots),
          tags: parseTags(args.tags),
          print: io.print,
        });
      },
    )
    .command(
      'demo',
      'Development certificates (if none), a manager on 127.0.0.1 and local workers: what `npm start` runs',
      (y) =>
        y
          .option('workers', { type: 'number', default: DEFAULT_LOCAL_WORKERS, describe: 'Local workers to start' })
          .option('port', { type: 'number', describe: `Port to listen on (default ${DEFAULT_PORT}, or a free one if taken)` })
          .option('certs', { type: 'string', default: DEFAULT_CERTS_DIR, describe: 'Certificates directory (created if empty)' }),
      (args) => {
        running = runDemo({ certs: args.certs, workers: count('workers', args.workers), port: args.port === undefined ? undefined : checkPort('port', args.port), print: io.print });
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

  try {
    await cli.parseAsync();
    if (usageError !== undefined) {
      io.error(`${await cli.getHelp()}\n\n${usageError}`);
      return 2;
    }
    if (running) {
      const node = await running;
      await node.stopped;
    }
    return 0;
  } catch (err) {
    io.error(describe(err));
    return 1;
  }
}

function certsOptions<T>(y: Argv<T>) {
  return y.option('certs', { type: 'string', default: DEFAULT_CERTS_DIR, describe: 'Directory holding ca.crt and this node\'s NAME.crt / NAME.key' });
}

function count(option: string, value: number): number {
  if (!Number.isInteger(value) || value < 0 || value > 1000) throw settingError(option, value, 'a whole number from 0 to 1000');
  return value;
}

function slots(value: number): number {
  if (!Number.isInteger(value) || value < 1 || value > 10_000) throw settingError('slots', value, 'a whole number from 1 to 10000');
  return value;
}

const TAG = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

function parseTags(text: string | undefined): string[] {
  if (text === undefined) return [];
  const tags = text.split(',').map((t) => t.trim()).filter((t) => t !== '');
  for (const tag of tags) if (!TAG.test(tag)) throw settingError('tags', tag, 'tags of letters, digits, ".", "_" or "-" (up to 64), separated by commas');
  return [...new Set(tags)];
}

function describe(err: unknown): string {
  if (err instanceof TroupeError) return `troupe: ${err.code}: ${err.message}`;
  return `troupe: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`;
}
