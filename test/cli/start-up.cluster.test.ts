/**
 * What a command loads before it does its work (issue 17, start-up): `troupe --help` none of the
 * cluster, certificate, deploy or Russula code; a one-shot `troupe run` the client node alone, not
 * yargs (its quick parser, run-line.ts), no certificate library, YAML, Russula actors, REPL or
 * TypeBox (every message it gets is checked all the same, by a prebuilt check); `troupe status`
 * no REPL or TypeBox either. CommonJS modules count as well as ES modules (module-log.ts).
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
  async function troupe(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string; modules: string[] }> {
    const log = path.join(dir, `modules-${++runs}.log`);
    const result = await CliProcess.run(args, { cwd: dir, env: { NODE_OPTIONS: `--import=${MODULE_LOG}`, TROUPE_TEST_MODULE_LOG: log } });
    const modules = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').filter((l) => l !== '') : [];
    return { ...result, modules };
  }
  const loaded = (modules: string[], pattern: RegExp) => modules.filter((m) => pattern.test(m));

  it('--help loads yargs and the option definitions, nothing of the cluster, the certificates, deploy or Russula', async () => {
    const { code, stdout, modules } = await troupe(['--help']);
    expect(code).to.equal(0);
    expect(stdout).to.match(/^troupe <command> \[options\]/);
    expect(loaded(modules, /node_modules\/yargs\//)).to.not.be.empty;
    for (const pattern of [...NEVER, /node_modules\/msgpackr\//, /\/src\/cluster\/cluster-system\.js$/]) expect(loaded(modules, pattern), String(pattern)).to.deep.equal([]);
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
