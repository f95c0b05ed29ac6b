/**
 * The spawner process (actors/process/spawner.ts): what it adds beyond runCommand's guarantees, which
 * run-command.test.ts checks both ways. That bash is forked there; that its death, its close() and
 * its parent's SIGKILL each end the commands it started instead of orphaning them; that output
 * faster than the relay is read here from the pipes it hands over, with every guarantee kept.
 */
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { runCommand, type RunningCommand } from '../../../actors/process/run-command.js';
import { TaskDirs } from '../../../actors/process/task-dirs.js';
import { Spawner, type OutputStream } from '../../../actors/process/spawner.js';
import { buildSpawnHelper } from '../../../actors/process/spawn-helper-build.js';
import { isFromSpawnerOrBatch, isToSpawner, PID_FD, PID_RECORD_BYTES, type Batch, type FromSpawner } from '../../../protocols/spawner.js';
import { isGone, parentOf, until } from '../../fixtures/processes.js';

const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** Runs `command` through `spawner`; resolves its stdout's first line once printed. */
function start(spawner: Spawner, dirs: TaskDirs, command: string): { run: RunningCommand; firstLine: Promise<string>; stdout: () => string } {
  let out = '';
  let resolveLine!: (line: string) => void;
  const firstLine = new Promise<string>((resolve) => (resolveLine = resolve));
  const run = runCommand({
    command,
    spawner,
    dirs,
    onOutput: (stream, data) => {
      if (stream !== 'stdout') return;
      out += data.toString();
      if (out.includes('\n')) resolveLine(out.slice(0, out.indexOf('\n')));
    },
  });
  return { run, firstLine, stdout: () => out };
}

// Each guarantee of both spawners: the Node one (spawner-process.ts) and the native one (spawn-helper.c).
for (const kind of ['node', 'native'] as const) describe(`actors: Spawner (${kind})`, function () {
  this.timeout(20_000);

  before(() => {
    if (kind === 'native') expect(buildSpawnHelper().built, 'the native spawner built (a C compiler is needed)').to.equal(true);
  });

  let tmpRoot: string;
  let dirs: TaskDirs;
  let spawner: Spawner | undefined;
  let pids: number[];
  let children: ChildProcess[];

  beforeEach(() => {
    tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-spawner-test-'));
    dirs = new TaskDirs(tmpRoot, { ahead: 0 });
    pids = [];
    children = [];
  });

  afterEach(() => {
    spawner?.close();
    spawner = undefined;
    for (const child of children) child.kill('SIGKILL');
    const alive = pids.filter((pid) => !isGone(pid));
    for (const pid of alive) process.kill(pid, 'SIGKILL');
    dirs.close();
    fs.rmSync(tmpRoot, { recursive: true, force: true });
    expect(alive, 'processes still alive after the test').to.deep.equal([]);
  });

  it('forks bash in the spawner process, not in ours', async () => {
    spawner = new Spawner({ kind });
    const { run, firstLine } = start(spawner, dirs, 'echo $PPID');
    expect(Number(await firstLine)).to.equal(spawner.pid);
    expect(spawner.pid).to.not.equal(process.pid);
    expect((await run.result).exitCode).to.equal(0);
  });

  it('a spawner killed under a command: the group is killed, the result says why, the next command gets a new spawner', async () => {
    spawner = new Spawner({ kind });
    const first = spawner.pid!;
    const { run, firstLine } = start(spawner, dirs, 'sleep 100 & echo $!; wait');
    const sleep = Number(await firstLine);
    pids.push(sleep, first);
    process.kill(first, 'SIGKILL');
    const result = await run.result;
    expect(result).to.include({ outcome: 'exited', exitCode: null, signal: 'SIGKILL', error: 'the spawner process ended (SIGKILL)' });
    expect(fs.existsSync(result.cwd)).to.equal(false);
    await until(() => isGone(sleep), 'the sleep to be killed with its group');

    const next = start(spawner, dirs, 'echo $PPID');
    const parent = Number(await next.firstLine);
    expect((await next.run.result).exitCode).to.equal(0);
    expect(parent).to.equal(spawner.pid);
    expect(parent).to.not.equal(first);
  });

  it('a spawner killed under several commands: every group it started is killed, each command says it was lost', async () => {
    spawner = new Spawner({ kind });
    const dead = spawner.pid!;
    const runs = [0, 1, 2].map(() => start(spawner!, dirs, 'sleep 100 & echo $!; wait'));
    const sleeps = (await Promise.all(runs.map((r) => r.firstLine))).map(Number);
    pids.push(dead, ...sleeps);
    process.kill(dead, 'SIGKILL');
    for (const { run } of runs) {
      expect(await run.result).to.include({ outcome: 'exited', exitCode: null, signal: 'SIGKILL', error: 'the spawner process ended (SIGKILL)' });
    }
    await until(() => sleeps.every(isGone), 'every sleep to be killed with its group');
  });

  it('a spawner killed before it started a command: the command fails to start, and says why', async () => {
    spawner = new Spawner({ kind });
    process.kill(spawner.pid!, 'SIGKILL'); // before the request below can reach it
    const { run } = start(spawner, dirs, 'echo never');
    const result = await run.result;
    expect(result).to.include({ outcome: 'failed-to-start', error: 'cannot start /bin/bash: the spawner process ended (SIGKILL)' });
    expect(run.pid).to.equal(undefined);
    expect(fs.existsSync(result.cwd)).to.equal(false);
  });

  it('close() ends the spawner and what it still runs; a command after it fails to start', async () => {
    spawner = new Spawner({ kind });
    const pid = spawner.pid!;
    pids.push(pid);
    const { run, firstLine } = start(spawner, dirs, 'trap "" TERM; sleep 100 & echo $!; wait');
    const sleep = Number(await firstLine);
    pids.push(sleep);
    spawner.close();
    expect(await run.result).to.include({ exitCode: null, signal: 'SIGKILL', error: 'the worker stopped' });
    await until(() => isGone(sleep) && isGone(pid), 'the sleep and the spawner to be gone');
    const after = await start(spawner, dirs, 'echo never').run.result;
    expect(after).to.include({ outcome: 'failed-to-start', error: 'the worker is stopping' });
  });

  it('a parent SIGKILLed: its spawner kills the commands it started, then exits', async () => {
    // A worker SIGKILLed mid-task used to leave its commands running, orphaned.
    const script = `
      const { Spawner } = await import(${JSON.stringify(path.join(DIST, 'actors', 'process', 'spawner.js'))});
      const { runCommand } = await import(${JSON.stringify(path.join(DIST, 'actors', 'process', 'run-command.js'))});
      const { TaskDirs } = await import(${JSON.stringify(path.join(DIST, 'actors', 'process', 'task-dirs.js'))});
      const spawner = new Spawner({ kind: '${kind}' });
      runCommand({ command: 'sleep 100 & echo $!; wait', spawner, dirs: new TaskDirs(${JSON.stringify(tmpRoot)}, { ahead: 0 }),
        onOutput: (stream, data) => process.stdout.write(spawner.pid + ' ' + data) });`;
    const parent = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(parent);
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      parent.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(out.slice(0, out.indexOf('\n')));
      });
      parent.once('exit', (code) => reject(new Error(`the parent exited (${code}) before printing: ${out}`)));
    });
    const [spawnerPid, sleep] = line.split(' ').map(Number) as [number, number];
    pids.push(spawnerPid, sleep);
    expect(parentOf(spawnerPid)).to.equal(parent.pid);
    parent.kill('SIGKILL');
    await until(() => isGone(sleep) && isGone(spawnerPid), 'the sleep and the spawner to be gone after the parent');
  });

  describe('output faster than the relay: the pipes handed over', () => {
    const MiB = 1024 * 1024;
    /** A pipe read is at most 64 KiB, so a relayed chunk is too; a bigger one was read here. */
    const PIPE_READ = 64 * 1024;

    it('every byte of both streams arrives in order, in chunks larger than one pipe read', async () => {
      spawner = new Spawner({ kind });
      const chunks: { stream: OutputStream; data: Buffer; seq: number }[] = [];
      const run = runCommand({
        command: 'seq 1 3000000; seq 1 20000 >&2; echo end',
        spawner,
        dirs,
        onOutput: (stream, data, seq) => chunks.push({ stream, data: Buffer.from(data), seq }),
      });
      const result = await run.result;
      expect(result).to.include({ outcome: 'exited', exitCode: 0 });
      expect(chunks.map((c) => c.seq)).to.deep.equal(chunks.map((_, i) => i));
      const text = (stream: OutputStream) => Buffer.concat(chunks.filter((c) => c.stream === stream).map((c) => c.data)).toString();
      const seq = (n: number) => Array.from({ length: n }, (_, i) => `${i + 1}\n`).join('');
      expect(text('stdout')).to.equal(`${seq(3000000)}end\n`);
      expect(text('stderr')).to.equal(seq(20000));
      expect(result.stdoutBytes).to.equal(text('stdout').length);
      expect(Math.max(...chunks.map((c) => c.data.length)), 'the largest chunk').to.be.above(PIPE_READ);
    });

    it('a paused consumer pauses the command: it blocks on its pipe, and on resume every byte arrives', async () => {
      spawner = new Spawner({ kind });
      const progress = path.join(tmpRoot, 'progress');
      let bytes = 0;
      let largest = 0;
      let paused!: () => void;
      const pausedNow = new Promise<void>((resolve) => (paused = resolve));
      const run: RunningCommand = runCommand({
        command: `for i in $(seq 64); do head -c ${MiB} /dev/zero; echo $i > ${progress}; done`,
        spawner,
        dirs,
        onOutput: (_, data) => {
          bytes += data.length;
          largest = Math.max(largest, data.length);
          if (bytes > 8 * MiB && largest > PIPE_READ && bytes - data.length <= 8 * MiB) {
            run.pause();
            paused();
          }
        },
      });
      await pausedNow;
      const written = () => Number(fs.readFileSync(progress, 'utf8'));
      // Paused: the command gets no further than the pipe and our one read buffer hold.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const atPause = written();
      const delivered = bytes;
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(written(), 'MiB written a while after the pause').to.equal(atPause);
      expect(atPause, 'MiB written while paused').to.be.below(16);
      expect(bytes - delivered).to.equal(0);
      run.resume();
      const result = await run.result;
      expect(result).to.include({ outcome: 'exited', exitCode: 0, stdoutBytes: 64 * MiB });
      expect(bytes).to.equal(64 * MiB);
    });

    it('abandons a handed-over pipe after drainTimeoutMs when a process that left the group holds it', async () => {
      spawner = new Spawner({ kind });
      const ack = path.join(tmpRoot, 'ack');
      execFileSync('mkfifo', [ack]);
      const chunks: Buffer[] = [];
      const run = runCommand({
        command: `setsid bash -c 'echo $$; echo ready >"$ACK"; exec sleep 100' & read <"$ACK"; head -c ${16 * MiB} /dev/zero; echo hi`,
        env: { ACK: ack },
        drainTimeoutMs: 200,
        spawner,
        dirs,
        onOutput: (stream, data) => void (stream === 'stdout' && chunks.push(Buffer.from(data))),
      });
      const result = await run.result;
      const out = Buffer.concat(chunks);
      const escaped = Number(out.subarray(0, out.indexOf(10)).toString());
      pids.push(escaped);
      expect(result).to.include({ outcome: 'exited', exitCode: 0, outputAbandoned: true });
      expect(out.length).to.equal(`${escaped}\n`.length + 16 * MiB + 3);
      expect(out.subarray(-3).toString()).to.equal('hi\n');
      expect(Math.max(...chunks.map((c) => c.length)), 'the largest chunk').to.be.above(PIPE_READ);
      process.kill(escaped, 'SIGKILL');
      await until(() => isGone(escaped), 'the escaped process to die');
    });

    it('a spawner killed after handing the pipes over: the group is killed, each stream closed once, the loss said', async () => {
      spawner = new Spawner({ kind });
      const closed: OutputStream[] = [];
      let bytes = 0;
      let largest = 0;
      let lost = '';
      let exit: unknown;
      let handedOver!: () => void;
      const bigChunk = new Promise<void>((resolve) => (handedOver = resolve));
      const handle = spawner.launch(
        { command: 'yes', cwd: tmpRoot, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } },
        {
          failed: (error) => expect.fail(error),
          data: (_, data) => {
            bytes += data.length;
            largest = Math.max(largest, data.length);
            if (largest > PIPE_READ) handedOver();
          },
          closed: (stream) => closed.push(stream),
          exit: (code, signal) => void (exit = { code, signal }),
          lost: (error) => void (lost = error),
        },
      );
      await bigChunk;
      const pid = handle.pid()!;
      expect(pid).to.be.a('number');
      pids.push(pid, spawner.pid!);
      process.kill(spawner.pid!, 'SIGKILL');
      await until(() => closed.length === 2 && exit !== undefined, 'both streams closed and the exit');
      await until(() => isGone(pid), 'yes, killed with its group');
      // The readers' own close comes after the group's end: it must not say `closed` again.
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(closed.sort()).to.deep.equal(['stderr', 'stdout']);
      expect(exit).to.deep.equal({ code: null, signal: 'SIGKILL' });
      expect(lost).to.equal('the spawner process ended (SIGKILL)');
      expect(bytes).to.be.above(PIPE_READ);
      handle.abandon(); // after the end: nothing to do, and no throw
    });
  });

  // The Node spawner's own protocol (the native one's: spawn-helper.test.ts).
  if (kind === 'node') {
    /** Forks the spawner process as the worker does (spawner.ts), with its pid socket; collects what it sends. */
    function forkSpawner(): { proc: ChildProcess; received: (FromSpawner | Batch)[]; records: () => Buffer; flat: () => FromSpawner[] } {
      const proc = fork(path.join(DIST, 'actors', 'process', 'spawner-process.js'), [], {
        execArgv: [],
        serialization: 'advanced',
        stdio: ['ignore', 'ignore', 'inherit', 'ipc', 'pipe'],
      });
      children.push(proc);
      const received: (FromSpawner | Batch)[] = [];
      const recordChunks: Buffer[] = [];
      proc.stdio[PID_FD]!.on('data', (d: Buffer) => recordChunks.push(d));
      proc.on('message', (m: unknown) => {
        if (!isFromSpawnerOrBatch(m)) throw new Error(`not a message of the protocol: ${JSON.stringify(m)}`);
        received.push(m);
      });
      return { proc, received, records: () => Buffer.concat(recordChunks), flat: () => received.flatMap((r) => (r.t === 'batch' ? r.m : [r])) };
    }

    it("the spawner's messages of a command: its pid record, each stream's output before its end of file, one exit; several of one turn as a batch", async () => {
      // The protocol itself, with the spawner process as the worker forks it (spawner.ts).
      const { proc, received, records, flat: all } = forkSpawner();
      const cwd = dirs.take();
      const flat = await new Promise<FromSpawner[]>((resolve, reject) => {
        proc.once('exit', (code) => reject(new Error(`the spawner exited (${code})`)));
        proc.on('message', () => {
          if (all().filter((x) => x.t === 'eof').length === 2 && all().some((x) => x.t === 'exit')) resolve(all());
        });
        proc.send({ t: 'spawn', id: 7, command: 'echo $$; echo err >&2; exit 3', cwd, env: {} });
      });
      await dirs.discard(cwd);
      // Written before anything else of the task was sent: here by the first message.
      const record = records();
      expect(record.length).to.equal(PID_RECORD_BYTES);
      expect(record.readUInt32LE(0)).to.equal(7);
      const pid = record.readUInt32LE(4);
      pids.push(pid);
      proc.disconnect();
      for (const s of [0, 1] as const) {
        const out = flat.findIndex((x) => x.t === 'out' && x.s === s);
        const eof = flat.findIndex((x) => x.t === 'eof' && x.s === s);
        expect(out, `stream ${s}: output`).to.be.at.least(0);
        expect(eof, `stream ${s}: its end of file after its output`).to.be.greaterThan(out);
        expect(flat.filter((x) => x.t === 'eof' && x.s === s)).to.have.length(1);
      }
      expect(Buffer.concat(flat.flatMap((x) => (x.t === 'out' && x.s === 0 ? [x.d] : []))).toString()).to.equal(`${pid}\n`);
      expect(flat.filter((x) => x.t === 'exit')).to.deep.equal([{ t: 'exit', id: 7, code: 3, signal: null }]);
      // A batch holds two or more, never an `out` (those go at once).
      for (const r of received) if (r.t === 'batch') expect(r.m.length >= 2 && r.m.every((x) => x.t !== 'out' && x.t !== ('batch' as string))).to.equal(true);
    });

    it('a stop asked before the pid is known: a `signal` right behind its spawn reaches the command', async () => {
      // What a cancel right after the start does through a spawner (run-command.ts): both requests in flight at once.
      const { proc, records, flat } = forkSpawner();
      const cwd = dirs.take();
      await new Promise<void>((resolve, reject) => {
        proc.once('exit', (code) => reject(new Error(`the spawner exited (${code})`)));
        proc.on('message', () => void (flat().some((x) => x.t === 'exit') && resolve()));
        proc.send({ t: 'spawn', id: 3, command: 'exec sleep 100', cwd, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
        proc.send({ t: 'signal', id: 3, signal: 'SIGTERM' });
        proc.send({ t: 'signal', id: 99, signal: 'SIGKILL' }); // no such task: nothing
      });
      const record = records();
      pids.push(record.readUInt32LE(4));
      expect(record.readUInt32LE(0)).to.equal(3);
      expect(flat().filter((x) => x.t === 'exit')).to.deep.equal([{ t: 'exit', id: 3, code: null, signal: 'SIGTERM' }]);
      proc.disconnect();
      await dirs.discard(cwd);
    });

    it('the guard takes a batch of valid messages and refuses one with an invalid or nested member', () => {
      const exit = { t: 'exit', id: 1, code: 0, signal: null };
      const eof = { t: 'eof', id: 1, s: 0 };
      expect(isFromSpawnerOrBatch({ t: 'batch', m: [eof, { ...eof, s: 1 }, exit] })).to.equal(true);
      expect(isFromSpawnerOrBatch(exit)).to.equal(true);
      expect(isFromSpawnerOrBatch({ t: 'batch', m: [eof, { ...eof, s: 2 }] })).to.equal(false);
      expect(isFromSpawnerOrBatch({ t: 'batch', m: [{ t: 'batch', m: [eof] }] })).to.equal(false);
      expect(isFromSpawnerOrBatch({ t: 'batch', m: eof })).to.equal(false);
      // A pipe carries its descriptor as the message's handle, so it never goes in a batch.
      expect(isFromSpawnerOrBatch({ t: 'batch', m: [{ t: 'pipe', id: 1, s: 0 }, exit] })).to.equal(false);
      // No message says a command started (its pid goes as a record, PID_FD).
      expect(isFromSpawnerOrBatch({ t: 'started', id: 1, pid: 5 })).to.equal(false);
      expect(isToSpawner({ t: 'signal', id: 1, signal: 'SIGTERM' })).to.equal(true);
      expect(isToSpawner({ t: 'signal', id: 1, signal: 'SIGHUP' })).to.equal(false);
    });
  }
});
