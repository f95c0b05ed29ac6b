/**
 * A node speaks only for itself (real processes: a manager and a worker of the CLI, real bash, and
 * raw peers holding valid certificates that send what a rogue node would):
 * - a worker may report output and results, and give work back, only for tasks it was given;
 * - the receptionist keys the cluster relies on are only for the roles they are for;
 * - a task's timeout ends it even when its worker never answers.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { addCertificate, loadIdentity } from '../../../certs/index.js';
import { ActorRef } from '../../../protocols/actor-ref.js';
import { RUSSULA_WORKER_KEY } from '../../../protocols/russula/messages.js';
import type { TaskRecord, WorkResult } from '../../../protocols/tasks.js';
import { testPki } from '../../fixtures/pki.js';
import { RawPeer } from '../../fixtures/raw-peer.js';
import { RAW_MIN_BYTES } from '../../../src/transport/raw-frame.js';
import { TaskCluster } from '../../fixtures/task-cluster.js';

/** A raw peer that joins as `name` (a worker certificate of the test PKI) and checks in as a worker. */
async function rawWorker(port: number, name: string): Promise<RawPeer> {
  const id = testPki().identity(name);
  const peer = await RawPeer.join(port, { ca: id.ca, cert: id.cert, key: id.key, name, role: 'worker' });
  await peer.envelope((e) => e.t === 'welcome');
  peer.sendEnvelopes([{ t: 'checkIn', key: 'worker', ref: new ActorRef(name, 'worker'), meta: { name, slots: 1, tags: [] } }]);
  return peer;
}

function result(id: string, exitCode: number): WorkResult {
  return { id, outcome: 'exited', exitCode, signal: null, startedAt: Date.now(), durationMs: 1, stdoutBytes: 6, stderrBytes: 0, error: null };
}

const CONTROLLER = new ActorRef('manager', 'controller');
const POOL = new ActorRef('manager', 'pool');

describe('task authority: a node speaks only for itself (real processes, raw peers)', function () {
  this.timeout(60_000);
  let cluster: TaskCluster;
  let dir: string;
  const peers: RawPeer[] = [];

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-authority-'));
    cluster = await TaskCluster.start([{ name: 'worker-1', slots: 1 }]);
  });
  after(async () => {
    for (const p of peers) p.close();
    await cluster?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("a worker's forged workOutput, workResult, workRefused and workerState for another worker's task are refused: the task runs once, to its own end", async () => {
    const gate = path.join(dir, 'gate-forge');
    const runs = path.join(dir, 'runs-forge');
    const [real] = await cluster.tasks.submit({ command: `echo run >> ${runs}; echo real; while [ ! -e ${gate} ]; do sleep 0.02; done`, selector: 'name=worker-1' });
    await cluster.outputLine(real!.id, /^real$/);
    const updates: TaskRecord[] = [];
    cluster.tasks.on('update', (t) => t.id === real!.id && updates.push(t));

    const rogue = await rawWorker(cluster.port, 'worker-3');
    peers.push(rogue);
    // A task of the rogue's own, so that it has something it may honestly give back (held until the pool knows it).
    const [own] = await cluster.tasks.submit({ command: 'true', selector: 'name=worker-3', waitForWorkerMs: 20_000 });
    await rogue.envelope((e) => e.t === 'send' && (e.msg as { type?: string }).type === 'work');
    const backToPending = cluster.update(own!.id, (t) => t.status === 'pending' && (t.error ?? '').includes('worker-3 refused it'));
    const send = (to: ActorRef, msg: object) => ({ t: 'send', to, msg });
    rogue.sendEnvelopes([
      send(CONTROLLER, { type: 'workOutput', id: real!.id, stream: 'stdout', seq: 1, data: Buffer.from('forged\n') }),
      send(CONTROLLER, { type: 'workResult', result: result(real!.id, 42) }),
      send(POOL, { type: 'workRefused', id: real!.id, code: 'TROUPE_E_WORKER_BUSY', reason: 'forged' }),
      send(POOL, { type: 'workerState', worker: 'worker-1', running: [], finished: [{ result: result(real!.id, 43), task: { id: real!.id, command: 'x', env: {}, timeoutMs: 0 }, subscribers: [] }] }),
      // Its own task, given back honestly: handled after all the above (one link, one pool, in order).
      send(POOL, { type: 'workRefused', id: own!.id, code: 'TROUPE_E_WORKER_BUSY', reason: 'busy' }),
    ]);
    await backToPending;
    // None of the forgeries changed the task, and none reached its subscriber.
    expect(cluster.tasks.tasks.get(real!.id)).to.include({ status: 'running', worker: 'worker-1', attempts: 1 });
    expect(updates).to.deep.equal([]);
    expect(cluster.text(real!.id, 'stdout')).to.equal('real\n');

    fs.writeFileSync(gate, '');
    const end = await cluster.tasks.finished(real!.id);
    expect(end).to.include({ status: 'succeeded', exitCode: 0, worker: 'worker-1', attempts: 1 });
    expect(cluster.text(real!.id, 'stdout')).to.equal('real\n');
    expect(fs.readFileSync(runs, 'utf8')).to.equal('run\n');
    await cluster.tasks.cancel(own!.id);
  });

  it("a worker's raw-framed workOutput is held to the same rule: for another worker's task refused, for its own forwarded byte for byte", async () => {
    const gate = path.join(dir, 'gate-raw');
    const [real] = await cluster.tasks.submit({ command: `echo real; while [ ! -e ${gate} ]; do sleep 0.02; done`, selector: 'name=worker-1' });
    await cluster.outputLine(real!.id, /^real$/);
    const rogue = await rawWorker(cluster.port, 'worker-2');
    peers.push(rogue);
    const [own] = await cluster.tasks.submit({ command: 'true', selector: 'name=worker-2', waitForWorkerMs: 20_000 });
    await rogue.envelope((e) => e.t === 'send' && (e.msg as { type?: string }).type === 'work');
    // Both over RAW_MIN_BYTES, so that the manager also forwards its own one raw to the subscriber.
    const forged = `${'f'.repeat(2 * RAW_MIN_BYTES)}\n`;
    const mine = `${'o'.repeat(2 * RAW_MIN_BYTES)}\n`;
    rogue.sendRaw({ t: 'send', to: CONTROLLER, msg: { type: 'workOutput', id: real!.id, stream: 'stdout', seq: 1, data: Buffer.from(forged) } });
    rogue.sendRaw({ t: 'send', to: CONTROLLER, msg: { type: 'workOutput', id: own!.id, stream: 'stdout', seq: 0, data: Buffer.from(mine) } });
    // Its own chunk came after the forged one on the same link: by now the forged one was handled.
    await cluster.outputLine(own!.id, /^o+$/);
    expect(cluster.text(own!.id, 'stdout')).to.equal(mine);
    expect(cluster.text(real!.id, 'stdout')).to.equal('real\n');
    fs.writeFileSync(gate, '');
    expect(await cluster.tasks.finished(real!.id)).to.include({ status: 'succeeded', worker: 'worker-1' });
    expect(cluster.text(real!.id, 'stdout')).to.equal('real\n');
    await cluster.tasks.cancel(own!.id);
  });

  it('a client checking in under `worker` or `russula` is refused (TROUPE_E_FORBIDDEN) and never given tasks; other keys are open to it', async () => {
    const certs = path.join(dir, 'certs');
    fs.cpSync(testPki().dir, certs, { recursive: true });
    addCertificate({ out: certs, name: 'client-7', role: 'client' });
    const id = loadIdentity({ dir: certs, name: 'client-7' });
    // A client names itself <certificate>~<session> in the cluster, one member per connection.
    const client = await RawPeer.join(cluster.port, { ca: id.ca, cert: id.cert, key: id.key, name: 'client-7~raw1', role: 'client' });
    peers.push(client);
    await client.envelope((e) => e.t === 'welcome');
    const ref = new ActorRef('client-7~raw1', 'fake-worker');
    client.sendEnvelopes([
      { t: 'checkIn', key: 'worker', ref, meta: { name: 'client-7', slots: 8, tags: [] } },
      { t: 'checkIn', key: RUSSULA_WORKER_KEY, ref, meta: { name: 'client-7', tags: [] } },
      { t: 'checkIn', key: 'open-key', ref, meta: {} },
    ]);
    const refusals = async (n: number) => {
      await client.envelope(() => client.frames.flat().filter((e) => (e as { t?: string }).t === 'error').length >= n);
      return client.frames.flat().filter((e) => (e as { t?: string }).t === 'error') as { code: string; reason: string }[];
    };
    expect(await refusals(2)).to.deep.equal([
      { t: 'error', code: 'TROUPE_E_FORBIDDEN', reason: 'the receptionist key "worker" is reserved for workers; a client may not check in under it' },
      { t: 'error', code: 'TROUPE_E_FORBIDDEN', reason: `the receptionist key "${RUSSULA_WORKER_KEY}" is reserved for workers; a client may not check in under it` },
    ]);
    // The open key took it (checked after the refusals, on the same link, in order).
    const open = await cluster.client.receptionist.lookup('open-key');
    expect(open.map((e) => e.ref.toString())).to.deep.equal(['client-7~raw1/fake-worker']);
    expect((await cluster.client.receptionist.lookup('worker')).map((e) => e.ref.node)).to.not.include('client-7~raw1');
    expect((await cluster.client.receptionist.lookup(RUSSULA_WORKER_KEY)).map((e) => e.ref.node)).to.not.include('client-7~raw1');
    const err = await cluster.tasks.submit({ command: 'true', selector: 'name=client-7' }).then(
      () => expect.fail('submitted to a client'),
      (e: { code?: string }) => e,
    );
    expect(err.code).to.equal('TROUPE_E_NO_MATCHING_WORKER');
    expect(client.frames.flat().some((e) => (e as { msg?: { type?: string } }).msg?.type === 'work')).to.equal(false);
  });

  it('a worker that takes a task and never answers: the task still times out on the manager, and the worker is told to cancel', async () => {
    const silent = await rawWorker(cluster.port, 'worker-4');
    peers.push(silent);
    const [task] = await cluster.tasks.submit({ command: 'sleep 100', selector: 'name=worker-4', timeoutMs: 300, waitForWorkerMs: 20_000 });
    const work = await silent.envelope((e) => e.t === 'send' && (e.msg as { type?: string }).type === 'work');
    expect((work.msg as { task: { id: string }; attempt: number }).task.id).to.equal(task!.id);
    const end = await cluster.tasks.finished(task!.id);
    expect(end).to.include({ status: 'timed-out', worker: 'worker-4', exitCode: null });
    expect(end.error).to.match(/^timed out after 300 ms, and worker-4 did not report the end within \d+ ms more$/);
    await silent.envelope((e) => e.t === 'send' && (e.msg as { type?: string; id?: string }).type === 'cancelWork' && (e.msg as { id: string }).id === task!.id);
  });
});
