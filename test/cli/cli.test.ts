/**
 * The `troupe` command as a user runs it: real processes, real certificates on disk, real mTLS on
 * loopback with ports from the OS.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { CliProcess, killAllCli } from '../fixtures/cli-process.js';
import { testPki } from '../fixtures/pki.js';
import { until } from '../fixtures/processes.js';
import { alive } from '../fixtures/task-cluster.js';

describe('troupe command', function () {
  this.timeout(30_000);
  let dir: string;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-cli-'));
  });
  afterEach(async () => {
    await killAllCli();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('--help names every command', async () => {
    const { code, stdout } = await CliProcess.run(['--help']);
    expect(code).to.equal(0);
    for (const command of ['generate-tls-certificates', 'revoke', 'manager', 'worker', 'attach', 'run', 'status', 'demo']) expect(stdout).to.match(new RegExp(`troupe ${command}\\s`));
    const run = await CliProcess.run(['run', '--help']);
    expect(run.code).to.equal(0);
    expect(run.stdout).to.contain('troupe run [HOST:PORT] [options] -- COMMAND…');
  });

  it('an unknown command exits 2 with the usage', async () => {
    const { code, stderr } = await CliProcess.run(['frobnicate']);
    expect(code).to.equal(2);
    expect(stderr).to.contain('Unknown argument: frobnicate');
    expect(stderr).to.contain('troupe <command> [options]');
  });

  it('generate-tls-certificates writes the set with private keys 0600, then refuses to overwrite without --force', async () => {
    const out = path.join(dir, 'certs');
    const first = await CliProcess.run(['generate-tls-certificates', '--out', out, '--workers', '3', '--hostname', 'mgr.example']);
    expect(first.code).to.equal(0);
    expect(first.stdout).to.contain(`Wrote a new CA and 5 node certificates to ${out}`);
    expect(fs.readdirSync(out).sort()).to.deep.equal(
      ['ca.crt', 'ca.key', 'client-1.crt', 'client-1.key', 'manager.crt', 'manager.key', 'worker-1.crt', 'worker-1.key', 'worker-2.crt', 'worker-2.key', 'worker-3.crt', 'worker-3.key'],
    );
    for (const key of ['ca.key', 'manager.key', 'worker-3.key']) expect(fs.statSync(path.join(out, key)).mode & 0o777).to.equal(0o600);
    const again = await CliProcess.run(['generate-tls-certificates', '--out', out]);
    expect(again.code).to.equal(1);
    expect(again.stderr).to.match(/^troupe: TROUPE_E_CERT_EXISTS: refusing to overwrite .*pass --force/m);
    const added = await CliProcess.run(['generate-tls-certificates', '--out', out, '--add', 'worker-4', '--role', 'worker']);
    expect(added.code).to.equal(0);
    expect(added.stdout).to.contain('Issued a certificate for node "worker-4" (role worker)');
  });

  it('demo: creates dev certificates, a manager and two local workers join it over mTLS, membership printed; SIGTERM stops all', async () => {
    const demo = CliProcess.start(['demo', '--port', '0'], { cwd: dir });
    await demo.waitForLine(/^all 2 local workers joined over mTLS/);
    expect(demo.stdout[0]).to.equal('created development certificates in .troupe/certs (a local CA; not for production: see docs/security.md)');
    expect(demo.stdout).to.include.members(['+ worker-1 up (worker, ' + platform() + ')', '+ worker-2 up (worker, ' + platform() + ')']);
    const table = demo.stdout.slice(demo.stdout.indexOf('membership: 3 nodes, 3 up'));
    expect(table[2]).to.match(/^ {2}manager +manager +up /);
    expect(table[3]).to.match(/^ {2}worker-1 +worker +up /);
    expect(table[4]).to.match(/^ {2}worker-2 +worker +up /);
    const workerPids = childPids(demo.child.pid!);
    expect(workerPids).to.have.length(2);
    demo.child.kill('SIGTERM');
    expect(await demo.exited).to.deep.equal({ code: 0, signal: null });
    for (const pid of workerPids) await until(() => !alive(pid), `worker ${pid} still running`);
    expect(fs.statSync(path.join(dir, '.troupe', 'certs', 'worker-1.key')).mode & 0o777).to.equal(0o600);
  });

  it('a worker started by hand (--cert --key --ca) joins a manager started by hand; the manager sees it come and go', async () => {
    const certs = testPki().dir;
    // A TROUPE_JOIN meant for workers does not trouble a manager (which has no --join).
    const manager = CliProcess.start(['manager', '--certs', certs, '--host', '127.0.0.1', '--port', '0'], { env: { TROUPE_JOIN: '10.9.9.9:1' } });
    const port = Number(/:(\d+) \(certificates/.exec(await manager.waitForLine(/^troupe manager "manager" listening on wss:\/\/127\.0\.0\.1:\d+/))![1]);
    const files = ['worker-2.crt', 'worker-2.key', 'ca.crt'].map((f) => path.join(certs, f));
    const worker = CliProcess.start(['worker', '--cert', files[0]!, '--key', files[1]!, '--ca', files[2]!, '--join', `127.0.0.1:${port}`]);
    await worker.waitForLine(/^joined the cluster through "manager"$/);
    expect(worker.stdout[0]).to.equal(`troupe worker "worker-2" joining the manager at 127.0.0.1:${port}…`);
    await manager.waitForLine(/^\+ worker-2 up \(worker, /);
    worker.child.kill('SIGTERM');
    expect((await worker.exited).code).to.equal(0);
    await manager.waitForLine(/^- worker-2 down /);
    const half = await CliProcess.run(['worker', '--cert', files[0]!, '--join', `127.0.0.1:${port}`]);
    expect([half.code, half.stderr]).to.deep.equal([1, 'troupe: TROUPE_E_SETTING: --key, --ca: expected a path: --cert, --key and --ca go together (given: --cert), got undefined']);
  });

  it('a worker without --name picks the only worker certificate in --certs, or says which names it could be', async () => {
    const certs = testPki().dir;
    const several = await CliProcess.run(['worker', '--certs', certs, '--join', '127.0.0.1:1']);
    expect(several.code).to.equal(1);
    expect(several.stderr).to.contain(`troupe: TROUPE_E_SETTING: name: expected one of worker-1, worker-2, worker-3, worker-4 (${certs} holds several worker certificates), got undefined`);
  });

  it('a worker whose certificate the manager refuses stops with the TLS error instead of retrying forever', async () => {
    const theirs = path.join(dir, 'theirs');
    expect((await CliProcess.run(['generate-tls-certificates', '--out', theirs])).code).to.equal(0);
    const manager = CliProcess.start(['manager', '--certs', testPki().dir, '--host', '127.0.0.1', '--port', '0']);
    const port = Number(/:(\d+) \(certificates/.exec(await manager.waitForLine(/listening on/))![1]);
    const stranger = await CliProcess.run(['worker', '--certs', theirs, '--name', 'worker-1', '--join', `127.0.0.1:${port}`]);
    expect(stranger.code).to.equal(1);
    expect(stranger.stderr).to.match(/^troupe: TROUPE_E_TLS_UNTRUSTED: 127\.0\.0\.1:\d+: the server's certificate is not trusted by our CA/m);
  });

  it('bad options: a clear error with a stable code', async () => {
    const join = await CliProcess.run(['worker', '--join', 'host:port']);
    expect(join.code).to.equal(1);
    expect(join.stderr).to.contain('troupe: TROUPE_E_SETTING: join: expected a port number from 0 to 65535, got "host:port"');
    const certs = await CliProcess.run(['worker', '--join', '127.0.0.1', '--certs', path.join(dir, 'none')]);
    expect(certs.code).to.equal(1);
    expect(certs.stderr).to.match(/troupe: TROUPE_E_CERT_MISSING: cannot read the certificates directory .*none \(ENOENT\)/);
    const workers = await CliProcess.run(['demo', '--workers', '-1'], { cwd: dir });
    expect(workers.code).to.equal(1);
    expect(workers.stderr).to.contain('troupe: TROUPE_E_SETTING: workers: expected a whole number from 0 to 1000, got -1');
    // Checked by the Worker's settings (actors/tasks/worker-settings.ts), before anything starts.
    const slots = await CliProcess.run(['worker', '--join', '127.0.0.1:1', '--certs', testPki().dir, '--name', 'worker-1', '--slots', '0']);
    expect([slots.code, slots.stderr.trim()]).to.deep.equal([1, 'troupe: TROUPE_E_SETTING: slots: expected a whole number from 1 to 10000, got 0']);
    const tags = await CliProcess.run(['worker', '--join', '127.0.0.1:1', '--certs', testPki().dir, '--name', 'worker-1', '--tags', 'gpu,a b']);
    expect([tags.code, tags.stderr.trim()]).to.deep.equal([1, 'troupe: TROUPE_E_SETTING: tags: expected tags of letters, digits, ".", "_" or "-" (up to 64), separated by commas, got "a b"']);
    const level = await CliProcess.run(['worker', '--join', '127.0.0.1:1', '--certs', testPki().dir, '--name', 'worker-1'], { env: { TROUPE_LOG: 'verbose' } });
    expect(level.code).to.equal(1);
    expect(level.stderr.trim()).to.equal('troupe: TROUPE_E_SETTING: TROUPE_LOG: expected one of trace, debug, info, warn, error, fatal, silent, got "verbose"');
  });

  it('a manager on a port in use: TROUPE_E_LISTEN naming the address', async () => {
    const certs = testPki().dir;
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as net.AddressInfo;
    try {
      const taken = await CliProcess.run(['manager', '--certs', certs, '--host', '127.0.0.1', '--port', String(port)]);
      expect(taken.code).to.equal(1);
      expect(taken.stderr).to.contain(`troupe: TROUPE_E_LISTEN: cannot listen on 127.0.0.1:${port}: the address is in use`);
    } finally {
      blocker.close();
    }
  });
});

function platform(): string {
  return `${process.platform}/${process.arch}, ${os.availableParallelism()} cpus`;
}

function childPids(pid: number): number[] {
  const out = execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' });
  return out.split('\n').map((l) => Number(l.trim())).filter((n) => n > 0);
}
