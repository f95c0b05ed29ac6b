/**
 * `troupe revoke` against a running cluster, as a person uses it: a real manager and real workers
 * (CLI processes) on loopback, a certificates directory of their own (a copy of the test PKI), and
 * OpenSSL (the binary, from the test only) to check that the list is a real, signed X.509 CRL.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { buildRevocationList, createAuthority } from '../../certs/index.js';
import { parseAuthority } from '../../certs/x509.js';
import { CliProcess, killAllCli } from '../fixtures/cli-process.js';
import { testPki } from '../fixtures/pki.js';

describe('troupe revoke: a revoked node is disconnected at once and refused after', function () {
  this.timeout(90_000);
  let dir: string;
  let certs: string;
  let manager: CliProcess;
  let port: number;
  const workers = new Map<string, CliProcess>();

  const troupe = (args: string[]) => CliProcess.run(args, { cwd: dir });
  const serialOf = (file: string) => /^serial=([0-9A-F]+)$/m.exec(execFileSync('openssl', ['x509', '-serial', '-noout', '-in', file], { encoding: 'utf8' }))![1]!.toLowerCase();
  const crl = () => path.join(certs, 'revoked.crl');
  /** `openssl verify` of a certificate against the CA and the list: "OK", or OpenSSL's reason. */
  const opensslVerdict = (file: string) => {
    try {
      execFileSync('openssl', ['verify', '-crl_check', '-CAfile', path.join(certs, 'ca.crt'), '-CRLfile', crl(), file], { encoding: 'utf8', stdio: 'pipe' });
      return 'OK';
    } catch (err) {
      const { stdout, stderr } = err as { stdout?: string; stderr?: string };
      return /error \d+ at \d+ depth lookup: (.*)/.exec(`${stdout}${stderr}`)?.[1] ?? String(err);
    }
  };

  function startWorker(name: string): CliProcess {
    const worker = CliProcess.start(['worker', '--certs', certs, '--name', name, '--join', `127.0.0.1:${port}`, '--slots', '1'], { cwd: dir });
    workers.set(name, worker);
    return worker;
  }

  /** Counts the manager's log lines with this message (JSON lines on its stderr). */
  const managerLog = (msg: string) => manager.stderr.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === msg);

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-revoke-'));
    certs = path.join(dir, 'certs');
    fs.cpSync(testPki().dir, certs, { recursive: true });
    manager = CliProcess.start(['manager', '--no-repl', '--certs', certs, '--host', '127.0.0.1', '--port', '0'], { cwd: dir, env: { TROUPE_LOG: 'info' } });
    const line = await manager.waitForLine(/listening on wss:\/\/127\.0\.0\.1:\d+/);
    port = Number(/:(\d+) \(certificates/.exec(line)![1]);
    await Promise.all(['worker-1', 'worker-2'].map((name) => startWorker(name).waitForLine(/^joined the cluster/, 'stdout', 60_000)));
  });

  after(async () => {
    await killAllCli();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('troupe revoke worker-2: a CRL OpenSSL verifies; worker-2 is cut off at once and stops with TROUPE_E_REVOKED; worker-1 works on', async () => {
    const worker2 = workers.get('worker-2')!;
    const serial = serialOf(path.join(certs, 'worker-2.crt'));
    const revoke = await troupe(['revoke', 'worker-2', '--certs', certs]);
    expect(revoke.code, revoke.stderr).to.equal(0);
    expect(revoke.stdout.split('\n').slice(0, 2)).to.deep.equal([
      `Revoked 1 certificate in ${crl()} (list number 1, 1 revoked in all):`,
      `  serial ${serial} (the current certificate of "worker-2")`,
    ]);
    execFileSync('openssl', ['crl', '-in', crl(), '-CAfile', path.join(certs, 'ca.crt'), '-verify', '-noout'], { stdio: 'pipe' });
    expect(opensslVerdict(path.join(certs, 'worker-2.crt'))).to.equal('certificate revoked');
    expect(opensslVerdict(path.join(certs, 'worker-1.crt'))).to.equal('OK');

    // Nothing restarts it: the manager cuts the connection, and the redial is refused for good.
    const { code } = await worker2.exited;
    expect(code).to.equal(1);
    expect(worker2.stderr.at(-1)).to.equal(`troupe: TROUPE_E_REVOKED: 127.0.0.1:${port} refused us: the certificate of "worker-2" (serial ${serial}) is revoked`);
    expect(managerLog('disconnecting a node whose certificate was revoked').map((l) => [l.peer, l.serial])).to.deep.equal([['worker-2', serial]]);
    expect(managerLog('revocation list loaded').map((l) => [l.number, l.revoked])).to.deep.equal([[1, 1]]);

    const again = await CliProcess.run(['worker', '--certs', certs, '--name', 'worker-2', '--join', `127.0.0.1:${port}`], { cwd: dir });
    expect(again.code).to.equal(1);
    expect(again.stderr.split('\n').at(-1)).to.equal(`troupe: TROUPE_E_REVOKED: 127.0.0.1:${port} refused us: the certificate of "worker-2" (serial ${serial}) is revoked`);

    const run = await troupe(['run', `127.0.0.1:${port}`, '--certs', certs, '--', 'echo $TROUPE_WORKER']);
    expect([run.code, run.stdout]).to.deep.equal([0, 'worker-1']);
  });

  it('a certificate replaced with --add --force: the old one is revoked (its node cut off) while the new one joins', async () => {
    const old = workers.get('worker-1')!;
    const oldSerial = serialOf(path.join(certs, 'worker-1.crt'));
    const add = await troupe(['generate-tls-certificates', '--out', certs, '--add', 'worker-1', '--role', 'worker', '--force']);
    expect(add.code, add.stderr).to.equal(0);
    expect(add.stdout).to.contain(`The certificate it replaced (serial ${oldSerial}) is still accepted; once the node runs with the new one, shut the old one out: troupe revoke worker-1 --replaced --certs ${certs}`);
    const newSerial = serialOf(path.join(certs, 'worker-1.crt'));
    expect(newSerial).to.not.equal(oldSerial);

    const revoke = await troupe(['revoke', 'worker-1', '--replaced', '--certs', certs]);
    expect(revoke.code, revoke.stderr).to.equal(0);
    expect(revoke.stdout.split('\n').slice(0, 2)).to.deep.equal([
      `Revoked 1 certificate in ${crl()} (list number 2, 2 revoked in all):`,
      `  serial ${oldSerial} (a replaced certificate of "worker-1")`,
    ]);
    // The running worker-1 still holds the old certificate: it is cut off and refused.
    expect((await old.exited).code).to.equal(1);
    expect(old.stderr.at(-1)).to.contain(`TROUPE_E_REVOKED: 127.0.0.1:${port} refused us: the certificate of "worker-1" (serial ${oldSerial}) is revoked`);
    expect(opensslVerdict(path.join(certs, 'worker-1.crt'))).to.equal('OK');

    await startWorker('worker-1').waitForLine(/^joined the cluster/, 'stdout', 60_000);
    const run = await troupe(['run', `127.0.0.1:${port}`, '--certs', certs, '--wait', '60', '--', 'echo $TROUPE_WORKER']);
    expect([run.code, run.stdout]).to.deep.equal([0, 'worker-1']);

    // Revoking what is revoked changes nothing.
    const twice = await troupe(['revoke', 'worker-2', '--certs', certs]);
    expect(twice.stdout).to.equal(`Already revoked:\n  serial ${serialOf(path.join(certs, 'worker-2.crt'))} (the current certificate of "worker-2")\nNothing new to revoke; ${crl()} is unchanged.`);
  });

  it('a list that does not verify: refused with an error in the log, the last good list stays in force; at start it stops the manager', async () => {
    const good = fs.readFileSync(crl(), 'utf8');
    // Signed by another CA of the same name: it parses, but its signature is not our CA's.
    const forged = buildRevocationList(parseAuthority(createAuthority()), { number: 9, thisUpdate: new Date(), entries: [] });
    const from = manager.stderr.length;
    fs.writeFileSync(crl(), forged);
    await manager.waitForLine(/"msg":"revocation list refused"/, 'stderr', 30_000, from);
    const [refused] = managerLog('revocation list refused');
    expect(refused).to.include({ code: 'TROUPE_E_CRL_INVALID', level: 50 });
    expect(refused!.reason).to.equal(`${crl()}: its signature does not verify against the cluster CA (signed by another key, or altered); the last good list (number 2, 2 revoked) stays in force`);
    const again = await CliProcess.run(['worker', '--certs', certs, '--name', 'worker-2', '--join', `127.0.0.1:${port}`], { cwd: dir });
    expect([again.code, again.stderr.split('\n').at(-1)]).to.deep.equal([1, `troupe: TROUPE_E_REVOKED: 127.0.0.1:${port} refused us: the certificate of "worker-2" (serial ${serialOf(path.join(certs, 'worker-2.crt'))}) is revoked`]);

    const second = await CliProcess.run(['manager', '--no-repl', '--certs', certs, '--host', '127.0.0.1', '--port', '0'], { cwd: dir });
    expect(second.code).to.equal(1);
    expect(second.stderr).to.equal(`troupe: TROUPE_E_CRL_INVALID: ${crl()}: its signature does not verify against the cluster CA (signed by another key, or altered)`);
    fs.writeFileSync(crl(), good);
  });
});
