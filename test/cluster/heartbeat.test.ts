/**
 * The heartbeat between a manager and its peers: the dialling side pings every interval; the
 * manager answers, and pings only a peer it has not heard from for 1.5 intervals; a manager that
 * was itself frozen reads what came meanwhile before it judges a peer silent.
 */
import { Worker } from 'node:worker_threads';
import { expect } from 'chai';
import { ClusterSystem } from '../../src/cluster/cluster-system.js';
import { silentLogger } from '../../src/log.js';
import { testPki } from '../fixtures/pki.js';
import { RawPeer } from '../fixtures/raw-peer.js';

describe('heartbeat: the dialler pings, the manager answers and probes only a silent peer', function () {
  const systems: ClusterSystem[] = [];
  const peers: RawPeer[] = [];
  const threads: Worker[] = [];

  afterEach(async function () {
    await Promise.all(threads.splice(0).map((t) => t.terminate()));
    for (const p of peers.splice(0)) p.close();
    await Promise.all(systems.splice(0).map((s) => s.shutdown()));
  });

  async function managerWith(transport: { heartbeatIntervalMs: number; heartbeatTimeoutMs: number }): Promise<number> {
    const manager = await ClusterSystem.start({ identity: testPki().identity('manager'), listen: { host: '127.0.0.1', port: 0 }, log: silentLogger(), settings: { transport } });
    systems.push(manager);
    return manager.address!.port;
  }

  async function rawWorker(port: number): Promise<RawPeer> {
    const id = testPki().identity('worker-3');
    const peer = await RawPeer.join(port, { ca: id.ca, cert: id.cert, key: id.key, name: 'worker-3', role: 'worker' });
    peers.push(peer);
    await peer.envelope((e) => e.t === 'welcome');
    return peer;
  }

  it('a peer that never pings but answers pings is kept past the timeout: the manager pings it', async function () {
    const port = await managerWith({ heartbeatIntervalMs: 100, heartbeatTimeoutMs: 300 });
    const peer = await rawWorker(port);
    // Four pings take at least 4 × 150 ms of silence: twice the timeout, and the peer is still there.
    let pings = 0;
    await new Promise<void>((resolve) => peer.ws.on('ping', () => ++pings === 4 && resolve()));
    expect(systems[0]!.membership.get('worker-3')?.status).to.equal('up');
    expect(peer.ws.readyState).to.equal(peer.ws.OPEN);
  });

  it('a peer that pings every interval is answered and never pinged', async function () {
    const port = await managerWith({ heartbeatIntervalMs: 1000, heartbeatTimeoutMs: 3000 });
    const peer = await rawWorker(port);
    let fromManager = 0;
    peer.ws.on('ping', () => fromManager++);
    // 25 answered pings, one every 100 ms: 2.5 s, past 1.5 intervals of the manager's.
    let pongs = 0;
    await new Promise<void>((resolve) => {
      peer.ws.on('pong', () => (++pongs === 25 ? resolve() : setTimeout(() => peer.ws.ping(), 100)));
      peer.ws.ping();
    });
    expect(fromManager).to.equal(0);
    expect(systems[0]!.membership.get('worker-3')?.status).to.equal('up');
  });

  it('a manager frozen past the timeout reads what its pinging peer sent meanwhile, and keeps it', async function () {
    const port = await managerWith({ heartbeatIntervalMs: 100, heartbeatTimeoutMs: 300 });
    const id = testPki().identity('worker-3');
    // The peer on its own thread: it goes on pinging while this thread is frozen.
    const thread = new Worker(new URL('../fixtures/pinging-peer.js', import.meta.url), { workerData: { port, pingMs: 50, tls: { ca: id.ca, cert: id.cert, key: id.key, name: 'worker-3' } } });
    threads.push(thread);
    const said = (what: string) => new Promise<void>((resolve, reject) => {
      const on = (msg: string) => {
        if (msg !== what) return reject(new Error(`the peer said ${msg}, not ${what}`));
        thread.off('message', on);
        resolve();
      };
      thread.on('message', on);
    });
    await said('welcomed');
    expect(systems[0]!.membership.get('worker-3')?.status).to.equal('up');
    // Frozen for a second (a long GC pause, a starved process) at the end of a loop iteration: the
    // next one starts with the timers, the heartbeat's expired meanwhile, before any socket is read.
    await new Promise<void>((resolve) =>
      setImmediate(() => {
        const until = Date.now() + 1000;
        while (Date.now() < until);
        resolve();
      }),
    );
    const afterwards = said('pongs');
    thread.postMessage('count 5');
    await afterwards;
    expect(systems[0]!.membership.get('worker-3')?.status).to.equal('up');
  });
});
