/**
 * Transport benchmark: `npm run bench:transport`, or `node dist/bench/transport.js`.
 *
 * Two processes: this one forks bench/transport-child.ts as the child. IPC carries commands and
 * results only; nothing is ever timed across it. Each figure stands beside its baseline, measured
 * in the same run:
 *   - query round trip: a raw ws + mTLS + msgpackr echo (parent → child → parent) against troupe's
 *     remote `query` (manager in the parent → echo actor on worker-1 in the child), alternated in
 *     blocks so the machine's noise falls on both alike;
 *   - one-way throughput: troupe `dispatch` from worker-1 to a counter actor on the manager, timed
 *     on the receiving side, beside raw ws + mTLS + msgpackr frames of 1024 messages.
 * Prints one JSON object on stdout; progress goes to stderr.
 *
 * Knobs (environment): BENCH_QUERY_N (measured round trips per side, default 10000),
 * BENCH_QUERY_BLOCKS (5), BENCH_WARMUP (2000), BENCH_DISPATCH_M (2000000), BENCH_RUNS (3),
 * BENCH_ONLY (`query` or `dispatch`, to profile one part: `node --cpu-prof dist/bench/transport.js`
 * profiles both processes).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pack, unpack } from 'msgpackr';
import type { WebSocket } from 'ws';
import { generateCertificates, loadIdentity } from '../certs/index.js';
import { ActorRef } from '../protocols/actor-ref.js';
import { ClusterSystem } from '../src/cluster/cluster-system.js';
import { BENCH_MESSAGES } from './bench-protocol.js';
import { distribution, envInt, median, progressTo, roundTo } from './bench-util.js';
import { MANAGER, RAW_BATCH, rawDial, rawServer, WORKER } from './raw-link.js';
import type { Command } from './transport-child.js';

const CHILD_SCRIPT = fileURLToPath(new URL('./transport-child.js', import.meta.url));

const QUERY_N = envInt('BENCH_QUERY_N', 10_000);
const QUERY_BLOCKS = envInt('BENCH_QUERY_BLOCKS', 5);
const WARMUP = envInt('BENCH_WARMUP', 2_000);
const DISPATCH_M = envInt('BENCH_DISPATCH_M', 2_000_000);
const RUNS = envInt('BENCH_RUNS', 3);
const ONLY = process.env.BENCH_ONLY ?? '';
const DISPATCH_WARMUP_M = Math.min(200_000, DISPATCH_M);
const QUERY_TARGET_RATIO = 1.3;
const DISPATCH_TARGET = 600_000;
const RUN_TIMEOUT_MS = 40_000;


const progress = progressTo('bench:transport parent');

const now = (): bigint => process.hrtime.bigint();
const nsToUs = (ns: bigint): number => Number(ns) / 1_000;
const round = (x: number, digits = 1): number => roundTo(x, digits);

interface Summary {
  p50: number;
  p99: number;
  mean: number;
  n: number;
}

function summarize(samples: readonly number[]): Summary {
  const d = distribution(samples);
  return { p50: round(d.at(0.5)), p99: round(d.at(0.99)), mean: round(d.mean), n: d.n };
}

// ── the parent: PKI, manager, measuring ────────────────────────────────────────────────────────

class ChildLink {
  #child: ChildProcess;
  #seq = 0;
  #calls = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  readonly up: Promise<void>;

  constructor(dir: string) {
    this.#child = fork(CHILD_SCRIPT, [dir], { stdio: ['ignore', 2, 2, 'ipc'] });
    let up!: () => void;
    this.up = new Promise((resolve) => (up = resolve));
    this.#child.on('message', (r: { id: number; ok: boolean; result?: unknown; error?: string }) => {
      if (r.id === 0) return up();
      const call = this.#calls.get(r.id);
      if (!call) return;
      this.#calls.delete(r.id);
      if (r.ok) call.resolve(r.result);
      else call.reject(new Error(`child: ${r.error}`));
    });
    this.#child.on('exit', (code, signal) => {
      for (const call of this.#calls.values()) call.reject(new Error(`child exited (${code ?? signal})`));
      this.#calls.clear();
    });
  }

  call<R>(cmd: Command['cmd'], args: Omit<Command, 'id' | 'cmd'> = {}): Promise<R> {
    const id = ++this.#seq;
    return new Promise<R>((resolve, reject) => {
      this.#calls.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.#child.send({ id, cmd, ...args });
    });
  }

  /** Asks the child to leave (so --cpu-prof can write its profile), then kills it if it lingers. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    this.call('exit').catch(() => {});
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }

  kill(): void {
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill('SIGKILL');
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms))),
  ]);
}

/** Sequential round trips over the raw echo connection; µs each. */
async function baselineRoundTrips(ws: WebSocket, from: number, n: number): Promise<number[]> {
  let settle: (() => void) | undefined;
  const onMessage = (data: Buffer) => {
    unpack(data);
    const s = settle!;
    settle = undefined;
    s();
  };
  ws.on('message', onMessage);
  const out = new Array<number>(n);
  for (let k = 0; k < n; k++) {
    const t0 = now();
    const reply = new Promise<void>((resolve) => (settle = resolve));
    ws.send(pack({ type: 'ping', n: from + k, replyTo: { node: MANAGER, path: '$q/1' } }), { binary: true });
    await reply;
    out[k] = nsToUs(now() - t0);
  }
  ws.off('message', onMessage);
  return out;
}

/** Sequential remote queries to the echo actor on worker-1; µs each. */
async function troupeRoundTrips(cluster: ClusterSystem, echo: ActorRef, from: number, n: number): Promise<number[]> {
  const out = new Array<number>(n);
  for (let k = 0; k < n; k++) {
    const i = from + k;
    const t0 = now();
    const reply = await cluster.query<{ type: string; n: number }>(echo, (replyTo) => ({ type: 'ping', n: i, replyTo }), 5000);
    out[k] = nsToUs(now() - t0);
    if (reply.n !== i) throw new Error(`pong ${reply.n} for ping ${i}`);
  }
  return out;
}

/** The counter on the manager: times the first and the expected-th tick it processes. */
class Counter {
  count = 0;
  #expect = 0;
  #first = 0n;
  #done: ((r: { ns: number; received: number }) => void) | undefined;

  arm(expect: number): Promise<{ ns: number; received: number }> {
    this.count = 0;
    this.#expect = expect;
    return new Promise((resolve) => (this.#done = resolve));
  }

  tick(n = 1): void {
    if (this.count === 0) this.#first = now();
    this.count += n;
    if (this.count >= this.#expect && this.#done) {
      const done = this.#done;
      this.#done = undefined;
      done({ ns: Number(now() - this.#first), received: this.count });
    }
  }
}

interface SenderResult {
  senderMsgsPerS: number;
  sendMs: number;
  congestionWaits: number;
}

async function parent(): Promise<void> {
  const started = Date.now();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'troupe-bench-'));
  let link: ChildLink | undefined;
  let manager: ClusterSystem | undefined;
  let rawCounting: Awaited<ReturnType<typeof rawServer>> | undefined;
  let echoWs: WebSocket | undefined;
  const watchdog = setTimeout(() => {
    progress('watchdog: the benchmark took over 150 s; giving up');
    link?.kill();
    rmSync(dir, { recursive: true, force: true });
    process.exit(2);
  }, 150_000);
  watchdog.unref();
  try {
    progress('generating a throwaway PKI in', dir);
    generateCertificates({ out: dir, workers: 1, clients: 0 });
    const managerIdentity = loadIdentity({ dir, name: MANAGER });
    const workerIdentity = loadIdentity({ dir, name: WORKER });

    link = new ChildLink(dir);
    await withTimeout(link.up, 10_000, 'child start');

    manager = await ClusterSystem.start({ identity: managerIdentity, listen: { host: '127.0.0.1', port: 0 }, messages: BENCH_MESSAGES });
    const counter = new Counter();
    manager.spawn<undefined, { type: string }>((state, msg) => {
      if (msg.type === 'tick') counter.tick();
      return state;
    }, 'counter');
    const joined = new Promise<void>((resolve) => manager!.on('connected', (node) => node === WORKER && resolve()));
    await link.call('join', { port: manager.address!.port });
    await withTimeout(joined, 10_000, 'worker-1 joining');
    progress('worker-1 joined the manager on port', manager.address!.port);

    const result: Record<string, unknown> = { bench: 'transport', node: process.version, cpus: os.cpus().length };

    // ── 1 + 2: round trips, alternating blocks of baseline and troupe ──
    if (ONLY === '' || ONLY === 'query') {
      const { port: echoPort } = await link.call<{ port: number }>('echo-server');
      echoWs = await rawDial(workerIdentity, echoPort);
      const echo = new ActorRef(WORKER, 'echo');
      progress(`round trips: warmup ${WARMUP} each, then ${QUERY_BLOCKS} alternating blocks, ${QUERY_N} measured each`);
      await baselineRoundTrips(echoWs, 0, WARMUP);
      await troupeRoundTrips(manager, echo, 0, WARMUP);
      const base: number[] = [];
      const troupe: number[] = [];
      const blockRatios: number[] = [];
      const per = Math.ceil(QUERY_N / QUERY_BLOCKS);
      for (let b = 0; b < QUERY_BLOCKS; b++) {
        const n = Math.min(per, QUERY_N - b * per);
        if (n <= 0) break;
        const bs = await baselineRoundTrips(echoWs, WARMUP + b * per, n);
        const ts = await troupeRoundTrips(manager, echo, WARMUP + b * per, n);
        base.push(...bs);
        troupe.push(...ts);
        blockRatios.push(round(summarize(ts).p50 / summarize(bs).p50, 3));
        progress(`  block ${b + 1}: baseline p50 ${summarize(bs).p50} µs, query p50 ${summarize(ts).p50} µs`);
      }
      echoWs.close();
      const baseline = summarize(base);
      const query = summarize(troupe);
      const ratio = round(query.p50 / baseline.p50, 3);
      Object.assign(result, {
        baseline_echo_us: baseline,
        query_us: query,
        query_p50_ratio: ratio,
        query_p50_ratio_per_block: blockRatios,
        query_target_ratio: QUERY_TARGET_RATIO,
        query_meets_target: ratio <= QUERY_TARGET_RATIO,
      });
      progress(`round trips: baseline p50 ${baseline.p50} µs, query p50 ${query.p50} µs, ratio ${ratio}`);
    }

    // ── 3: one-way throughput, alternating raw and troupe runs ──
    if (ONLY === '' || ONLY === 'dispatch') {
      let raw = 0;
      let rawDone: ((r: { ns: number; received: number }) => void) | undefined;
      let rawFirst = 0n;
      let rawExpect = 0;
      rawCounting = await rawServer(managerIdentity, (ws) => {
        ws.on('message', (data) => {
          const batch = unpack(data as Buffer) as { type: string }[];
          if (raw === 0) rawFirst = now();
          for (const msg of batch) if (msg.type === 'tick') raw++;
          if (raw >= rawExpect && rawDone) {
            const done = rawDone;
            rawDone = undefined;
            done({ ns: Number(now() - rawFirst), received: raw });
          }
        });
      });
      const rawRun = async (m: number) => {
        raw = 0;
        rawExpect = m;
        const received = new Promise<{ ns: number; received: number }>((resolve) => (rawDone = resolve));
        const [recv, sent] = await withTimeout(
          Promise.all([received, link!.call<SenderResult>('raw-oneway', { port: rawCounting!.port, m })]),
          RUN_TIMEOUT_MS,
          'raw one-way run',
        );
        return { msgsPerS: (m * 1e9) / recv.ns, ...sent };
      };
      const troupeRun = async (m: number) => {
        const received = counter.arm(m);
        const [recv, sent] = await withTimeout(Promise.all([received, link!.call<SenderResult>('dispatch', { m })]), RUN_TIMEOUT_MS, 'dispatch run').catch(
          (err: Error) => {
            throw new Error(`${err.message}; the counter had ${counter.count} of ${m}`);
          },
        );
        return { msgsPerS: (m * 1e9) / recv.ns, ...sent };
      };

      progress(`one-way: warmup ${DISPATCH_WARMUP_M} each, then ${RUNS} alternating runs of ${DISPATCH_M}`);
      await rawRun(DISPATCH_WARMUP_M);
      await troupeRun(DISPATCH_WARMUP_M);
      const rawRuns: Awaited<ReturnType<typeof rawRun>>[] = [];
      const troupeRuns: Awaited<ReturnType<typeof troupeRun>>[] = [];
      for (let r = 0; r < RUNS; r++) {
        const rr = await rawRun(DISPATCH_M);
        rawRuns.push(rr);
        const tr = await troupeRun(DISPATCH_M);
        troupeRuns.push(tr);
        progress(
          `  run ${r + 1}: raw ${Math.round(rr.msgsPerS)}/s; dispatch ${Math.round(tr.msgsPerS)}/s received, ` +
            `${Math.round(tr.senderMsgsPerS)}/s sent (${Math.round(tr.sendMs)} ms, ${tr.congestionWaits} congestion waits)`,
        );
      }
      const dispatchMedian = Math.round(median(troupeRuns.map((r) => r.msgsPerS)));
      const rawMedian = Math.round(median(rawRuns.map((r) => r.msgsPerS)));
      Object.assign(result, {
        dispatch_msgs_per_s: {
          runs: troupeRuns.map((r) => Math.round(r.msgsPerS)),
          median: dispatchMedian,
          sender_runs: troupeRuns.map((r) => Math.round(r.senderMsgsPerS)),
          sender_median: Math.round(median(troupeRuns.map((r) => r.senderMsgsPerS))),
          congestion_waits: troupeRuns.map((r) => r.congestionWaits),
          m: DISPATCH_M,
        },
        dispatch_target: DISPATCH_TARGET,
        dispatch_meets_target: dispatchMedian >= DISPATCH_TARGET,
        raw_ws_oneway_msgs_per_s: {
          runs: rawRuns.map((r) => Math.round(r.msgsPerS)),
          median: rawMedian,
          sender_runs: rawRuns.map((r) => Math.round(r.senderMsgsPerS)),
          batch: RAW_BATCH,
          m: DISPATCH_M,
        },
        dispatch_vs_raw_ratio: round(dispatchMedian / rawMedian, 3),
      });
    }

    result.duration_s = round((Date.now() - started) / 1000, 1);
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    clearTimeout(watchdog);
    echoWs?.terminate();
    await link?.stop().catch(() => link?.kill());
    await rawCounting?.close().catch(() => {});
    await manager?.shutdown().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}

parent().then(
  () => process.exit(0),
  (err: Error) => {
    progress('failed:', err.stack ?? err);
    process.exit(1);
  },
);
