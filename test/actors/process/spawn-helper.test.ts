/**
 * The native spawner (actors/process/spawn-helper.c) driven directly with its frames
 * (protocols/spawner-frames.ts), as the worker's channel (native-channel.ts) drives it: the order of
 * a command's messages, a stop before the pid is known, and what it does with frames that are not
 * the protocol's. What it shares with the Node spawner (its death, the worker's, hand-over, output in
 * order) is spawner.test.ts's and run-command.test.ts's, run against both.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { buildSpawnHelper, SPAWN_HELPER_BINARY } from '../../../actors/process/spawn-helper-build.js';
import { chooseSpawner, Spawner, SPAWNER_ENV } from '../../../actors/process/spawner.js';
import { ErrorCodes } from '../../../src/errors.js';
import { expectCode } from '../../fixtures/expect-code.js';
import { encodeToHelper, FrameDecoder, MAX_TO_HELPER_FRAME, type FromHelper, type Taken } from '../../../protocols/spawner-frames.js';
import type { ToSpawner } from '../../../protocols/spawner.js';
import { isGone, until } from '../../fixtures/processes.js';

const SIGNALS: Record<number, string> = Object.fromEntries(Object.entries(os.constants.signals).map(([name, n]) => [n, name]));
const PATH = process.env.PATH ?? '/usr/bin:/bin';

interface Helper {
  proc: ChildProcess;
  frames: FromHelper[];
  records: () => Buffer;
  stderr: () => string;
  send(m: ToSpawner | Taken): void;
  exited: Promise<{ code: number | null; signal: string | null }>;
}

describe('actors: the native spawner (spawn-helper.c)', function () {
  this.timeout(20_000);

  let helpers: ChildProcess[];
  let pids: number[];
  let cwd: string;

  before(() => {
    expect(buildSpawnHelper().built, 'the native spawner built (a C compiler is needed)').to.equal(true);
  });

  beforeEach(() => {
    helpers = [];
    pids = [];
    cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-spawn-helper-test-'));
  });

  afterEach(() => {
    for (const h of helpers) h.kill('SIGKILL');
    const alive = pids.filter((pid) => !isGone(pid));
    for (const pid of alive) process.kill(pid, 'SIGKILL');
    fs.rmSync(cwd, { recursive: true, force: true });
    expect(alive, 'processes still alive after the test').to.deep.equal([]);
  });

  /** Starts the helper as native-channel.ts does, its stderr captured. */
  function startHelper(): Helper {
    const proc = spawn(SPAWN_HELPER_BINARY, [], { env: {}, stdio: ['pipe', 'pipe', 'pipe', 'pipe'] });
    helpers.push(proc);
    const frames: FromHelper[] = [];
    const decoder = new FrameDecoder(SIGNALS, (m) => frames.push(m));
    proc.stdout!.on('data', (d: Buffer) => expect(decoder.push(d), decoder.broken).to.equal(true));
    const records: Buffer[] = [];
    (proc.stdio[3] as NodeJS.ReadableStream).on('data', (d: Buffer) => records.push(d));
    let err = '';
    proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    proc.stdin!.on('error', () => {});
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
    return {
      proc,
      frames,
      records: () => Buffer.concat(records),
      stderr: () => err,
      send: (m) => proc.stdin!.write(encodeToHelper(m) as Buffer),
      exited,
    };
  }

  const spawnFrame = (id: number, command: string): ToSpawner => ({ t: 'spawn', id, command, cwd, env: { PATH } });
  const exitOf = (h: Helper, id: number) => h.frames.find((f) => f.t === 'exit' && f.id === id);

  it("a command's messages: its pid record first, each stream's output before its end of file, one exit with its code", async () => {
    const h = startHelper();
    h.send(spawnFrame(7, 'echo $$; echo "$PWD"; echo err >&2; exit 3'));
    await until(() => exitOf(h, 7) !== undefined && h.frames.filter((f) => f.t === 'eof').length === 2, 'the exit and both ends of file');
    const record = h.records();
    expect(record.length).to.equal(8);
    expect(record.readUInt32LE(0)).to.equal(7);
    const pid = record.readUInt32LE(4);
    pids.push(pid);
    const text = (s: 0 | 1) => Buffer.concat(h.frames.flatMap((f) => (f.t === 'out' && f.s === s ? [f.d] : []))).toString();
    expect(text(0)).to.equal(`${pid}\n${fs.realpathSync(cwd)}\n`);
    expect(text(1)).to.equal('err\n');
    for (const s of [0, 1] as const) {
      const lastOut = h.frames.findLastIndex((f) => f.t === 'out' && f.s === s);
      const eof = h.frames.findIndex((f) => f.t === 'eof' && f.s === s);
      expect(eof, `stream ${s}: its end of file after its output`).to.be.greaterThan(lastOut);
    }
    expect(h.frames.filter((f) => f.t === 'exit')).to.deep.equal([{ t: 'exit', id: 7, code: 3, signal: null }]);
    h.proc.stdin!.end();
    expect(await h.exited).to.deep.equal({ code: 0, signal: null });
  });

  it('a stop asked before the pid is known: a `signal` right behind its spawn reaches the command; one for no task does nothing', async () => {
    const h = startHelper();
    h.send(spawnFrame(3, 'exec sleep 100'));
    h.send({ t: 'signal', id: 3, signal: 'SIGTERM' });
    h.send({ t: 'signal', id: 99, signal: 'SIGKILL' });
    await until(() => exitOf(h, 3) !== undefined, 'the exit');
    pids.push(h.records().readUInt32LE(4));
    expect(exitOf(h, 3)).to.deep.equal({ t: 'exit', id: 3, code: null, signal: 'SIGTERM' });
    expect(h.stderr()).to.equal('');
  });

  it('a frame it cannot use (an unknown type, a bad field) is said on stderr and skipped; the next spawn runs', async () => {
    const h = startHelper();
    const unknown = Buffer.from([2, 0, 0, 0, 99, 0]); // length 2, type 99
    const badSignal = encodeToHelper({ t: 'signal', id: 1, signal: 'SIGTERM' }) as Buffer;
    badSignal[9] = 1; // SIGHUP: not one it takes
    const badVariable = Buffer.concat([Buffer.from([0, 0, 0, 0, 1, 5, 0, 0, 0, 1, 0, 0, 0]), Buffer.from(`${cwd}\0true\0NOEQUALS\0`)]);
    badVariable.writeUInt32LE(badVariable.length - 4, 0);
    h.proc.stdin!.write(Buffer.concat([unknown, badSignal, badVariable]));
    h.send(spawnFrame(2, 'echo fine'));
    await until(() => exitOf(h, 2) !== undefined, 'the good spawn to exit');
    pids.push(h.records().readUInt32LE(4));
    expect(exitOf(h, 2)).to.deep.equal({ t: 'exit', id: 2, code: 0, signal: null });
    expect(h.frames.some((f) => f.id === 5)).to.equal(false); // the spawn with the bad variable did not run
    expect(h.stderr()).to.include('a bad frame from the worker (type 99, 2 bytes); skipped');
    expect(h.stderr()).to.include('a bad frame from the worker (type 4, 6 bytes); skipped');
    expect(h.stderr()).to.include('a spawn frame with a bad variable 0; skipped');
    expect(h.records().length).to.equal(8); // one command started
  });

  it('a length it cannot read past: it says so, SIGKILLs the group of every command it started, and exits 2', async () => {
    const h = startHelper();
    h.send(spawnFrame(1, 'sleep 100 & echo $!; wait'));
    await until(() => h.frames.some((f) => f.t === 'out' && f.id === 1), "the command's first line");
    const out = h.frames.find((f) => f.t === 'out' && f.id === 1) as { d: Uint8Array };
    const sleep = Number(Buffer.from(out.d).toString().trim());
    const bash = h.records().readUInt32LE(4);
    pids.push(sleep, bash);
    const huge = Buffer.alloc(5);
    huge.writeUInt32LE(MAX_TO_HELPER_FRAME + 1, 0);
    huge[4] = 1;
    h.proc.stdin!.write(huge);
    expect(await h.exited).to.deep.equal({ code: 2, signal: null });
    expect(h.stderr()).to.include(`a frame of ${MAX_TO_HELPER_FRAME + 1} bytes from the worker`);
    await until(() => isGone(sleep) && isGone(bash), 'the group to be killed');
  });

  it('a helper that sends what is not the protocol: the worker ends it, and the command it was given fails to start saying why', async () => {
    // A stand-in for a broken helper: it reads nothing and sends a frame of unknown type 9.
    const fake = path.join(cwd, 'fake-helper');
    fs.writeFileSync(fake, "#!/bin/bash\nprintf '\\x05\\x00\\x00\\x00\\x09\\x01\\x00\\x00\\x00'\nexec sleep 100\n", { mode: 0o755 });
    const spawner = new Spawner({ kind: 'native', binary: fake });
    pids.push(spawner.pid!);
    const failed = await new Promise<string>((resolve, reject) =>
      spawner.launch(
        { command: 'echo never', cwd, env: { PATH } },
        { failed: resolve, data: () => reject(new Error('output')), closed: () => {}, exit: () => reject(new Error('an exit')), lost: reject },
      ),
    );
    expect(failed).to.equal('cannot start /bin/bash: the spawner process sent a frame of unknown type 9, and was ended');
    await until(() => isGone(pids[0]!), 'the helper to be killed');
    spawner.close();
  });

  it('the choice: native when built, the Node spawner when not (saying why); TROUPE_SPAWNER or `kind` forces either; a bad value is TROUPE_E_SETTING', () => {
    const saved = process.env[SPAWNER_ENV];
    const missing = path.join(cwd, 'not-built');
    try {
      delete process.env[SPAWNER_ENV];
      expect(chooseSpawner()).to.include({ kind: 'native', why: `${SPAWN_HELPER_BINARY} is built` });
      expect(chooseSpawner({ binary: missing })).to.include({ kind: 'node', why: `${missing} is not built (no C compiler at build time)` });
      // Built elsewhere (another architecture, a newer glibc): there, executable, and it cannot run.
      const foreign = path.join(cwd, 'foreign-helper');
      fs.writeFileSync(foreign, "#!/bin/sh\necho 'version GLIBC_2.99 not found' >&2\nexit 1\n", { mode: 0o755 });
      expect(chooseSpawner({ binary: foreign })).to.include({ kind: 'node', why: `${foreign} does not run here (exit code 1: version GLIBC_2.99 not found)` });
      expect(chooseSpawner({ kind: 'node' })).to.include({ kind: 'node', why: 'asked for' });
      process.env[SPAWNER_ENV] = 'node';
      expect(chooseSpawner()).to.include({ kind: 'node', why: 'TROUPE_SPAWNER=node' });
      process.env[SPAWNER_ENV] = 'native';
      expect(chooseSpawner()).to.include({ kind: 'native', why: 'TROUPE_SPAWNER=native' });
      expectCode(() => chooseSpawner({ binary: missing }), ErrorCodes.SETTING);
      process.env[SPAWNER_ENV] = 'fast';
      expectCode(() => chooseSpawner(), ErrorCodes.SETTING);
    } finally {
      if (saved === undefined) delete process.env[SPAWNER_ENV];
      else process.env[SPAWNER_ENV] = saved;
    }
  });

  it("the worker's decoder refuses what is not the protocol's: an unknown type, a bad exit, a frame too long", () => {
    const decode = (b: Buffer) => {
      const got: FromHelper[] = [];
      const decoder = new FrameDecoder(SIGNALS, (m) => got.push(m));
      return { ok: decoder.push(b), got, why: decoder.broken };
    };
    const frame = (type: number, body: number[]) => Buffer.from([1 + body.length, 0, 0, 0, type, ...body]);
    // exit of task 1: code 0, no signal; then one split across two pushes
    const exit = frame(5, [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(decode(exit)).to.deep.equal({ ok: true, got: [{ t: 'exit', id: 1, code: 0, signal: null }], why: '' });
    const got: FromHelper[] = [];
    const split = new FrameDecoder(SIGNALS, (m) => got.push(m));
    expect(split.push(exit.subarray(0, 7)) && split.push(exit.subarray(7))).to.equal(true);
    expect(got).to.have.length(1);
    expect(decode(frame(9, [1, 0, 0, 0]))).to.include({ ok: false, why: 'a frame of unknown type 9' });
    // both a code and a signal; a signal number nobody has
    expect(decode(frame(5, [1, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0])).why).to.equal('a bad exit frame');
    expect(decode(frame(5, [1, 0, 0, 0, 255, 255, 255, 255, 250, 0, 0, 0])).why).to.equal('a bad exit frame');
    expect(decode(frame(3, [1, 0, 0, 0, 2])).why).to.equal('a bad eof frame');
    expect(decode(frame(2, [0, 0, 0, 0, 0, 65])).why).to.equal('a frame of type 2 without an id');
    expect(decode(Buffer.from([0, 0, 16, 0])).why).to.equal('a frame of 1048576 bytes');
    // and the worker's encoder refuses what the helper would (a NUL in a string)
    expect(encodeToHelper({ t: 'spawn', id: 1, command: 'a\0b', cwd, env: {} })).to.be.a('string');
  });
});
