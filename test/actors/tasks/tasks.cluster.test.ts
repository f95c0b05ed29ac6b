/**
 * Task execution end to end: a manager and workers as real `troupe` processes running real bash,
 * a client node in this process submitting through the Controller over mTLS.
 */
import fs from 'node:fs';
import { expect } from 'chai';
import { ClusterSystem } from '../../../src/cluster/cluster-system.js';
import { TaskClient } from '../../../actors/tasks/task-client.js';
import { silentLogger } from '../../../src/log.js';
import { CLIENT_TASK_MESSAGES, type TaskRecord } from '../../../protocols/tasks.js';
import { testPki } from '../../fixtures/pki.js';
import { isGone, until } from '../../fixtures/processes.js';
import { alive, memoryOf, TaskCluster } from '../../fixtures/task-cluster.js';

async function expectTaskError(promise: Promise<unknown>, code: string): Promise<Error> {
  const err = await promise.then(
    () => expect.fail(`expected ${code}`),
    (e: Error & { code?: string }) => e,
  );
  expect((err as { code?: string }).code, err.message).to.equal(code);
  return err;
}

describe('tasks on a cluster of real processes', function () {
  this.timeout(60_000);
  let cluster: TaskCluster;

  before(async () => {
    cluster = await TaskCluster.start([
      { name: 'worker-1', slots: 2, tags: ['gpu', 'linux'] },
      { name: 'worker-2', slots: 1, tags: ['cpu'] },
    ]);
  });
  after(async () => {
    await cluster?.stop();
  });

  it('streams stdout and stderr separately, in order, then the exit code', async () => {
    const { task, stdout, stderr } = await cluster.run('echo one; echo two >&2; echo three; printf four >&2; exit 3');
    expect(task).to.include({ status: 'failed', exitCode: 3, signal: null, stdoutBytes: 10, stderrBytes: 8 });
    expect(stdout).to.equal('one\nthree\n');
    expect(stderr).to.equal('two\nfour');
    const seqs = cluster.output.get(task.id)!.map((c) => c.seq);
    expect(seqs).to.deep.equal([...seqs].sort((a, b) => a - b));
  });

  it('a command ending by a signal: failed, with the signal and no exit code', async () => {
    const { task } = await cluster.run('kill -TERM $$');
    expect(task).to.include({ status: 'failed', exitCode: null, signal: 'SIGTERM' });
    const ok = await cluster.run('true');
    expect(ok.task).to.include({ status: 'succeeded', exitCode: 0 });
  });

  it('runs in a fresh temporary directory with the given env, removed afterwards', async () => {
    const { task, stdout } = await cluster.run('pwd; ls -A | wc -l; echo "$GREETING"; echo "$TROUPE_WORKER $TROUPE_TASK_ID"', { env: { GREETING: 'hello there', TROUPE_WORKER: 'spoofed' } });
    expect(task.status).to.equal('succeeded');
    const [dir, entries, greeting, where] = stdout.trim().split('\n');
    expect(where).to.equal(`${task.worker} ${task.id}`);
    expect(dir).to.match(/\/troupe-task-[^/]+$/);
    expect(entries!.trim()).to.equal('0');
    expect(greeting).to.equal('hello there');
    expect(fs.existsSync(dir!)).to.equal(false);
  });

  it('a timeout kills the whole process group, grandchildren included, and removes the temp dir', async () => {
    const { task, stdout } = await cluster.run('pwd; sleep 100 & echo $!; bash -c "sleep 100" & echo $!; wait', { timeoutMs: 500 });
    expect(task.status).to.equal('timed-out');
    const [dir, ...pids] = stdout.trim().split('\n');
    expect(pids).to.have.length(2);
    // The group was killed; a grandchild's end may trail the result by a moment.
    for (const pid of pids) await until(() => !alive(Number(pid)), `grandchild ${pid} to be killed`);
    expect(fs.existsSync(dir!)).to.equal(false);
  });

  it('cancel kills the process group and ends the task cancelled', async () => {
    const [task] = await cluster.tasks.submit({ command: 'pwd; sleep 100 & echo $!; wait' });
    const pidLine = await cluster.outputLine(task!.id, /^\d+$/);
    const cancelled = await cluster.tasks.cancel(task!.id);
    expect(cancelled.id).to.equal(task!.id);
    const done = await cluster.tasks.finished(task!.id);
    expect(done.status).to.equal('cancelled');
    await until(() => !alive(Number(pidLine)), 'the sleep to be killed with its group');
    expect(fs.existsSync(cluster.text(task!.id, 'stdout').split('\n')[0]!)).to.equal(false);
    await expectTaskError(cluster.tasks.cancel(task!.id), 'TROUPE_E_TASK_FINISHED');
  });

  it('routes by selector: tag, name, platform; none matching is refused at once', async () => {
    expect((await cluster.run('true', { selector: 'tag=gpu' })).task.worker).to.equal('worker-1');
    expect((await cluster.run('true', { selector: 'tag=cpu' })).task.worker).to.equal('worker-2');
    expect((await cluster.run('true', { selector: 'name=worker-2' })).task.worker).to.equal('worker-2');
    expect((await cluster.run('true', { selector: `platform=${process.platform},tag=linux` })).task.worker).to.equal('worker-1');
    const err = await expectTaskError(cluster.tasks.submit({ command: 'true', selector: 'tag=tpu' }), 'TROUPE_E_NO_MATCHING_WORKER');
    expect(err.message).to.equal('no worker matches tag=tpu (connected: worker-1, worker-2)');
  });

  it('queues when every slot is busy, then drains in submission order', async () => {
    const gate = `${testPki().dir}/gate-${Date.now()}`;
    // Bounded (about 30 s), so that a failed test leaves no endless loop behind.
    const wait = `for i in $(seq 3000); do [ -e ${gate} ] && break; sleep 0.01; done`;
    const submitted: TaskRecord[] = [];
    for (let i = 0; i < 3; i++) submitted.push(...(await cluster.tasks.submit({ command: `${wait}; echo ${i}`, selector: 'name=worker-2' })));
    const [a, b, c] = submitted.map((t) => t.id) as [string, string, string];
    await cluster.update(a, (t) => t.status === 'running');
    const pending = (await cluster.tasks.ask('tasksPending')).tasks!.map((t) => t.id);
    expect(pending).to.deep.equal([b, c]);
    const running = (await cluster.tasks.ask('tasksRunning')).tasks!.map((t) => t.id);
    expect(running).to.include(a);
    const executors = (await cluster.tasks.ask('executors')).executors!;
    expect(executors.find((e) => e.worker === 'worker-2')).to.deep.include({ slots: 1, busy: 1, idle: 0, running: [a] });
    fs.writeFileSync(gate, '');
    const done = await Promise.all([a, b, c].map((id) => cluster.tasks.finished(id)));
    expect(done.map((t) => t.status)).to.deep.equal(['succeeded', 'succeeded', 'succeeded']);
    expect(done[0]!.startedAt! <= done[1]!.startedAt! && done[1]!.startedAt! <= done[2]!.startedAt!).to.equal(true);
    expect(done.map((t) => cluster.text(t.id, 'stdout'))).to.deep.equal(['0\n', '1\n', '2\n']);
    fs.rmSync(gate);
  });

  it('queued tasks of several selectors: a freed slot takes the earliest task it matches; a task waits only behind those wanting its busy workers; a cancelled one never runs', async () => {
    const gate = (n: number) => `${testPki().dir}/gate-${n}-${Date.now()}`;
    const [gate1, gate2] = [gate(1), gate(2)];
    const wait = (g: string) => `for i in $(seq 3000); do [ -e ${g} ] && break; sleep 0.01; done`;
    const submit = async (command: string, selector?: string) => (await cluster.tasks.submit({ command, ...(selector ? { selector } : {}) }))[0]!;
    // Every slot busy: worker-1 (2 slots, gpu) until gate1, worker-2 (1 slot, cpu) until gate2.
    const blockers = [await submit(wait(gate1), 'name=worker-1'), await submit(wait(gate1), 'name=worker-1'), await submit(wait(gate2), 'name=worker-2')];
    for (const b of blockers) await cluster.update(b.id, (t) => t.status === 'running');
    const g1 = await submit('echo g1', 'tag=gpu');
    const any = await submit(`${wait(gate2)}; echo any`);
    const c1 = await submit('echo c1', 'tag=cpu');
    const dropped = await submit('echo dropped', 'tag=gpu');
    const g2 = await submit('echo g2', 'tag=gpu');
    expect((await cluster.tasks.cancel(dropped.id)).status).to.equal('cancelled');
    expect((await cluster.tasks.ask('tasksPending')).tasks!.map((t) => t.id)).to.deep.equal([g1.id, any.id, c1.id, g2.id]);
    // worker-2 frees up: g1 cannot use it, so `any` (next in order) takes it, then c1.
    fs.writeFileSync(gate2, '');
    const [anyDone, c1Done] = await Promise.all([cluster.tasks.finished(any.id), cluster.tasks.finished(c1.id)]);
    expect([anyDone.worker, c1Done.worker, anyDone.status, c1Done.status]).to.deep.equal(['worker-2', 'worker-2', 'succeeded', 'succeeded']);
    expect(anyDone.startedAt! <= c1Done.startedAt!).to.equal(true);
    expect((await cluster.tasks.ask('tasksPending')).tasks!.map((t) => t.id)).to.deep.equal([g1.id, g2.id]);
    fs.writeFileSync(gate1, '');
    const [g1Done, g2Done] = await Promise.all([cluster.tasks.finished(g1.id), cluster.tasks.finished(g2.id)]);
    expect([g1Done.worker, g2Done.worker, g1Done.status, g2Done.status]).to.deep.equal(['worker-1', 'worker-1', 'succeeded', 'succeeded']);
    expect(g1Done.startedAt! <= g2Done.startedAt!).to.equal(true);
    expect(cluster.text(dropped.id, 'stdout')).to.equal('');
    expect((await cluster.tasks.ask('isFinished', dropped.id)).task).to.include({ status: 'cancelled', worker: null });
    await Promise.all(blockers.map((b) => cluster.tasks.finished(b.id)));
    fs.rmSync(gate1);
    fs.rmSync(gate2);
  });

  it('broadcast: one task per matching worker, each result its own', async () => {
    const tasks = await cluster.tasks.submit({ command: 'echo from-$RANDOM', broadcast: true });
    expect(tasks.map((t) => t.selector).sort()).to.deep.equal(['name=worker-1', 'name=worker-2']);
    expect(new Set(tasks.map((t) => t.broadcast)).size).to.equal(1);
    const done = await Promise.all(tasks.map((t) => cluster.tasks.finished(t.id)));
    expect(done.map((t) => [t.worker, t.status]).sort()).to.deep.equal([
      ['worker-1', 'succeeded'],
      ['worker-2', 'succeeded'],
    ]);
  });

  it('answers each query: tasks, tasksFinished, isFinished, executors, resourceUsage', async () => {
    const { task } = await cluster.run('echo done');
    // A worker reports usage when the pool says hello, before anything it runs: once a task has
    // finished on each worker, each one's report is in.
    await Promise.all((await cluster.tasks.submit({ command: 'true', broadcast: true })).map((t) => cluster.tasks.finished(t.id)));
    const all = (await cluster.tasks.ask('tasks')).tasks!;
    expect(all.map((t) => t.id)).to.include(task.id);
    const finished = (await cluster.tasks.ask('tasksFinished')).tasks!;
    expect(finished.find((t) => t.id === task.id)).to.deep.include({ status: 'succeeded', worker: task.worker });
    const is = await cluster.tasks.ask('isFinished', task.id);
    expect(is).to.deep.include({ finished: true });
    expect(is.task!.status).to.equal('succeeded');
    const executors = (await cluster.tasks.ask('executors')).executors!;
    expect(executors.map((e) => [e.worker, e.slots, e.tags])).to.deep.equal([
      ['worker-1', 2, ['gpu', 'linux']],
      ['worker-2', 1, ['cpu']],
    ]);
    const usage = (await cluster.tasks.ask('resourceUsage')).usage!;
    expect(usage.map((u) => u.worker)).to.deep.equal(['worker-1', 'worker-2']);
    for (const u of usage) {
      expect(u.memoryTotalBytes).to.be.greaterThan(0);
      expect(u.cpuPercent).to.be.within(0, 100);
      expect(u.slots).to.equal(u.worker === 'worker-1' ? 2 : 1);
    }
    await expectTaskError(cluster.tasks.ask('isFinished', 'nope-1'), 'TROUPE_E_NO_SUCH_TASK');
  });

  it('bad input: a clear error with a stable code, and the cluster keeps serving', async () => {
    expect((await expectTaskError(cluster.tasks.submit({ command: '  ' }), 'TROUPE_E_INVALID_TASK')).message).to.match(/^command: empty/);
    expect((await expectTaskError(cluster.tasks.submit({ command: 'x'.repeat(64 * 1024 + 1) }), 'TROUPE_E_INVALID_TASK')).message).to.equal('command: 65537 bytes, over the limit of 65536');
    expect((await expectTaskError(cluster.tasks.submit({ command: 'true', selector: 'colour=red' }), 'TROUPE_E_BAD_SELECTOR')).message).to.contain('unknown key "colour"');
    expect((await expectTaskError(cluster.tasks.submit({ command: 'true', timeoutMs: -5 }), 'TROUPE_E_INVALID_TASK')).message).to.contain('timeoutMs: expected milliseconds ≥ 0');
    expect((await expectTaskError(cluster.tasks.submit({ command: 'true', env: { 'BAD NAME': 'x' } }), 'TROUPE_E_INVALID_TASK')).message).to.contain('env: "BAD NAME" is not a variable name');
    await expectTaskError(cluster.tasks.cancel('no-such-1'), 'TROUPE_E_NO_SUCH_TASK');
    await expectTaskError(cluster.tasks.submit({ command: 'true', selector: 'name=worker-3' }), 'TROUPE_E_NO_MATCHING_WORKER');
    expect((await cluster.run('echo still here')).stdout).to.equal('still here\n');
  });

  it('a worker certificate may not submit: TROUPE_E_FORBIDDEN, and the manager logs the attempt', async () => {
    const intruder = await ClusterSystem.start({ identity: testPki().identity('worker-3'), join: { host: '127.0.0.1', port: cluster.port }, messages: CLIENT_TASK_MESSAGES, log: silentLogger() });
    try {
      await intruder.ready();
      const client = TaskClient.start(intruder);
      await expectTaskError(client.submit({ command: 'id' }), 'TROUPE_E_FORBIDDEN');
      await expectTaskError(client.ask('tasks'), 'TROUPE_E_FORBIDDEN');
      await cluster.manager.waitForLine(/"peer":"worker-3","role":"worker","type":"submit","msg":"forbidden message refused"/, 'stderr');
    } finally {
      await intruder.shutdown();
    }
  });
});

describe('tasks when workers and managers fail (real processes)', function () {
  this.timeout(90_000);
  let cluster: TaskCluster | undefined;

  afterEach(async () => {
    await cluster?.stop();
    cluster = undefined;
  });

  it('a worker killed mid-task: its task is lost within a second; with retries it runs again elsewhere', async () => {
    cluster = await TaskCluster.start([{ name: 'worker-1', slots: 1 }, { name: 'worker-2', slots: 1, tags: ['pool'] }, { name: 'worker-3', slots: 1, tags: ['pool'] }]);
    const [once] = await cluster.tasks.submit({ command: 'echo $$; echo started; sleep 100', selector: 'name=worker-1' });
    await cluster.outputLine(once!.id, /^started$/);
    const bash = Number(cluster.text(once!.id, 'stdout').split('\n')[0]);
    cluster.orphanGroups.add(bash);
    const killedAt = Date.now();
    cluster.workers.get('worker-1')!.child.kill('SIGKILL');
    const lost = await cluster.tasks.finished(once!.id);
    expect(Date.now() - killedAt).to.be.below(1000);
    expect(lost).to.include({ status: 'lost', error: 'worker worker-1 its node went down', attempts: 1 });
    // The dead worker's spawner ends the command rather than leave it running, orphaned.
    await until(() => isGone(bash), "the task's bash to be killed by the dead worker's spawner");

    // Both pool workers idle: the tie goes to worker-2 by name.
    const [moving] = await cluster.tasks.submit({ command: 'echo "attempt on $TROUPE_MARK"; echo $$ >&2; sleep 100', env: { TROUPE_MARK: 'x' }, selector: 'tag=pool', retries: 1 });
    await cluster.outputLine(moving!.id, /^attempt on x$/);
    cluster.orphanGroups.add(Number((await cluster.stderrWhere(moving!.id, (err) => err.endsWith('\n'))).trim()));
    expect(cluster.tasks.tasks.get(moving!.id)!.worker).to.equal('worker-2');
    const requeued = cluster.update(moving!.id, (t) => t.status === 'pending' && t.attempts === 1);
    const rerun = cluster.update(moving!.id, (t) => t.status === 'running' && t.attempts === 2);
    cluster.workers.get('worker-2')!.child.kill('SIGKILL');
    expect((await requeued).error).to.equal('worker worker-2 its node went down');
    expect((await rerun).worker).to.equal('worker-3');
    await cluster.stdoutWhere(moving!.id, (out) => out === 'attempt on x\nattempt on x\n');
    await cluster.tasks.cancel(moving!.id);
    const end = await cluster.tasks.finished(moving!.id);
    expect(end).to.include({ status: 'cancelled', worker: 'worker-3', attempts: 2 });
  });

  it('a worker stopped (SIGTERM) mid-task: the command is killed and no directory is left behind', async () => {
    cluster = await TaskCluster.start([{ name: 'worker-1', slots: 1 }]);
    // made-here first: the test looks for it once the two lines have arrived.
    const [task] = await cluster.tasks.submit({ command: 'touch made-here; echo $$; pwd; sleep 100' });
    const [bash, cwd] = (await cluster.stdoutWhere(task!.id, (out) => out.split('\n').length === 3)).split('\n') as [string, string];
    expect(fs.existsSync(`${cwd}/made-here`)).to.equal(true);
    const worker = cluster.workers.get('worker-1')!;
    worker.child.kill('SIGTERM');
    await worker.exited;
    await until(() => isGone(Number(bash)), "the task's bash to be killed");
    expect(fs.existsSync(cwd)).to.equal(false);
    expect(fs.readdirSync(cluster.tmp)).to.deep.equal([]);
  });

  it('a manager restarted mid-task: the worker reports the task, and its result and output still arrive', async () => {
    cluster = await TaskCluster.start([{ name: 'worker-1', slots: 1 }]);
    const gate = `${testPki().dir}/restart-gate-${Date.now()}`;
    const [task] = await cluster.tasks.submit({ command: `echo before; for i in $(seq 3000); do [ -e ${gate} ] && break; sleep 0.01; done; echo after; exit 7` });
    await cluster.outputLine(task!.id, /^before$/);
    const port = cluster.port;
    // The new Controller adopts the task from the worker's report and tells its subscriber.
    const readopted = new Promise<TaskRecord>((resolve) => cluster!.tasks.on('update', (t) => t.id === task!.id && resolve(t)));
    cluster.manager.child.kill('SIGKILL');
    await cluster.manager.exited;
    await cluster.startManager(port);
    // Both the worker and this client rejoin on their own; the new Controller adopts the task.
    const re = await readopted;
    expect(re, JSON.stringify(re)).to.include({ status: 'running', worker: 'worker-1', command: task!.command });
    const adopted = (await cluster.tasks.ask('tasksRunning')).tasks!;
    expect(adopted.map((t) => [t.id, t.command, t.worker])).to.deep.equal([[task!.id, task!.command, 'worker-1']]);
    fs.writeFileSync(gate, '');
    const done = await cluster.tasks.finished(task!.id);
    expect(done).to.include({ status: 'failed', exitCode: 7, worker: 'worker-1' });
    expect(cluster.text(task!.id, 'stdout')).to.equal('before\nafter\n');
    const is = await cluster.tasks.ask('isFinished', task!.id);
    expect(is.finished).to.equal(true);
    fs.rmSync(gate);
  });
});

describe('a command printing 1 GB (real processes)', function () {
  this.timeout(120_000);
  let cluster: TaskCluster | undefined;

  after(async () => {
    await cluster?.stop();
  });

  it('streams through worker and manager to the subscriber with bounded memory on each', async () => {
    cluster = await TaskCluster.start([{ name: 'worker-1', slots: 1 }]);
    cluster.keepOutput = false;
    const workerPid = cluster.workers.get('worker-1')!.child.pid!;
    const managerPid = cluster.manager.child.pid!;
    const before = { worker: memoryOf(workerPid).rss, manager: memoryOf(managerPid).rss };
    let bytes = 0;
    let chunks = 0;
    let lastSeq = -1;
    let ordered = true;
    cluster.tasks.on('output', (chunk) => {
      bytes += chunk.data.byteLength;
      chunks += 1;
      if (chunk.seq <= lastSeq) ordered = false;
      lastSeq = chunk.seq;
    });
    const [task] = await cluster.tasks.submit({ command: 'yes | head -c 1000000000' });
    const done = await cluster.tasks.finished(task!.id);
    expect(done).to.include({ status: 'succeeded', stdoutBytes: 1_000_000_000, stderrBytes: 0 });
    expect(bytes).to.equal(1_000_000_000);
    expect(ordered).to.equal(true);
    const growth = { worker: memoryOf(workerPid).peak - before.worker, manager: memoryOf(managerPid).peak - before.manager };
    // The bound: 128 MiB of peak resident growth per process, for 1 GB through it (about 8× less
    // than the stream; the link's 4 MiB high-water mark and a paused pipe are what keep it there).
    if (process.env.TROUPE_TEST_VERBOSE) console.log(`peak resident growth for 1 GB: worker ${growth.worker} B, manager ${growth.manager} B, ${chunks} chunks`);
    const BOUND = 128 * 1024 * 1024;
    expect(growth.worker, `worker grew by ${growth.worker} bytes over ${chunks} chunks`).to.be.below(BOUND);
    expect(growth.manager, `manager grew by ${growth.manager} bytes`).to.be.below(BOUND);
  });
});
