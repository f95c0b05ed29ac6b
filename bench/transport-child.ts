/**
 * The transport benchmark's child process (bench/transport.ts forks it): the raw echo server and
 * worker-1, which joins the parent's manager and hosts the `echo` actor, and the two one-way
 * senders (troupe `dispatch` to the manager's counter, raw frames to the parent's counting server).
 *
 *   transport-child.js CERTS_DIR
 *
 * Protocol, over fork's IPC channel: the child sends `{ id: 0, ok: true, result: 'up' }` once
 * listening for commands; each command `{ id, cmd, port?, m? }` is answered `{ id, ok, result }` or
 * `{ id, ok: false, error }`. Senders time themselves (IPC is never inside a measurement). `exit`,
 * or the channel closing, ends it.
 */
import { pack, unpack } from 'msgpackr';
import { loadIdentity } from '../certs/index.js';
import { ActorRef } from '../protocols/actor-ref.js';
import { ClusterSystem } from '../src/cluster/cluster-system.js';
import { BENCH_MESSAGES } from './bench-protocol.js';
import { progressTo } from './bench-util.js';
import { MANAGER, RAW_BATCH, rawDial, rawServer, WORKER } from './raw-link.js';

/** Messages the troupe sender dispatches per event-loop turn. */
const CHUNK = 1_000;
/** Raw sender: bytes written but not flushed before it waits (as the Connection's high water). */
const RAW_HIGH_WATER = 4 * 1024 * 1024;

const progress = progressTo('bench:transport child');
const now = (): bigint => process.hrtime.bigint();
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export interface Command {
  id: number;
  cmd: 'echo-server' | 'join' | 'dispatch' | 'raw-oneway' | 'exit';
  port?: number;
  m?: number;
}

async function child(dir: string): Promise<void> {
  const managerIdentity = loadIdentity({ dir, name: MANAGER });
  const workerIdentity = loadIdentity({ dir, name: WORKER });
  let echoServer: Awaited<ReturnType<typeof rawServer>> | undefined;
  let cluster: ClusterSystem | undefined;
  const counter = new ActorRef(MANAGER, 'counter');

  const handlers: Record<Command['cmd'], (c: Command) => Promise<unknown>> = {
    async 'echo-server'() {
      echoServer = await rawServer(managerIdentity, (ws) => {
        ws.on('message', (data) => ws.send(pack(unpack(data as Buffer)), { binary: true }));
      });
      return { port: echoServer.port };
    },

    async join(c) {
      cluster = await ClusterSystem.start({ identity: workerIdentity, join: { host: '127.0.0.1', port: c.port! }, messages: BENCH_MESSAGES });
      await cluster.ready();
      cluster.spawn<undefined, { type: string; n: number; replyTo: ActorRef }>((state, msg, ctx) => {
        if (msg.type === 'ping') ctx.cluster.dispatch(msg.replyTo, { type: 'pong', n: msg.n });
        return state;
      }, 'echo');
      return {};
    },

    async dispatch(c) {
      const m = c.m!;
      const system = cluster!;
      let waits = 0;
      const t0 = now();
      for (let i = 0; i < m; ) {
        const end = Math.min(m, i + CHUNK);
        for (; i < end; i++) system.dispatch(counter, { type: 'tick', i });
        if (system.isCongested(MANAGER)) {
          waits++;
          await system.whenWritable(MANAGER);
        } else {
          await nextTurn();
        }
      }
      const ns = Number(now() - t0);
      return { senderMsgsPerS: (m * 1e9) / ns, sendMs: ns / 1e6, congestionWaits: waits };
    },

    async 'raw-oneway'(c) {
      const m = c.m!;
      const ws = await rawDial(workerIdentity, c.port!);
      let unflushed = 0;
      let waiting: (() => void) | undefined;
      let waits = 0;
      const t0 = now();
      for (let i = 0; i < m; ) {
        const n = Math.min(RAW_BATCH, m - i);
        const batch = new Array<{ type: string; i: number }>(n);
        for (let k = 0; k < n; k++) batch[k] = { type: 'tick', i: i + k };
        i += n;
        const frame = pack(batch);
        const bytes = frame.length;
        unflushed += bytes;
        ws.send(frame, { binary: true }, () => {
          unflushed -= bytes;
          if (waiting && unflushed <= RAW_HIGH_WATER / 2) {
            const w = waiting;
            waiting = undefined;
            w();
          }
        });
        if (unflushed > RAW_HIGH_WATER) {
          waits++;
          await new Promise<void>((resolve) => (waiting = resolve));
        } else {
          await nextTurn();
        }
      }
      const ns = Number(now() - t0);
      while (unflushed > 0) await new Promise<void>((resolve) => (waiting = resolve));
      ws.close();
      return { senderMsgsPerS: (m * 1e9) / ns, sendMs: ns / 1e6, congestionWaits: waits };
    },

    async exit() {
      await cluster?.shutdown();
      await echoServer?.close();
      setImmediate(() => process.exit(0));
      return {};
    },
  };

  process.on('message', (c: Command) => {
    handlers[c.cmd](c).then(
      (result) => process.send!({ id: c.id, ok: true, result }),
      (err: Error) => process.send!({ id: c.id, ok: false, error: err.stack ?? String(err) }),
    );
  });
  process.on('disconnect', () => process.exit(0));
  process.send!({ id: 0, ok: true, result: 'up' });
}

child(process.argv[2]!).catch((err: Error) => {
  progress('failed:', err.stack ?? err);
  process.exit(1);
});
