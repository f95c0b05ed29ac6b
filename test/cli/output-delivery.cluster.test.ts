/**
 * `troupe run`'s output arrives whole, or the run says it did not: against a real manager and worker
 * (processes of the CLI, real bash, mTLS on loopback), with a real pipe to a slow reader, and with
 * the manager killed (SIGKILL) and restarted on the same port while the task runs on.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { addCertificate } from '../../certs/index.js';
import { BIN, CliProcess, killAllCli } from '../fixtures/cli-process.js';
import { testPki } from '../fixtures/pki.js';
import { memoryOf, TaskCluster } from '../fixtures/task-cluster.js';

const MiB = 1024 * 1024;

describe('troupe run delivers every byte (real processes)', function () {
  this.timeout(120_000);
  let cluster: TaskCluster | undefined;
  let dir: string;
  let certs: string;
  const children: ReturnType<typeof spawn>[] = [];

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-output-'));
    // The run's own certificates: client-2 only, so it picks it without --name (client-1 is the fixture's).
    certs = path.join(dir, 'certs');
    fs.cpSync(testPki().dir, certs, { recursive: true });
    for (const file of ['client-1.crt', 'client-1.key']) fs.rmSync(path.join(certs, file));
    addCertificate({ out: certs, name: 'client-2', role: 'client' });
  });
  afterEach(async () => {
    for (const child of children.splice(0)) child.kill('SIGKILL');
    await killAllCli();
    await cluster?.stop();
    cluster = undefined;
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('into a slow pipe: the command is paused while the reader lags, every byte arrives, exit 0, the client\'s memory bounded', async () => {
    cluster = await TaskCluster.start([{ name: 'worker-1', slots: 1 }]);
    const progress = path.join(dir, 'progress');
    const total = 64;
    // 64 MiB, one MiB at a time, each counted in a file once the pipe has taken it.
    const command = `for i in $(seq ${total}); do head -c ${MiB} /dev/zero; echo $i > ${progress}; done`;
    const run = spawn(process.execPath, [BIN, 'run', `127.0.0.1:${cluster.port}`, '--', command], {
      cwd: dir,
      env: { ...process.env, TROUPE_CERTS: certs, TROUPE_LOG: 'warn', NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(run);
    let stderr = '';
    run.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => run.on('close', (code) => resolve(code)));
    let peak = 0;
    const sample = () => {
      try {
        peak = Math.max(peak, memoryOf(run.pid!).peak);
      } catch {
        // exited
      }
    };
    // The slow reader: nothing read for 3 s (as `(sleep 3; wc -c)`), then all of it.
    const readAfter = async () => {
      const chunks: Buffer[] = [];
      await new Promise((r) => setTimeout(r, 3000));
      sample();
      const producedWhileUnread = fs.existsSync(progress) ? Number(fs.readFileSync(progress, 'utf8')) : 0;
      let bytes = 0;
      run.stdout!.on('data', (d: Buffer) => {
        bytes += d.length;
        if (chunks.length === 0) chunks.push(d.subarray(0, 16));
        sample();
      });
      run.stdout!.resume(); // paused on purpose below: a 'data' listener alone does not resume it
      await new Promise((r) => run.stdout!.on('end', r));
      return { bytes, producedWhileUnread, first: chunks[0] };
    };
    run.stdout!.pause();
    const [{ bytes, producedWhileUnread, first }, code] = await Promise.all([readAfter(), exited]);
    expect(stderr).to.equal('');
    expect(code).to.equal(0);
    expect(bytes).to.equal(total * MiB);
    expect(first).to.deep.equal(Buffer.alloc(16));
    // Paused: while nothing was read, the command got no further than what the pipes and links
    // hold (a few MiB), far from the 64 MiB it writes unpaused in 3 s even on a busy machine.
    if (process.env.TROUPE_TEST_VERBOSE) console.log(`written while unread: ${producedWhileUnread} MiB; client peak RSS ${peak} B`);
    expect(producedWhileUnread, `MiB written while the reader read nothing`).to.be.below(16);
    expect(peak, `the client's peak resident memory, bytes`).to.be.below(200 * MiB);
  });

  it('a manager killed and restarted mid-task: the output it missed is delivered, and the run exits with the command\'s status', async () => {
    cluster = await TaskCluster.start([{ name: 'worker-1', slots: 1 }]);
    const fifo = path.join(dir, `fifo-${Date.now()}`);
    expect(spawnSync('mkfifo', [fifo]).status).to.equal(0);
    const run = CliProcess.start(['run', `127.0.0.1:${cluster.port}`, '--', `echo before; cat ${fifo}; echo after; exit 3`], { cwd: dir, env: { TROUPE_CERTS: certs, TROUPE_LOG: 'error' } });
    await run.waitForLine(/^before$/);
    const port = cluster.port;
    cluster.manager.child.kill('SIGKILL');
    await cluster.manager.exited;
    // While there is no manager: the command prints the rest and ends (cat is waiting on the fifo).
    fs.writeFileSync(fifo, 'middle\n');
    await cluster.startManager(port);
    expect(await run.exited).to.deep.equal({ code: 3, signal: null });
    expect(run.stdout).to.deep.equal(['before', 'middle', 'after']);
    expect(run.stderr).to.deep.equal([]);
  });
});
