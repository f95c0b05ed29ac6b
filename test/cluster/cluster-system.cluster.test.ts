import { expect } from 'chai';
import { killAll, startNode, type NodeEvent, type TestNode } from '../fixtures/harness.js';
import { testPki } from '../fixtures/pki.js';

const listingIs = (nodes: string[]) => (e: NodeEvent) => e.event === 'listing' && JSON.stringify(e.nodes) === JSON.stringify(nodes);

describe('ClusterSystem across three processes', function () {
  let manager: TestNode;
  let w1: TestNode;
  let w2: TestNode;

  before(async function () {
    const certs = testPki().dir;
    manager = await startNode({ certs, name: 'manager', listen: { host: '127.0.0.1', port: 0 }, followListing: true });
    const join = { host: '127.0.0.1', port: manager.address!.port };
    [w1, w2] = await Promise.all([
      startNode({ certs, name: 'worker-1', join, checkIn: true }),
      startNode({ certs, name: 'worker-2', join, checkIn: true }),
    ]);
    await manager.waitFor(listingIs(['worker-1', 'worker-2']), 10_000, 'listing of both workers');
  });

  after(killAll);

  it('queries from the manager to a worker and back', async function () {
    expect(await manager.request({ cmd: 'query', to: w1.ref('echo'), n: 1 })).to.deep.include({ ok: true, pong: { type: 'pong', n: 1, from: 'worker-1' } });
    expect(await w1.request({ cmd: 'query', to: manager.ref('echo'), n: 2 })).to.deep.include({ ok: true, pong: { type: 'pong', n: 2, from: 'manager' } });
  });

  it('queries from one worker to another through the manager', async function () {
    expect(await w1.request({ cmd: 'query', to: w2.ref('echo'), n: 3 })).to.deep.include({ ok: true, pong: { type: 'pong', n: 3, from: 'worker-2' } });
    expect(await w2.request({ cmd: 'query', to: w1.ref('echo'), n: 4 })).to.deep.include({ ok: true, pong: { type: 'pong', n: 4, from: 'worker-1' } });
  });

  it('passes refs inside messages: the manager asks worker-1 to ping worker-2', async function () {
    const reply = await manager.request({ cmd: 'relay', via: w1.ref('echo'), target: w2.ref('echo'), n: 5 });
    expect(reply).to.deep.include({ ok: true, pong: { type: 'pong', n: 5, from: 'worker-2' } });
  });

  it('dispatches one way in order, both directions', async function () {
    const count = 200;
    await w1.request({ cmd: 'notes', to: manager.ref('recorder'), count });
    await manager.waitFor((e) => e.event === 'note' && e.text === `note ${count - 1}`, 10_000, 'the last note');
    expect(manager.events.filter((e) => e.event === 'note').map((e) => e.text)).to.deep.equal(Array.from({ length: count }, (_, i) => `note ${i}`));
    await manager.request({ cmd: 'notes', to: w2.ref('recorder'), count: 3 });
    await w2.waitFor((e) => e.event === 'note' && e.text === 'note 2', 10_000, 'the last note');
    expect(w2.events.filter((e) => e.event === 'note').map((e) => e.text)).to.deep.equal(['note 0', 'note 1', 'note 2']);
  });

  it('answers a lookup of the receptionist from a worker', async function () {
    expect(await w1.request({ cmd: 'lookup', key: 'worker' })).to.deep.include({ ok: true, nodes: ['worker-1', 'worker-2'] });
  });

  it('fails a query to an actor that does not exist at once, with TROUPE_E_NO_SUCH_ACTOR', async function () {
    const reply = await w1.request({ cmd: 'query', to: w2.ref('nobody-here'), n: 6, timeoutMs: 10_000 });
    expect(reply).to.include({ ok: false, code: 'TROUPE_E_NO_SUCH_ACTOR' });
  });

  it('delivers terminated with reason stopped when a watched remote actor stops', async function () {
    await manager.request({ cmd: 'watch', target: w1.ref('victim') });
    await w1.request({ cmd: 'stop', path: 'victim' });
    const event = await manager.waitFor((e) => e.event === 'terminated' && (e.ref as { path: string }).path === 'victim', 5000, 'terminated');
    expect(event).to.deep.include({ ref: { node: 'worker-1', path: 'victim' }, reason: 'stopped' });
  });

  it('fires a watch on an actor that is already gone at once', async function () {
    const mark = w2.mark();
    await w2.request({ cmd: 'watch', target: w1.ref('victim') });
    const event = await w2.waitFor((e) => e.event === 'terminated', 5000, 'terminated', mark);
    expect(event).to.deep.include({ ref: { node: 'worker-1', path: 'victim' }, reason: 'stopped' });
  });

  it('SIGKILL of a worker: the watch fires node-down and the listing drops it, both within 1 s', async function () {
    await manager.request({ cmd: 'watch', target: w2.ref('echo') });
    await w1.request({ cmd: 'watch', target: w2.ref('echo') });
    const watched = manager.next((e) => e.event === 'terminated' && (e.ref as { node: string }).node === 'worker-2', 1000, 'node-down within 1 s');
    const fromWorker = w1.next((e) => e.event === 'terminated' && (e.ref as { node: string }).node === 'worker-2', 1000, 'node-down at worker-1 within 1 s');
    const dropped = manager.next(listingIs(['worker-1']), 1000, 'listing without worker-2 within 1 s');
    w2.kill('SIGKILL');
    expect(await watched).to.deep.include({ ref: { node: 'worker-2', path: 'echo' }, reason: 'node-down' });
    expect(await fromWorker).to.deep.include({ ref: { node: 'worker-2', path: 'echo' }, reason: 'node-down' });
    await dropped;
    const reply = await w1.request({ cmd: 'query', to: w2.ref('echo'), n: 7 });
    expect(reply).to.include({ ok: false, code: 'TROUPE_E_NODE_DOWN' });
    const mark = manager.mark();
    await manager.request({ cmd: 'watch', target: w2.ref('echo') });
    const late = await manager.waitFor((e) => e.event === 'terminated', 1000, 'an immediate node-down', mark);
    expect(late).to.deep.include({ reason: 'node-down' });
  });
});
