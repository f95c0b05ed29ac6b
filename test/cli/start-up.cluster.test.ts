/**
 * What a command loads before it does its work (issue 17, start-up): `troupe --help` (and `troupe`,
 * `troupe status --help`) not yargs, the command definitions or any of the cluster, certificate,
 * deploy or Russula code, printing what yargs prints all the same (help-cache.ts); a one-shot
 * `troupe run` the client node alone, not yargs (its quick parser, run-line.ts), no certificate
 * library, YAML, Russula actors, REPL or TypeBox (every message it gets is checked all the same, by
 * a prebuilt check); `troupe status` no REPL or TypeBox either. CommonJS modules count as well as ES
 * modules (module-log.ts).
 * And the quick path says what the yargs path says: against a manager with no worker, the same
 * note, the same error and exit code. Real processes of the CLI, a real manager, mTLS on loopback.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { CliProcess, killAllCli } from '../fixtures/cli-process.js';
import { testPki } from '../fixtures/pki.js';
import { TaskCluster } from '../fixtures/task-cluster.js';
import { yargsPrints } from '../fixtures/yargs-help.js';

const MODULE_LOG = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'module-log.js');
/**
 * Packages and parts of troupe that no client command should load for `run` or `--help`. TypeBox
 * neither: the messages of a run are checked by prebuilt checks (protocols/schema-check.ts).
 */
const NEVER = [/node_modules\/@sinclair\/typebox\//, /node_modules\/node-forge\//, /node_modules\/yaml\//, /node_modules\/ssh2\//, /node_modules\/@aws-sdk\//, /node_modules\/better-sqlite3\//, /\/actors\/russula\//, /\/src\/deploy\//, /\/src\/testbed\//, /\/src\/cli\/repl\.js$/, /\/src\/cli\/sessions\.js$/];

describe('troupe start-up: what a command loads', function () {
  this.timeout(30_000);
  let cluster: TaskCluster;
  let dir: string;
  let manager: string;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-start-up-'));
    cluster = await TaskCluster.start([]);
    manager = `127.0.0.1:${cluster.port}`;
  });
  after(async () => {
    await killAllCli();
    await cluster?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Runs troupe ARGS; what it printed, and every module it imported. */
  let runs = 0;
  async function troupe(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string; modules: string[] }> {
    const log = path.join(dir, `modules-${++runs}.log`);
    const result = await CliProcess.run(args, { cwd: dir, env: { ...env, NODE_OPTIONS: `--import=${MODULE_LOG}`, TROUPE_TEST_MODULE_LOG: log } });
    const modules = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').filter((l) => l !== '') : [];
    return { ...result, modules };
  }
  const loaded = (modules: string[], pattern: RegExp) => modules.filter((m) => pattern.test(m));

  it('--help loads neither yargs nor the command definitions, and prints what yargs prints; a typo still gets yargs\' usage error', async () => {
    // English, as yargs' locale: the cache answers only then (help-cache.ts).
    const env = { LC_ALL: 'C.UTF-8' };
    const [help, bare, status, typo] = await Promise.all([['--help'], [], ['status', '--help'], ['--hel']].map((args) => troupe(args, env)));
    // stdout is a pipe here: yargs wraps at 110 columns.
    for (const [r, argv] of [[help, ['--help']], [bare, []], [status, ['status', '--help']]] as const) {
      // CliProcess.run gives the lines, without the last newline.
      const { code, stdout, stderr } = await yargsPrints(argv, undefined, env);
      expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }, `troupe ${argv.join(' ')}`).to.deep.equal({ code, stdout: stdout.replace(/\n$/, ''), stderr: stderr.replace(/\n$/, '') });
      expect(loaded(r.modules, /node_modules\/yargs\//), `troupe ${argv.join(' ')}`).to.deep.equal([]);
      expect(loaded(r.modules, /\/src\/cli\/main\.js$/), `troupe ${argv.join(' ')}`).to.deep.equal([]);
      for (const pattern of [...NEVER, /node_modules\/@sinclair\/typebox\//, /node_modules\/msgpackr\//, /\/src\/cluster\/cluster-system\.js$/]) expect(loaded(r.modules, pattern), String(pattern)).to.deep.equal([]);
    }
    expect(help.stdout).to.match(/^troupe <command> \[options\]/);
    expect(bare.code).to.equal(2);
    expect(typo.code).to.equal(2);
    expect(typo.stderr).to.match(/^troupe <command> \[options\][\s\S]*\n\nUnknown argument: hel$/);
    expect(loaded(typo.modules, /node_modules\/yargs\//)).to.not.be.empty;
  });

  it('a one-shot run loads the client node, not yargs; against a manager with no worker it says what the yargs path says', async () => {
    const certs = ['--certs', testPki().dir, '--name', 'client-1'];
    // The usual form (the quick parser), and one only yargs takes (`--verbose=false`), alike.
    const [quick, full] = await Promise.all([
      troupe(['run', manager, ...certs, '--wait', '0.5', '--', 'true']),
      troupe(['run', manager, ...certs, '--wait', '0.5', '--verbose=false', '--', 'true']),
    ]);
    for (const r of [quick, full]) {
      expect(r.code).to.equal(1);
      expect(r.stdout).to.equal('');
      expect(r.stderr.split('\n')).to.deep.equal(['no worker has joined yet; waiting for one (Ctrl-C gives up)…', `troupe: TROUPE_E_NO_MATCHING_WORKER: no worker joined ${manager} within 0.5 s (--wait)`]);
      expect(loaded(r.modules, /\/src\/cluster\/cluster-system\.js$/)).to.have.length(1);
      for (const pattern of NEVER) expect(loaded(r.modules, pattern), String(pattern)).to.deep.equal([]);
    }
    // msgpackr as its one CommonJS file (src/transport/msgpackr-library.ts), not its five ES modules.
    expect(loaded(quick.modules, /node_modules\/msgpackr\//).map((m) => m.replace(/^.*node_modules\//, ''))).to.deep.equal(['msgpackr/dist/node.cjs']);
    expect(loaded(quick.modules, /node_modules\/yargs\//)).to.deep.equal([]);
    expect(loaded(full.modules, /node_modules\/yargs\//)).to.not.be.empty;
  });

  it('status loads the client node and no REPL, certificate library, YAML or Russula actors', async () => {
    const { code, stdout, modules } = await troupe(['status', manager, '--certs', testPki().dir, '--name', 'client-1', '--json']);
    expect(code).to.equal(0);
    expect(JSON.parse(stdout).workers).to.deep.equal([]);
    expect(loaded(modules, /\/src\/cluster\/cluster-system\.js$/)).to.have.length(1);
    for (const pattern of NEVER) expect(loaded(modules, pattern), String(pattern)).to.deep.equal([]);
  });
});
