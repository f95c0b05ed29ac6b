import { expect } from 'chai';
import { DEFAULT_HEARTBEAT_TIMEOUT_MS } from '../../src/transport/settings.js';
import { killAll, startNode, type NodeEvent, type TestNode } from '../fixtures/harness.js';
import { testPki } from '../fixtures/pki.js';

const listingIs = (nodes: string[]) => (e: NodeEvent) => e.event === 'listing' && JSON.stringify(e.nodes) === JSON.stringify(nodes);
const memberIs = (node: string, status: string) => (e: NodeEvent) => e.event === 'member' && e.node === node && e.status === status;

describe('failure detection and recovery (separate processes, default heartbeat)', function () {
  afterEach(killAll);

  it('SIGSTOP: node-down and out of the listing within the heartbeat timeout; SIGCONT: back as a reachable member', async function () {
    const certs = testPki().dir;
    const manager = await startNode({ certs, name: 'manager', listen: { host: '127.0.0.1', port: 0 }, followListing: true });
    const join = { host: '127.0.0.1', port: manager.address!.port };
    const [w1] = await Promise.all([startNode({ certs, name: 'worker-1', join, checkIn: true }), startNode({ certs, name: 'worker-2', join, checkIn: true })]);
    await manager.waitFor(listingIs(['worker-1', 'worker-2']), 10_000, 'both workers listed');
    await manager.request({ cmd: 'watch', target: w1.ref('echo') });

    // The bound: the timeout, plus the quarter-interval granularity of the check and scheduling slack.
    const bound = DEFAULT_HEARTBEAT_TIMEOUT_MS + 500;
    const since = manager.mark();
    const started = Date.now();
    w1.kill('SIGSTOP');
    const terminated = await manager.waitFor((e) => e.event === 'terminated', bound, 'node-down of the frozen worker', since);
    const detectedMs = Date.now() - started;
    await manager.waitFor(listingIs(['worker-2']), bound - detectedMs + 100, 'listing without the frozen worker', since);
    expect(terminated).to.deep.include({ ref: { node: 'worker-1', path: 'echo' }, reason: 'node-down' });
    expect(manager.events.slice(since).some(memberIs('worker-1', 'down'))).to.equal(true);

    const thawed = manager.mark();
    w1.kill('SIGCONT');
    await manager.waitFor(memberIs('worker-1', 'up'), 10_000, 'worker-1 up again', thawed);
    await manager.waitFor(listingIs(['worker-1', 'worker-2']), 10_000, 'worker-1 listed again', thawed);
    expect(await manager.request({ cmd: 'query', to: w1.ref('echo'), n: 1 })).to.deep.include({ ok: true, pong: { type: 'pong', n: 1, from: 'worker-1' } });
  });

  it('a manager restarted on the same port: workers rejoin and reappear in the listing with no action', async function () {
    const certs = testPki().dir;
    const first = await startNode({ certs, name: 'manager', listen: { host: '127.0.0.1', port: 0 }, followListing: true });
    const port = first.address!.port;
    const join = { host: '127.0.0.1', port };
    const [w1, w2] = await Promise.all([startNode({ certs, name: 'worker-1', join, checkIn: true }), startNode({ certs, name: 'worker-2', join, checkIn: true })]);
    await first.waitFor(listingIs(['worker-1', 'worker-2']), 10_000, 'both workers listed');
    await w1.request({ cmd: 'watch', target: first.ref('echo') });

    const since = w1.mark();
    first.kill('SIGKILL');
    await first.exited;
    const second: TestNode = await startNode({ certs, name: 'manager', listen: { host: '127.0.0.1', port }, followListing: true });
    expect(second.incarnation).to.not.equal(first.incarnation);
    await second.waitFor(listingIs(['worker-1', 'worker-2']), 15_000, 'both workers listed by the new manager');

    // The old incarnation is down for the workers (their watch fired), the new one is up.
    const down = await w1.waitFor((e) => e.event === 'terminated', 10_000, 'node-down of the old manager', since);
    expect(down).to.deep.include({ ref: { node: 'manager', path: 'echo' }, reason: 'node-down' });
    await w1.waitFor((e) => memberIs('manager', 'up')(e) && e.incarnation === second.incarnation, 10_000, 'the new manager up', since);
    expect(await second.request({ cmd: 'query', to: w2.ref('echo'), n: 2 })).to.deep.include({ ok: true, pong: { type: 'pong', n: 2, from: 'worker-2' } });
    expect(await w1.request({ cmd: 'query', to: w2.ref('echo'), n: 3 })).to.deep.include({ ok: true, pong: { type: 'pong', n: 3, from: 'worker-2' } });
  });
});
