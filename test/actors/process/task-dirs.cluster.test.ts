/**
 * A worker SIGKILLed mid-task leaves its task directory (and its spares) behind; started again, it
 * removes them, and leaves another worker's, running beside it, alone. Real processes: a manager and
 * two workers of the CLI sharing one TMPDIR, real bash.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { TaskCluster } from '../../fixtures/task-cluster.js';

describe('task directories of a killed worker (real processes)', function () {
  this.timeout(60_000);
  let cluster: TaskCluster | undefined;

  after(async () => {
    await cluster?.stop();
  });

  it('are removed when the worker starts again; another live worker\'s are untouched', async () => {
    cluster = await TaskCluster.start([
      { name: 'worker-1', slots: 1 },
      { name: 'worker-2', slots: 1 },
    ]);
    const start = async (worker: string) => {
      const [task] = await cluster!.tasks.submit({ command: 'echo $$; pwd; sleep 100', selector: `name=${worker}` });
      const [bash, dir] = (await cluster!.stdoutWhere(task!.id, (out) => out.split('\n').length === 3)).split('\n') as [string, string];
      cluster!.orphanGroups.add(Number(bash));
      return dir;
    };
    const [dir1, dir2] = [await start('worker-1'), await start('worker-2')];
    const entries = (worker: string) => fs.readdirSync(cluster!.tmp).filter((name) => name.includes(`-${worker}.`));
    const before = { one: entries('worker-1'), two: entries('worker-2') };
    expect(before.one).to.include(path.basename(dir1));
    expect(before.two).to.include(path.basename(dir2));

    const killed = cluster.workers.get('worker-1')!;
    killed.child.kill('SIGKILL');
    await killed.exited;
    expect(fs.existsSync(dir1), 'a SIGKILLed worker cannot remove its task directory').to.equal(true);

    await cluster.startWorker({ name: 'worker-1', slots: 1 });
    // Removed before it joined (synchronously, as it started).
    expect(fs.existsSync(dir1), 'the killed run\'s task directory').to.equal(false);
    expect(fs.existsSync(dir2), 'the task directory of the other worker').to.equal(true);
    for (const name of before.one) expect(fs.existsSync(path.join(cluster.tmp, name)), name).to.equal(false);
    for (const name of before.two) expect(fs.existsSync(path.join(cluster.tmp, name)), name).to.equal(true);
    expect(fs.readdirSync(dir2)).to.deep.equal([]);
  });
});
