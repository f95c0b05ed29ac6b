/**
 * At-least-once, said and made safe (real processes: a manager and workers of the CLI, real bash):
 * each run of a task knows its attempt number, a result that arrives is never thrown away for a
 * rerun, and a task a restarted manager lost ends with TROUPE_E_TASK_LOST instead of being waited
 * for for ever.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { TaskRecord } from '../../../protocols/tasks.js';
import { isGone, until } from '../../fixtures/processes.js';
import { TaskCluster } from '../../fixtures/task-cluster.js';

describe('task attempts and lost tasks (real processes)', function () {
  this.timeout(90_000);
  let cluster: TaskCluster | undefined;
  let dir: string;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-attempts-'));
  });
  afterEach(async () => {
    await cluster?.stop();
    cluster = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('each run sees its attempt number as TROUPE_TASK_ATTEMPT: 1, then 2 after its worker is killed', async () => {
    cluster = await TaskCluster.start([{ name: 'worker-1', slots: 1, tags: ['pool'] }, { name: 'worker-2', slots: 1, tags: ['pool'] }]);
    const [task] = await cluster.tasks.submit({ command: 'echo "attempt $TROUPE_TASK_ATTEMPT"; echo $$ >&2; sleep 100', selector: 'tag=pool', retries: 1 });
    await cluster.outputLine(task!.id, /^attempt 1$/);
    cluster.orphanGroups.add(Number((await cluster.stderrWhere(task!.id, (err) => err.endsWith('\n'))).trim()));
    expect(cluster.tasks.tasks.get(task!.id)!.worker).to.equal('worker-1');
    cluster.workers.get('worker-1')!.child.kill('SIGKILL');
    await cluster.stdoutWhere(task!.id, (out) => out === 'attempt 1\nattempt 2\n');
    expect(cluster.tasks.tasks.get(task!.id)).to.include({ status: 'running', worker: 'worker-2', attempts: 2 });
    await cluster.tasks.cancel(task!.id);
    expect(await cluster.tasks.finished(task!.id)).to.include({ status: 'cancelled', worker: 'worker-2', attempts: 2 });
  });

  it('a result that arrives late, from a run already written off and rerun elsewhere, is taken: first result wins, the rerun is cancelled', async () => {
    cluster = await TaskCluster.start([{ name: 'worker-1', slots: 1, tags: ['pool'] }, { name: 'worker-2', slots: 1, tags: ['pool'] }]);
    const gate = path.join(dir, 'gate');
    const rerunPid = path.join(dir, 'rerun.pid');
    const command = [
      'echo "attempt $TROUPE_TASK_ATTEMPT"',
      `if [ "$TROUPE_TASK_ATTEMPT" = 1 ]; then while [ ! -e ${gate} ]; do sleep 0.02; done; exit 3; fi`,
      `echo $$ > ${rerunPid}.tmp; mv ${rerunPid}.tmp ${rerunPid}; sleep 100`,
    ].join('\n');
    const [task] = await cluster.tasks.submit({ command, selector: 'tag=pool', retries: 1 });
    await cluster.outputLine(task!.id, /^attempt 1$/);
    expect(cluster.tasks.tasks.get(task!.id)!.worker).to.equal('worker-1');

    // Frozen, worker-1 is written off (its command runs on, under its spawner) and the task reruns.
    const first = cluster.workers.get('worker-1')!;
    const rerun = cluster.update(task!.id, (t) => t.status === 'running' && t.attempts === 2);
    first.child.kill('SIGSTOP');
    let resumed = false;
    try {
      expect((await rerun).worker).to.equal('worker-2');
      await until(() => fs.existsSync(rerunPid), 'the rerun to start', 10_000);
      const pid = Number(fs.readFileSync(rerunPid, 'utf8'));
      cluster.orphanGroups.add(pid);
      // The first run ends (exit 3) while its worker is frozen; its result arrives once it thaws.
      fs.writeFileSync(gate, '');
      first.child.kill('SIGCONT');
      resumed = true;
      const end: TaskRecord = await cluster.tasks.finished(task!.id);
      expect(end).to.include({ status: 'failed', exitCode: 3, worker: 'worker-1', attempts: 2 });
      await until(() => isGone(pid), 'the rerun on worker-2 to be cancelled', 10_000);
    } finally {
      if (!resumed) first.child.kill('SIGCONT');
    }
  });

  it('a manager killed with tasks queued: after its restart, the queued ones end as lost with TROUPE_E_TASK_LOST; the running one goes on', async () => {
    cluster = await TaskCluster.start([{ name: 'worker-1', slots: 1 }]);
    const gate = path.join(dir, 'gate');
    const [running] = await cluster.tasks.submit({ command: `echo started; while [ ! -e ${gate} ]; do sleep 0.02; done; echo after`, selector: 'name=worker-1' });
    await cluster.outputLine(running!.id, /^started$/);
    const queued = [...(await cluster.tasks.submit({ command: 'echo one', selector: 'name=worker-1' })), ...(await cluster.tasks.submit({ command: 'echo two', selector: 'name=worker-1' }))];
    expect(queued.map((t) => t.status)).to.deep.equal(['pending', 'pending']);
    const port = cluster.port;
    cluster.manager.child.kill('SIGKILL');
    await cluster.manager.exited;
    await cluster.startManager(port);

    const ends = await Promise.all(queued.map((t) => cluster!.tasks.finished(t.id)));
    for (const [i, end] of ends.entries()) {
      expect(end).to.include({ id: queued[i]!.id, status: 'lost' });
      expect(end.error).to.match(/^TROUPE_E_TASK_LOST: the manager "manager" restarted and does not know task \S+ \(it was still pending; /);
    }
    // The running task was reported by its worker and adopted: it goes on, and ends as it does.
    expect(cluster.tasks.tasks.get(running!.id)).to.include({ status: 'running', worker: 'worker-1' });
    fs.writeFileSync(gate, '');
    expect(await cluster.tasks.finished(running!.id)).to.include({ status: 'succeeded', exitCode: 0 });
    expect(cluster.text(running!.id, 'stdout')).to.equal('started\nafter\n');
    // Nothing ran the lost tasks.
    expect(cluster.text(queued[0]!.id, 'stdout') + cluster.text(queued[1]!.id, 'stdout')).to.equal('');
  });
});
