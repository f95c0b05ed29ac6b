/**
 * The task journal through kill -9 (real processes: the CLI's manager and workers, real bash, a
 * real SQLite file on disk): finished tasks listed again with their results and their output
 * (`troupe logs`), queued ones run in order, running ones re-adopted; the journal survives kills
 * in the middle of a flood of tasks; retention; a corrupt journal; a full disk; `troupe logs
 * --follow`; the audit trail by certificate names, refused to a worker.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { ActorRef } from '../../../protocols/actor-ref.js';
import type { TaskRecord } from '../../../protocols/tasks.js';
import { CliProcess, killAllCli } from '../../fixtures/cli-process.js';
import { testPki } from '../../fixtures/pki.js';
import { RawPeer } from '../../fixtures/raw-peer.js';
import { TaskCluster } from '../../fixtures/task-cluster.js';

const FINISHED = new Set(['succeeded', 'failed', 'timed-out', 'cancelled', 'lost']);

describe('the task journal (real processes, real disk)', function () {
  this.timeout(90_000);
  let dir: string;
  let cluster: TaskCluster | undefined;
  const mounts: string[] = [];

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-journal-'));
  });
  afterEach(async () => {
    await cluster?.stop();
    cluster = undefined;
    await killAllCli();
    for (const m of mounts.splice(0)) execFileSync('umount', ['-l', m]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const stateArgs = (state: string, ...more: string[]) => ['--state-dir', state, '--restore-grace', '3', ...more];
  const client = (args: string[]) => CliProcess.run([...args, `127.0.0.1:${cluster!.port}`, '--certs', testPki().dir, '--name', 'client-1']);
  /** kill -9, start again on the same port and state dir; resolves once the test's client is back. */
  async function restart(c: TaskCluster): Promise<void> {
    const back = new Promise((resolve) => c.client.once('connected', resolve));
    c.manager.child.kill('SIGKILL');
    await c.manager.exited;
    await c.startManager(c.port);
    await back;
  }
  /** Every task the manager lists, once its table has them all finished (polled: the manager's own pace). */
  async function allFinished(c: TaskCluster, count: number): Promise<TaskRecord[]> {
    for (;;) {
      const tasks = await c.tasks.list('tasks').catch(() => []);
      if (tasks.length >= count && tasks.every((t) => FINISHED.has(t.status))) return tasks;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it('kill -9 with tasks finished, running and queued: after a restart on the same state dir, the finished listed with exit codes and output, the queued run in order, the running re-adopted, nothing twice', async () => {
    const state = path.join(dir, 'state');
    const gate = path.join(dir, 'gate');
    cluster = await TaskCluster.start([{ name: 'worker-1', slots: 1 }], { managerArgs: stateArgs(state) });
    const a = await cluster.run('echo a-out; echo a-err >&2; exit 3');
    expect(a.task).to.include({ status: 'failed', exitCode: 3 });
    const [b] = await cluster.tasks.submit({ command: `echo b1; while [ ! -e ${gate} ]; do sleep 0.05; done; echo b2` });
    await cluster.outputLine(b!.id, /^b1$/);
    const [c] = await cluster.tasks.submit({ command: 'echo c' });
    const [d] = await cluster.tasks.submit({ command: 'echo d' });
    expect([c!.status, d!.status]).to.deep.equal(['pending', 'pending']);

    await restart(cluster);
    await cluster.waitForWorkers(['worker-1']);
    fs.writeFileSync(gate, '');
    const tasks = await allFinished(cluster, 4);
    expect(tasks.map((t) => t.id)).to.deep.equal([a.task.id, b!.id, c!.id, d!.id]);
    const byId = new Map(tasks.map((t) => [t.id, t]));
    expect(byId.get(a.task.id)).to.include({ status: 'failed', exitCode: 3 });
    expect(byId.get(b!.id)).to.include({ status: 'succeeded', exitCode: 0, worker: 'worker-1', attempts: 1 });
    expect(byId.get(c!.id)).to.include({ status: 'succeeded', exitCode: 0 });
    expect(byId.get(d!.id)).to.include({ status: 'succeeded', exitCode: 0 });
    expect(byId.get(c!.id)!.finishedAt!).to.be.at.most(byId.get(d!.id)!.startedAt!);
    // The submitter, still connected through the restart, has the results too.
    expect((await cluster.tasks.finished(b!.id)).status).to.equal('succeeded');

    const logsA = await client(['logs', a.task.id]);
    expect(logsA).to.include({ code: 0, stdout: 'a-out' });
    expect(logsA.stderr).to.equal('a-err');
    const logsB = await client(['logs', b!.id, '--stdout']);
    expect(logsB).to.include({ code: 0, stdout: 'b1\nb2' });
    const logsD = await client(['logs', d!.id]);
    expect(logsD).to.include({ code: 0, stdout: 'd' });
  });

  it('five kills -9 in a flood of short tasks: the journal opens each time, and every task whose submit was acknowledged is there with a final state', async () => {
    const state = path.join(dir, 'state');
    cluster = await TaskCluster.start([{ name: 'worker-1', slots: 4 }], { managerArgs: stateArgs(state) });
    const acknowledged = new Set<string>();
    let flooding = true;
    const flood = (async () => {
      while (flooding) {
        try {
          const [t] = await cluster!.tasks.submit({ command: 'true', retries: 1 });
          acknowledged.add(t!.id);
        } catch {
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    })();
    for (let kill = 0; kill < 5; kill++) {
      const before = acknowledged.size;
      // Killed once a few more submits have been acknowledged since the last start.
      while (acknowledged.size < before + 20) await new Promise((r) => setTimeout(r, 10));
      await restart(cluster);
    }
    flooding = false;
    await flood;
    await cluster.waitForWorkers(['worker-1']);
    const tasks = await allFinished(cluster, acknowledged.size);
    const ids = tasks.map((t) => t.id);
    expect(new Set(ids).size).to.equal(ids.length);
    const listed = new Set(ids);
    for (const id of acknowledged) expect(listed.has(id), `task ${id} acknowledged, not listed`).to.equal(true);
    for (const t of tasks) expect(FINISHED.has(t.status)).to.equal(true);
  });

  it('retention: with --keep-tasks 2, a restart lists the two latest finished tasks and nothing older', async () => {
    const state = path.join(dir, 'state');
    cluster = await TaskCluster.start([{ name: 'worker-1', slots: 1 }], { managerArgs: stateArgs(state, '--keep-tasks', '2') });
    const ids: string[] = [];
    for (const n of [1, 2, 3, 4]) ids.push((await cluster.run(`echo ${n}`)).task.id);
    await restart(cluster);
    const tasks = await cluster.tasks.list('tasks');
    expect(tasks.map((t) => t.id)).to.deep.equal(ids.slice(2));
    expect((await client(['logs', ids[3]!])).stdout).to.equal('4');
    const gone = await client(['logs', ids[0]!]);
    expect(gone.code).to.equal(1);
    expect(gone.stderr).to.include('TROUPE_E_NO_SUCH_TASK');
  });

  it('a corrupt journal stops the manager with TROUPE_E_JOURNAL naming the file, and the file is left as it was', async () => {
    const state = path.join(dir, 'state');
    fs.mkdirSync(state);
    const file = path.join(state, 'journal.db');
    const garbage = Buffer.alloc(8192, 0x5a);
    fs.writeFileSync(file, garbage);
    const run = await CliProcess.run(['manager', '--no-repl', '--certs', testPki().dir, '--host', '127.0.0.1', '--port', '0', '--state-dir', state]);
    expect(run.code).to.equal(1);
    expect(run.stderr).to.include('TROUPE_E_JOURNAL');
    expect(run.stderr).to.include(file);
    expect(fs.readFileSync(file).equals(garbage)).to.equal(true);
  });

  it('a state dir on a full disk (a small tmpfs): submits fail with TROUPE_E_JOURNAL_WRITE, and every acknowledged task survives', async () => {
    const mnt = path.join(dir, 'tmpfs');
    fs.mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mnt]);
    mounts.push(mnt);
    const state = path.join(mnt, 'state');
    cluster = await TaskCluster.start([{ name: 'worker-1', slots: 2 }], { managerArgs: stateArgs(state) });
    const before = (await cluster.run('echo kept')).task;
    // Fill the disk, then submit (with long commands: new pages) until the journal refuses.
    try {
      execFileSync('dd', ['if=/dev/zero', `of=${path.join(mnt, 'filler')}`, 'bs=64k'], { stdio: 'ignore' });
    } catch {
      // dd ends with ENOSPC: full.
    }
    let refused: { code?: string; message: string } | undefined;
    const acknowledged: string[] = [before.id];
    for (let i = 0; i < 200 && !refused; i++) {
      try {
        const [t] = await cluster.tasks.submit({ command: `true ${'x'.repeat(60_000)} ${i}` });
        acknowledged.push(t!.id);
      } catch (err) {
        refused = err as { code?: string; message: string };
      }
    }
    expect(refused?.code).to.equal('TROUPE_E_JOURNAL_WRITE');
    expect(refused?.message).to.include(path.join(state, 'journal.db'));
    fs.rmSync(path.join(mnt, 'filler'));
    await allFinished(cluster, acknowledged.length);
    await restart(cluster);
    const listed = new Set((await cluster.tasks.list('tasks')).map((t) => t.id));
    for (const id of acknowledged) expect(listed.has(id), `task ${id} acknowledged, not listed`).to.equal(true);
  });

  it('troupe logs --follow on a running task prints the output so far, then follows it to the end', async () => {
    const gate = path.join(dir, 'gate');
    cluster = await TaskCluster.start([{ name: 'worker-1', slots: 1 }], { managerArgs: stateArgs(path.join(dir, 'state')) });
    const [t] = await cluster.tasks.submit({ command: `echo first; while [ ! -e ${gate} ]; do sleep 0.05; done; echo second; echo err >&2` });
    await cluster.outputLine(t!.id, /^first$/);
    const follow = CliProcess.start(['logs', t!.id, `127.0.0.1:${cluster.port}`, '--certs', testPki().dir, '--name', 'client-1', '--follow']);
    await follow.waitForLine(/^first$/);
    expect(follow.stdout).to.deep.equal(['first']);
    fs.writeFileSync(gate, '');
    const { code } = await follow.exited;
    expect(code).to.equal(0);
    expect(follow.stdout).to.deep.equal(['first', 'second']);
    expect(follow.stderr).to.deep.equal(['err']);
    const tail = await client(['logs', t!.id, '--stdout', '--tail', '1']);
    expect(tail.stdout).to.equal('second');
  });

  it('the audit trail lists a submit, a cancel and an attach by their certificate names, from their addresses; a worker asking is refused (TROUPE_E_FORBIDDEN)', async () => {
    cluster = await TaskCluster.start([{ name: 'worker-1', slots: 1 }], { managerArgs: stateArgs(path.join(dir, 'state')) });
    const [t] = await cluster.tasks.submit({ command: 'sleep 30' });
    await cluster.tasks.cancel(t!.id);
    const attach = await CliProcess.run(['attach', `127.0.0.1:${cluster.port}`, '--certs', testPki().dir, '--name', 'client-1'], { input: ':quit\n' });
    expect(attach.code).to.equal(0);
    const audit = await client(['audit', '--json', '--by', 'client-1']);
    expect(audit.code).to.equal(0);
    const entries = JSON.parse(audit.stdout) as { action: string; cert: string; node: string; address: string | null; task: string | null; command: string | null }[];
    expect(entries.map((e) => [e.action, e.cert, e.task, e.command])).to.deep.equal([
      ['submit', 'client-1', null, 'sleep 30'],
      ['cancel', 'client-1', t!.id, null],
      ['attach', 'client-1', null, null],
    ]);
    expect(entries[2]!.node).to.match(/^client-1~/);
    expect(entries[2]!.node).to.not.equal(cluster.client.node);
    for (const e of entries.slice(0, 2)) expect(e.node).to.equal(cluster.client.node);
    for (const e of entries) {
      expect(e.address).to.match(/^(::ffff:)?127\.0\.0\.1:\d+$/);
    }
    expect(JSON.parse((await client(['audit', '--json', '--by', 'someone-else'])).stdout)).to.deep.equal([]);

    const id = testPki().identity('worker-3');
    const rogue = await RawPeer.join(cluster.port, { ca: id.ca, cert: id.cert, key: id.key, name: 'worker-3', role: 'worker' });
    try {
      await rogue.envelope((e) => e.t === 'welcome');
      rogue.sendEnvelopes([{ t: 'send', to: new ActorRef('manager', 'controller'), msg: { type: 'auditQuery', replyTo: new ActorRef('worker-3', 'spy') } }]);
      const refused = await rogue.envelope((e) => e.t === 'error');
      expect(refused.code).to.equal('TROUPE_E_FORBIDDEN');
    } finally {
      rogue.close();
    }
  });
});
