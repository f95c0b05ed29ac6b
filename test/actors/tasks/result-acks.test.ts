/**
 * The acknowledgement of a result rides in the next `work` for the same worker (result-acks.ts), or
 * goes alone after `resultAckDelayMs`: a manager and a worker in this process, over real mTLS, with
 * real bash. A worker keeps a result, and the task's Executor, until it is acknowledged: the
 * Executor's life is what the acknowledgement is seen by.
 */
import { expect } from 'chai';
import { ActorRef } from '../../../protocols/actor-ref.js';
import { MANAGER_TASK_MESSAGES, WORKER_TASK_MESSAGES } from '../../../protocols/tasks.js';
import { ClusterSystem } from '../../../src/cluster/cluster-system.js';
import { silentLogger } from '../../../src/log.js';
import { spawnController } from '../../../actors/tasks/controller.js';
import { TaskClient } from '../../../actors/tasks/task-client.js';
import { spawnWorker } from '../../../actors/tasks/worker.js';
import { testPki } from '../../fixtures/pki.js';
import { until } from '../../fixtures/processes.js';

describe('result acknowledgements (a manager and a worker in this process)', function () {
  this.timeout(30_000);
  let systems: ClusterSystem[] = [];
  let tasks: TaskClient | undefined;

  afterEach(async () => {
    tasks?.stop();
    tasks = undefined;
    await Promise.all(systems.reverse().map((s) => s.shutdown()));
    systems = [];
  });

  async function cluster(resultAckDelayMs: number): Promise<{ manager: ClusterSystem; worker: ClusterSystem; tasks: TaskClient }> {
    const pki = testPki();
    const manager = await ClusterSystem.start({ identity: pki.identity('manager'), listen: { host: '127.0.0.1', port: 0 }, messages: MANAGER_TASK_MESSAGES, log: silentLogger() });
    systems.push(manager);
    const controller = spawnController(manager, { resultAckDelayMs });
    const worker = await ClusterSystem.start({ identity: pki.identity('worker-1'), join: { host: '127.0.0.1', port: manager.address!.port }, messages: WORKER_TASK_MESSAGES, log: silentLogger() });
    systems.push(worker);
    spawnWorker(worker, { slots: 1, spawner: false });
    await until(() => [...controller.workers()].length === 1, 'worker-1 known to the pool', 10_000);
    tasks = TaskClient.start(manager);
    return { manager, worker, tasks };
  }

  const executor = (id: string) => new ActorRef('worker-1', `worker/executor-${id}`);

  async function run(client: TaskClient, command: string): Promise<string> {
    const [task] = await client.submit({ command });
    const done = await client.finished(task!.id);
    expect(done).to.include({ status: 'succeeded', exitCode: 0 });
    return task!.id;
  }

  it('waits for the next work to the worker and goes in it, ahead of the task', async () => {
    // A minute: within the test, only a work can carry it.
    const { manager, worker, tasks } = await cluster(60_000);
    // A task first: what the join still had on its way to the worker is counted before we count.
    await run(tasks, 'true');
    const first = await run(tasks, 'true');
    expect(worker.isAlive(executor(first)), 'the first result is not acknowledged yet').to.equal(true);
    const before = manager.linkStats('worker-1')!.messagesOut;
    const second = await run(tasks, 'true');
    expect(worker.isAlive(executor(first)), 'acknowledged by the second work').to.equal(false);
    expect(worker.isAlive(executor(second))).to.equal(true);
    // The second work alone: no resultAck of its own for the first.
    expect(manager.linkStats('worker-1')!.messagesOut - before).to.equal(1);
  });

  it('goes alone after resultAckDelayMs when no work follows', async () => {
    const { worker, tasks } = await cluster(20);
    const id = await run(tasks, 'true');
    await until(() => !worker.isAlive(executor(id)), 'the Executor stopped by a resultAck of its own', 10_000);
  });

  it('resultAckDelayMs 0: at once, on its own', async () => {
    const { manager, worker, tasks } = await cluster(0);
    const warm = await run(tasks, 'true');
    await until(() => !worker.isAlive(executor(warm)), 'the first Executor stopped', 10_000);
    const before = manager.linkStats('worker-1')!.messagesOut;
    const id = await run(tasks, 'true');
    await until(() => !worker.isAlive(executor(id)), 'the Executor stopped', 10_000);
    // The work, then the acknowledgement.
    expect(manager.linkStats('worker-1')!.messagesOut - before).to.equal(2);
  });
});
