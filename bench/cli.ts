/**
 * CLI start-up benchmark: `npm run bench:cli`, or `node dist/bench/cli.js`.
 *
 * How long a person waits for the `troupe` command, end to end (spawned → exited, its output read),
 * beside what the same machine does without troupe, in one run:
 *   - node: `node -e 0`, the floor of any Node program;
 *   - help: `troupe --help`;
 *   - run: a one-shot `troupe run 127.0.0.1:PORT -- true` as client-1, against a `troupe manager
 *     --no-repl --local-workers 1` this bench starts (real mutual TLS on loopback, certificates made
 *     into a temp dir), i.e. connect, submit, the task on worker-1, its end, exit;
 *   - ssh: `ssh -p PORT root@127.0.0.1 true` over a multiplexed connection (ControlMaster, opened
 *     before measuring), to an sshd this bench starts on a port from the OS with a temp host key and
 *     authorized key (as test/fixtures/netns-hosts.ts does). Without `ssh` and `sshd` the row is
 *     absent and the JSON says why.
 * The ways are alternated, one run of each per round in a rotating order, so the machine's noise
 * falls on all alike. Each run must exit 0 (and `run` print nothing), or the bench fails.
 *
 * Targets from the issue: `troupe --help` within 0.1 s of `node -e 0`; the one-shot run ≤ 0.3 s.
 * Prints one JSON object on stdout (medians, min, max in ms, ratios to node and to ssh, and the
 * differences the targets are about); progress on stderr.
 *
 * Knobs (environment): BENCH_CLI_N (counted runs of each way, default 20), BENCH_CLI_WARMUP (runs
 * of each way first, not counted, 2), BENCH_CLI_BIN (the troupe.js to measure, default this
 * build's: e.g. another build's dist/bin/troupe.js to measure it beside this one's JSON).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { generateCertificates } from '../certs/index.js';
import { prepareSshd, SSHD } from './bench-sshd.js';
import { envInt, median, nowMs, progressTo, roundTo } from './bench-util.js';

const N = envInt('BENCH_CLI_N', 20);
const WARMUP = Number(process.env.BENCH_CLI_WARMUP ?? 2);
const HERE = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.resolve(process.env.BENCH_CLI_BIN ?? path.join(HERE, '..', 'bin', 'troupe.js'));
/** Targets from the issue, in ms. */
const HELP_OVER_NODE_TARGET_MS = 100;
const RUN_TARGET_MS = 300;
const START_TIMEOUT_MS = 30_000;
/** A run that takes longer is stuck: the bench fails instead of waiting for ever. */
const RUN_TIMEOUT_MS = 30_000;

const progress = progressTo('bench:cli');
const round = (x: number): number => roundTo(x, 1);

interface Way {
  name: string;
  command: string;
  args: string[];
  /** What stdout must be, when it matters. */
  stdout?: string;
}

/** Spawns, reads everything, resolves with the wall time in ms once it exited (status 0 or throws). */
function timeOnce(way: Way): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = nowMs();
    const child = spawn(way.command, way.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      const ms = nowMs() - t0;
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`${way.name}: exit ${code ?? signal}: ${err.trim().slice(0, 500)}`));
      if (way.stdout !== undefined && out !== way.stdout) return reject(new Error(`${way.name}: stdout ${JSON.stringify(out.slice(0, 200))}, expected ${JSON.stringify(way.stdout)}`));
      resolve(ms);
    });
  });
}

function onPath(command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Resolves once the child printed a line matching `pattern` on stdout or stderr; the match. */
function waitForLine(child: ChildProcess, pattern: RegExp, what: string): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`${what}: not ready within ${START_TIMEOUT_MS} ms: ${seen.slice(-1000)}`)), START_TIMEOUT_MS);
    const onLine = (line: string) => {
      seen += `${line}\n`;
      const m = pattern.exec(line);
      if (!m) return;
      clearTimeout(timer);
      resolve(m);
    };
    for (const stream of [child.stdout, child.stderr]) if (stream) readline.createInterface({ input: stream }).on('line', onLine);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code}) before it was ready: ${seen.slice(-1000)}`));
    });
  });
}

async function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** sshd on a free loopback port, and the ssh arguments of a multiplexed connection to it (opened here). */
async function startSsh(dir: string): Promise<{ sshd: ChildProcess; args: string[] } | { absent: string }> {
  if (!onPath('ssh') || !onPath('ssh-keygen')) return { absent: 'no ssh or ssh-keygen on PATH' };
  if (!fs.existsSync(SSHD)) return { absent: `no ${SSHD}` };
  const { dir: sshDir, port, clientKey, knownHosts, sshdArgs } = await prepareSshd(dir);
  const user = os.userInfo().username;
  const sshd = spawn(SSHD, sshdArgs, { stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    await waitForLine(sshd, /Server listening on/, 'sshd');
  } catch (err) {
    await stop(sshd);
    return { absent: `sshd did not start: ${(err as Error).message.slice(0, 300)}` };
  }
  const args = [
    '-p', String(port), '-i', clientKey, '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-o', `UserKnownHostsFile=${knownHosts}`,
    '-o', 'StrictHostKeyChecking=accept-new', '-o', 'ControlMaster=auto', '-o', `ControlPath=${path.join(sshDir, 'cm-%C')}`, '-o', 'ControlPersist=600',
    `${user}@127.0.0.1`,
  ];
  // The master: the first `ssh … true` opens it and leaves it running (ControlPersist).
  await timeOnce({ name: 'ssh master', command: 'ssh', args: [...args, 'true'] });
  return { sshd, args };
}

interface Row {
  median_ms: number;
  min_ms: number;
  max_ms: number;
  n: number;
}

function row(xs: number[]): Row {
  return { median_ms: round(median(xs)), min_ms: round(Math.min(...xs)), max_ms: round(Math.max(...xs)), n: xs.length };
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-bench-cli-'));
  let manager: ChildProcess | undefined;
  let ssh: Awaited<ReturnType<typeof startSsh>> | undefined;
  try {
    const certs = path.join(dir, 'certs');
    generateCertificates({ out: certs, workers: 1, clients: 1 });
    progress(`starting a manager with one local worker (${BIN})`);
    manager = spawn(process.execPath, [BIN, 'manager', '--no-repl', '--host', '127.0.0.1', '--port', '0', '--local-workers', '1', '--certs', certs, '--state-dir', path.join(dir, 'state')], {
      cwd: dir,
      env: { ...process.env, TROUPE_LOG: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const listening = waitForLine(manager, /listening on wss:\/\/127\.0\.0\.1:(\d+)/, 'troupe manager');
    const joined = waitForLine(manager, /local workers joined/, 'troupe manager');
    const port = Number((await listening)[1]);
    await joined;
    ssh = await startSsh(dir);
    if ('absent' in ssh) progress(`ssh: absent (${ssh.absent})`);

    const ways: Way[] = [
      { name: 'node', command: process.execPath, args: ['-e', '0'] },
      { name: 'help', command: process.execPath, args: [BIN, '--help'] },
      { name: 'run', command: process.execPath, args: [BIN, 'run', `127.0.0.1:${port}`, '--certs', certs, '--name', 'client-1', '--', 'true'], stdout: '' },
      ...('args' in ssh ? [{ name: 'ssh', command: 'ssh', args: [...ssh.args, 'true'], stdout: '' }] : []),
    ];
    const samples = new Map<string, number[]>(ways.map((w) => [w.name, []]));
    for (let round = 0; round < WARMUP + N; round++) {
      // A rotating order: no way always runs first, or right after the same other.
      for (let k = 0; k < ways.length; k++) {
        const way = ways[(round + k) % ways.length]!;
        const ms = await timeOnce(way);
        if (round >= WARMUP) samples.get(way.name)!.push(ms);
      }
      if (round >= WARMUP && (round - WARMUP + 1) % 5 === 0) progress(`${round - WARMUP + 1}/${N} rounds`);
    }

    const rows = Object.fromEntries([...samples].map(([name, xs]) => [name, row(xs)]));
    const med = (name: string) => rows[name]!.median_ms;
    const ratios = (name: string) => ({
      vs_node: roundTo(med(name) / med('node'), 2),
      ...(rows.ssh ? { vs_ssh: roundTo(med(name) / med('ssh'), 2) } : {}),
    });
    const result = {
      bench: 'cli',
      n: N,
      warmup: WARMUP,
      bin: BIN,
      node: process.version,
      cpus: os.availableParallelism(),
      loadavg_1m: roundTo(os.loadavg()[0]!, 2),
      wall_ms: rows,
      ssh: 'args' in ssh ? 'sshd started by the bench on loopback, multiplexed connection (ControlMaster)' : `absent: ${ssh.absent}`,
      ratios: { help: ratios('help'), run: ratios('run'), ...(rows.ssh ? { ssh: { vs_node: roundTo(med('ssh') / med('node'), 2) } } : {}) },
      targets: {
        help_minus_node_ms: round(med('help') - med('node')),
        help_minus_node_target_ms: HELP_OVER_NODE_TARGET_MS,
        run_ms: med('run'),
        run_target_ms: RUN_TARGET_MS,
      },
    };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } finally {
    if (ssh && 'args' in ssh) {
      try {
        execFileSync('ssh', [...ssh.args.slice(0, -1), '-O', 'exit', ssh.args[ssh.args.length - 1]!], { stdio: 'ignore' });
      } catch {
        // The master is gone already.
      }
      await stop(ssh.sshd);
    }
    await stop(manager);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
