/**
 * The Controller answers a submission from its own node in the turn it is made in (it is spawned
 * `inline`): answered, its work already sent, before a setImmediate queued ahead of it runs. A
 * worker's result, from another node, waits for the check phase of the loop iteration it was read
 * in, as before. A manager and a worker in this process, over real mTLS, with real bash.
 */
import { expect } from 'chai';
import { ActorRef } from '../../../protocols/actor-ref.js';
import { CONTROLLER_NAME, MANAGER_TASK_MESSAGES, WORKER_TASK_MESSAGES, type Submitted, type TaskUpdate } from '../../../protocols/tasks.js';
import { ClusterSystem } from '../../../src/cluster/cluster-system.js';
import { silentLogger } from '../../../src/log.js';
import { spawnController } from '../../../actors/tasks/controller.js';
import { TaskClient } from '../../../actors/tasks/task-client.js';
import { spawnWorker } from '../../../actors/tasks/worker.js';
import { testPki } from '../../fixtures/pki.js';
import { until } from '../../fixtures/processes.js';
import { turnsWaiting } from '../../../src/cluster/nact-drain.js';

describe('the Controller answers a submission from its own node in the turn it is made in (a manager and a worker in this process)', function () {
  this.timeout(30_000);
  const systems: ClusterSystem[] = [];
  let manager: ClusterSystem;
  let tasks: TaskClient;

  before(async () => {
    const pki = testPki();
    systems.push((manager = await ClusterSystem.start({ identity: pki.identity('manager'), listen: { host: '127.0.0.1', port: 0 }, messages: MANAGER_TASK_MESSAGES, log: silentLogger() })));
    const controller = spawnController(manager);
    const worker = await ClusterSystem.start({ identity: pki.identity('worker-1'), join: { host: '127.0.0.1', port: manager.address!.port }, messages: WORKER_TASK_MESSAGES, log: silentLogger() });
    systems.push(worker);
    spawnWorker(worker, { slots: 1, spawner: false });
    await until(() => [...controller.workers()].length === 1, 'worker-1 known to the pool', 10_000);
    tasks = TaskClient.start(manager);
  });

  after(async () => {
    tasks?.stop();
    await Promise.all(systems.reverse().map((s) => s.shutdown()));
  });

  it('a submission from this node: answered, running on its worker, before an immediate queued ahead of it', async () => {
    // Inline only while no actor waits for its turn (a frame read in this iteration, e.g. a usage
    // report, schedules one): wait for a moment when none does, then submit in that same tick.
    while (turnsWaiting() > 0) await new Promise((resolve) => setImmediate(resolve));
    let immediateRan = false;
    setImmediate(() => (immediateRan = true));
    const [task] = await tasks.submit({ command: 'true' });
    expect(immediateRan, 'the answer came a turn later').to.equal(false);
    expect(task).to.include({ status: 'running', worker: 'worker-1', attempts: 1 });
    expect((await tasks.finished(task!.id)).status).to.equal('succeeded');
  });

  it("a worker's result waits for the loop's check phase, so that results read together are answered together", async () => {
    let told!: (how: string) => void;
    const end = new Promise<string>((resolve) => (told = resolve));
    const subscriber = manager.receiver((msg) => {
      const update = msg as TaskUpdate;
      if (update.type !== 'taskUpdate' || update.task.status !== 'succeeded') return;
      const limit = Error.stackTraceLimit;
      Error.stackTraceLimit = Infinity;
      const stack = new Error().stack ?? '';
      Error.stackTraceLimit = limit;
      told(stack.includes('processImmediate') ? 'a turn later' : stack.includes('onStreamRead') ? 'in the read' : stack);
    });
    const reply = await manager.query<Submitted>(new ActorRef(manager.node, CONTROLLER_NAME), (replyTo) => ({ type: 'submit', command: 'true', replyTo, subscriber }), 5000);
    expect(reply.tasks[0]).to.include({ status: 'running' });
    expect(await end).to.equal('a turn later');
    manager.dropReceiver(subscriber);
  });
});
