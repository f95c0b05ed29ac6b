/**
 * bench:output — how fast a task's output reaches its submitter, beside OpenSSH and a local pipe.
 *
 * Three ways of moving `yes | head -c N` (BENCH_OUTPUT_BYTES, default 1 GB) into a fast consumer
 * (`wc -c`, whose count is checked), in one run, in alternating blocks (BENCH_OUTPUT_BLOCKS, default
 * 3; each block runs every way once, the order rotated from block to block):
 *   - troupe: the `troupe run` CLI (client-1) → a `troupe manager --no-repl` CLI process (journal on,
 *     in the bench's temp dir, as a user runs it) → a `troupe worker` CLI process (worker-1, which
 *     starts bash through its spawner process). Real processes on loopback, a throwaway PKI.
 *   - ssh: `ssh -p PORT USER@127.0.0.1 'yes | head -c N'` to our own sshd on 127.0.0.1 (a port from
 *     the OS, a temporary host key and authorized key, run directly as test/fixtures/netns-hosts.ts
 *     does), default cipher.
 *   - pipe: `bash -c 'yes | head -c N' | wc -c`.
 * Per way, the median seconds and MB/s (10^6 bytes) over the blocks, every block's seconds, and the
 * ratios to ssh and to the pipe. Peak RSS (VmHWM) of each troupe process: the manager, the worker and
 * its spawner (read at the end, so over the whole run), and the client (`/usr/bin/time`, per run,
 * the largest); the ssh client's too. CPU seconds per troupe run of each troupe process (median).
 *
 * Targets (issue 17): troupe at least ssh's MB/s (moonshot: half the pipe's), memory bounded.
 * Prints one JSON object on stdout; progress on stderr. BENCH_CPU_PROF_DIR: profiles of the manager,
 * the worker and each client run (`--cpu-prof`) into that directory.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BenchChild } from './bench-child.js';
import { prepareSshd, SSHD } from './bench-sshd.js';
import { envInt, median, nowMs, progressTo, roundTo, sleep } from './bench-util.js';

const BYTES = envInt('BENCH_OUTPUT_BYTES', 1_000_000_000);
const BLOCKS = envInt('BENCH_OUTPUT_BLOCKS', 3);
const START_TIMEOUT_MS = 20_000;
const WATCHDOG_MS = envInt('BENCH_OUTPUT_WATCHDOG_S', 1800) * 1000;
/** BENCH_CPU_PROF_DIR: run the manager, the worker and the clients with `--cpu-prof` into that directory. */
const CPU_PROF_DIR = process.env.BENCH_CPU_PROF_DIR ?? '';
const cpuProfArgs = (name: string): string[] => (CPU_PROF_DIR === '' ? [] : ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF_DIR}`, `--cpu-prof-name=${name}.cpuprofile`]);

const HERE = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.join(HERE, '..', 'bin', 'troupe.js');
const TIME = '/usr/bin/time';
const WAYS = ['troupe', 'ssh', 'pipe'] as const;
type Way = (typeof WAYS)[number];

const progress = progressTo('bench:output');
const round = (x: number, digits = 3): number => roundTo(x, digits);
const command = (n: number) => `yes | head -c ${n}`;

/** A long-lived child (manager, worker, sshd) whose output lines we wait on. */
class Daemon extends BenchChild {
  #text = '';
  #waiters: { match: RegExp; resolve: (m: RegExpExecArray) => void }[] = [];

  constructor(
    readonly name: string,
    file: string,
    args: readonly string[],
    env: NodeJS.ProcessEnv = process.env,
  ) {
    super(spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'] }));
    const onText = (chunk: string) => {
      this.#text += chunk;
      if (this.#text.length > 65536) this.#text = this.#text.slice(-32768);
      this.#waiters = this.#waiters.filter((w) => {
        const m = w.match.exec(this.#text);
        if (m) w.resolve(m);
        return !m;
      });
    };
    this.child.stdout!.setEncoding('utf8').on('data', onText);
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      onText(chunk);
      // Warnings and errors (TROUPE_LOG=warn) go on to our stderr.
      if (name !== 'sshd') process.stderr.write(chunk.replace(/^(?=.)/gm, `[${name}] `));
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  waitFor(match: RegExp): Promise<RegExpExecArray> {
    const seen = match.exec(this.#text);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name}: nothing matching ${match} within ${START_TIMEOUT_MS} ms:\n${this.#text}`)), START_TIMEOUT_MS);
      this.child.once('exit', (code, signal) => reject(new Error(`${this.name} exited (${code ?? signal}):\n${this.#text}`)));
      this.#waiters.push({ match, resolve: (m) => (clearTimeout(timer), resolve(m)) });
    });
  }
}

/** A process's peak resident memory in MiB (VmHWM), or null once it is gone. */
function peakMiB(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const kb = /^VmHWM:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb === undefined ? null : round(Number(kb) / 1024, 1);
  } catch {
    return null;
  }
}

/** CPU seconds (user + system) a live process has used. */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return 0;
  }
}
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** The child of `parent` whose command line contains `needle`. */
function childPid(parent: number, needle: string): number | undefined {
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.split(') ')[1]!.split(' ')[1]) !== parent) continue;
      if (fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(needle)) return Number(entry);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

interface RunOutcome {
  seconds: number;
  /** The producer's peak RSS (its /usr/bin/time), MiB. */
  producerPeakMiB: number;
  /** The producer's CPU seconds. */
  producerCpuS: number;
}

/**
 * Runs `file args` under /usr/bin/time with its stdout into `wc -c`; checks the count and both exit
 * statuses; the seconds from the spawn until both have exited.
 */
async function runInto(file: string, args: readonly string[], dir: string, env: NodeJS.ProcessEnv = process.env): Promise<RunOutcome> {
  const timeFile = path.join(dir, 'time.out');
  const t0 = nowMs();
  const wc = spawn('wc', ['-c'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const producer = spawn(TIME, ['-f', '%M %U %S', '-o', timeFile, file, ...args], { env, stdio: ['ignore', wc.stdin!, 'pipe'] });
  wc.stdin!.destroy(); // the producer holds the pipe's write end now
  let count = '';
  let stderr = '';
  wc.stdout!.setEncoding('utf8').on('data', (s: string) => (count += s));
  producer.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const exitOf = (c: ChildProcess) => new Promise<number | string>((resolve) => c.once('exit', (code, signal) => resolve(code ?? signal!)));
  const [producerExit, wcExit] = await Promise.all([exitOf(producer), exitOf(wc)]);
  const seconds = (nowMs() - t0) / 1000;
  if (producerExit !== 0 || wcExit !== 0) throw new Error(`${file} ${args.join(' ')}: exit ${producerExit}, wc ${wcExit}: ${stderr.trim()}`);
  const got = Number(count.trim());
  if (got !== BYTES && args.at(-1) === command(BYTES)) throw new Error(`${file}: ${got} bytes arrived, expected ${BYTES}: ${stderr.trim()}`);
  const [kb, user, sys] = fs.readFileSync(timeFile, 'utf8').trim().split('\n').at(-1)!.split(' ').map(Number);
  return { seconds, producerPeakMiB: round(kb! / 1024, 1), producerCpuS: round(user! + sys!) };
}

async function main(): Promise<Record<string, unknown>> {
  const started = Date.now();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-bench-output-'));
  const daemons: Daemon[] = [];
  const cleanUp = () => {
    for (const d of daemons) d.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const watchdog = setTimeout(() => {
    progress(`watchdog: over ${WATCHDOG_MS / 1000} s; giving up`);
    cleanUp();
    process.exit(2);
  }, WATCHDOG_MS);
  watchdog.unref();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      progress(`${signal}: stopping`);
      cleanUp();
      process.exit(130);
    });
  }
  process.once('exit', () => {
    for (const d of daemons) d.kill();
  });
  try {
    const nodeEnv = { ...process.env, TROUPE_LOG: 'warn' };
    progress('a throwaway PKI, a manager, a worker and an sshd in', dir);
    const certs = path.join(dir, 'certs');
    execFileSync(process.execPath, [BIN, 'generate-tls-certificates', '--out', certs, '--workers', '1', '--clients', '1', '--hostname', '127.0.0.1'], { stdio: 'ignore' });
    const manager = new Daemon('manager', process.execPath, [...cpuProfArgs('manager'), BIN, 'manager', '--no-repl', '--certs', certs, '--host', '127.0.0.1', '--port', '0', '--state-dir', path.join(dir, 'state')], nodeEnv);
    daemons.push(manager);
    const address = (await manager.waitFor(/listening on wss:\/\/(127\.0\.0\.1:\d+)/))[1]!;
    const worker = new Daemon('worker', process.execPath, [...cpuProfArgs('worker'), BIN, 'worker', '--certs', certs, '--name', 'worker-1', '--join', address], nodeEnv);
    daemons.push(worker);
    await worker.waitFor(/joined the cluster through/);

    // Our own sshd on 127.0.0.1, a port from the OS, keys made here.
    const { port: sshPort, clientKey, knownHosts, sshdArgs } = await prepareSshd(dir, 'ERROR');
    const sshd = new Daemon('sshd', SSHD, [...sshdArgs, '-o', 'LogLevel=INFO']);
    daemons.push(sshd);
    await sshd.waitFor(/Server listening on/);
    const user = os.userInfo().username;
    const sshArgs = (cmd: string) => [
      '-q', '-p', String(sshPort), '-i', clientKey,
      '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'LogLevel=ERROR',
      `${user}@127.0.0.1`, cmd,
    ];
    let clientRuns = 0;
    const troupeArgs = (cmd: string) => [...cpuProfArgs(`client-${++clientRuns}`), BIN, 'run', address, '--certs', certs, '--name', 'client-1', '--', cmd];

    const spawnerPid = childPid(worker.pid, 'spawner-process') ?? childPid(worker.pid, 'troupe-spawn');
    progress(`manager pid ${manager.pid} at ${address}, worker pid ${worker.pid} (spawner ${spawnerPid ?? '?'}), sshd pid ${sshd.pid} on port ${sshPort}`);
    // Warm-up: the first task waits for the Controller to know the worker; ssh's first login.
    await runInto(process.execPath, troupeArgs(command(1_000_000)), dir, nodeEnv);
    await runInto('ssh', sshArgs(command(1_000_000)), dir);

    const seconds: Record<Way, number[]> = { troupe: [], ssh: [], pipe: [] };
    const clientPeak: number[] = [];
    const sshClientPeak: number[] = [];
    const cpu = { manager: [] as number[], worker: [] as number[], spawner: [] as number[], client: [] as number[] };
    for (let block = 0; block < BLOCKS; block++) {
      const order = WAYS.map((_, i) => WAYS[(i + block) % WAYS.length]!);
      for (const way of order) {
        await sleep(200); // let the last run's processes and sockets settle
        if (way === 'troupe') {
          const before = { manager: cpuSeconds(manager.pid), worker: cpuSeconds(worker.pid), spawner: cpuSeconds(spawnerPid) };
          const r = await runInto(process.execPath, troupeArgs(command(BYTES)), dir, nodeEnv);
          cpu.manager.push(cpuSeconds(manager.pid) - before.manager);
          cpu.worker.push(cpuSeconds(worker.pid) - before.worker);
          cpu.spawner.push(cpuSeconds(spawnerPid) - before.spawner);
          cpu.client.push(r.producerCpuS);
          clientPeak.push(r.producerPeakMiB);
          seconds.troupe.push(r.seconds);
        } else if (way === 'ssh') {
          const r = await runInto('ssh', sshArgs(command(BYTES)), dir);
          sshClientPeak.push(r.producerPeakMiB);
          seconds.ssh.push(r.seconds);
        } else {
          seconds.pipe.push((await runInto('/bin/bash', ['-c', command(BYTES)], dir)).seconds);
        }
        progress(`block ${block + 1}/${BLOCKS} ${way}: ${round(seconds[way].at(-1)!, 2)} s, ${round(BYTES / 1e6 / seconds[way].at(-1)!, 1)} MB/s`);
      }
    }
    const summary = (way: Way) => {
      const s = median(seconds[way]);
      return { seconds: round(s), mb_per_s: round(BYTES / 1e6 / s, 1), blocks_s: seconds[way].map((x) => round(x)) };
    };
    const troupe = summary('troupe');
    const ssh = summary('ssh');
    const pipe = summary('pipe');
    const peaks = { manager: peakMiB(manager.pid), worker: peakMiB(worker.pid), spawner: peakMiB(spawnerPid), client: Math.max(...clientPeak) };
    return {
      bench: 'output',
      node: process.version,
      cpus: os.availableParallelism(),
      load1_at_start: round(os.loadavg()[0]!, 2),
      bytes: BYTES,
      blocks: BLOCKS,
      consumer: 'wc -c',
      troupe,
      ssh,
      pipe,
      troupe_vs_ssh: round(troupe.mb_per_s / ssh.mb_per_s),
      troupe_vs_pipe: round(troupe.mb_per_s / pipe.mb_per_s),
      ssh_vs_pipe: round(ssh.mb_per_s / pipe.mb_per_s),
      targets: { troupe_vs_ssh: 1, moonshot_troupe_vs_pipe: 0.5 },
      meets_target: troupe.mb_per_s >= ssh.mb_per_s,
      meets_moonshot: troupe.mb_per_s >= pipe.mb_per_s / 2,
      // VmHWM: manager, worker and spawner over the whole run; the client the largest of its runs.
      peak_rss_mib: { ...peaks, ssh_client: Math.max(...sshClientPeak) },
      // CPU seconds of each troupe process per troupe run (median).
      troupe_cpu_s_per_run: Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, round(median(v), 2)])),
      duration_s: round((Date.now() - started) / 1000, 1),
    };
  } finally {
    clearTimeout(watchdog);
    for (const d of daemons.reverse()) await d.stop().catch(() => d.kill());
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  (result) => {
    process.stdout.write(`${JSON.stringify(result)}\n`);
    process.exit(0);
  },
  (err: Error) => {
    progress('failed:', err.stack ?? err);
    process.exit(1);
  },
);
