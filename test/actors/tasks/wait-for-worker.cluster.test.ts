/**
 * The one way to wait for a worker: a submit says how long it may wait (`waitForWorkerMs`), and the
 * Controller holds it until a matching worker joins, or answers with the same codes as an
 * immediate refusal once the wait is over. Real processes (manager and workers run `troupe`).
 */
import { expect } from 'chai';
import { TaskCluster } from '../../fixtures/task-cluster.js';

async function expectCode(promise: Promise<unknown>, code: string): Promise<Error> {
  const err = await promise.then(
    () => expect.fail(`expected ${code}`),
    (e: Error & { code?: string }) => e,
  );
  expect((err as { code?: string }).code, err.message).to.equal(code);
  return err;
}

describe('waitForWorkerMs: a submit waits in the pool for a matching worker', function () {
  this.timeout(60_000);
  let cluster: TaskCluster;

  before(async () => {
    cluster = await TaskCluster.start([]);
  });

  after(async () => {
    await cluster?.stop();
  });

  it('with no worker and no wait, the answer is TROUPE_E_NO_WORKERS at once (as before)', async () => {
    await expectCode(cluster.tasks.submit({ command: 'true' }), 'TROUPE_E_NO_WORKERS');
  });

  it('past its wait with no worker: TROUPE_E_NO_WORKERS, and nothing is in the table', async () => {
    const err = await expectCode(cluster.tasks.submit({ command: 'true', waitForWorkerMs: 300 }), 'TROUPE_E_NO_WORKERS');
    expect(err.message).to.match(/^no workers are connected: .* within 300 ms$/);
    expect((await cluster.tasks.ask('tasks')).tasks).to.deep.equal([]);
  });

  it('withdrawn by its signal while held: TROUPE_E_NO_WORKERS, and it never runs', async () => {
    const abort = new AbortController();
    const held = cluster.tasks.submit({ command: 'echo never', waitForWorkerMs: 30_000 }, abort.signal);
    abort.abort();
    const err = await expectCode(held, 'TROUPE_E_NO_WORKERS');
    expect(err.message).to.match(/the submitter withdrew it$/);
    expect((await cluster.tasks.ask('tasks')).tasks).to.deep.equal([]);
  });

  it('submitted before any worker joined: it runs once one joins', async () => {
    const held = cluster.tasks.submit({ command: 'echo waited', waitForWorkerMs: 30_000 });
    await cluster.startWorker({ name: 'worker-1', slots: 1 });
    const [task] = await held;
    const end = await cluster.tasks.finished(task!.id);
    expect(end).to.include({ status: 'succeeded', worker: 'worker-1', exitCode: 0 });
    expect(cluster.text(task!.id, 'stdout')).to.equal('waited\n');
    // The withdrawn one did not run when the worker came.
    expect((await cluster.tasks.ask('tasks')).tasks!.map((t) => t.command)).to.deep.equal(['echo waited']);
  });

  it('a selector nobody matches: TROUPE_E_NO_MATCHING_WORKER after the wait', async () => {
    const err = await expectCode(cluster.tasks.submit({ command: 'true', selector: 'tag=tpu', waitForWorkerMs: 300 }), 'TROUPE_E_NO_MATCHING_WORKER');
    expect(err.message).to.equal('no worker matches tag=tpu (connected: worker-1) within 300 ms');
  });

  it('a selector that a later worker matches: held until that worker joins, then placed on it', async () => {
    const held = cluster.tasks.submit({ command: 'echo tagged', selector: 'tag=late', waitForWorkerMs: 30_000 });
    await cluster.startWorker({ name: 'worker-2', slots: 1, tags: ['late'] });
    const [task] = await held;
    expect((await cluster.tasks.finished(task!.id)).worker).to.equal('worker-2');
  });
});
