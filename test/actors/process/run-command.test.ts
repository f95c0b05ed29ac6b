/**
 * runCommand against a real /bin/bash. No test sleeps to synchronise: each waits for output, for
 * `result`, or for a process to be gone. Every process a test starts prints its pid, and each test
 * ends by checking that all of them are dead and that its tmpRoot (the root of the TaskDirs every
 * command takes its directory from) is empty again once the TaskDirs is closed.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import {
  DEFAULT_KILL_GRACE_MS,
  INHERITED_ENV_KEYS,
  TASK_DIR_PREFIX,
  runCommand,
  type CommandResult,
  type OutputStream,
  type RunCommandOptions,
  type RunningCommand,
} from '../../../actors/process/run-command.js';
import { Spawner } from '../../../actors/process/spawner.js';
import { buildSpawnHelper } from '../../../actors/process/spawn-helper-build.js';
import { TaskDirs } from '../../../actors/process/task-dirs.js';
import { ErrorCodes, SettingError } from '../../../src/errors.js';
import { expectCode } from '../../fixtures/expect-code.js';
import { isGone, until } from '../../fixtures/processes.js';

const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

interface Chunk {
  stream: OutputStream;
  text: string;
  seq: number;
}

/** A started command and everything it printed, with a way to wait for a line of output. */
interface Run {
  running: RunningCommand;
  chunks: Chunk[];
  stdout(): string;
  stderr(): string;
  /** Resolves with the match once the stdout read so far matches `pattern`. */
  waitFor(pattern: RegExp): Promise<RegExpMatchArray>;
}

/**
 * A fifo the test writes acknowledgements into without ever blocking: held open read-write (which
 * Linux opens at once, with no other end), so a write only fills the pipe's buffer, and bash's
 * `read <fifo` takes one line of it whenever it opens. A write through `fs.writeFile` would open the
 * fifo for writing and wait for a reader in a thread-pool thread, for ever if bash never reads
 * again, and keep the test process from exiting.
 */
function ackFifo(file: string): { ack: () => void; close: () => void } {
  execFileSync('mkfifo', [file]);
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
  let open = true;
  return {
    ack: () => void fs.writeSync(fd, 'go\n'),
    close: () => {
      if (open) fs.closeSync(fd);
      open = false;
    },
  };
}

// Every guarantee holds each way bash can be started: from this process, through the Node spawner,
// and through the native one (spawn-helper.c, built here if the build did not).
const WAYS = [
  { via: 'directly', kind: undefined },
  { via: 'through a spawner', kind: 'node' },
  { via: 'through the native spawner', kind: 'native' },
] as const;
for (const { via, kind } of WAYS) {
  describe(`actors: runCommand (${via})`, function () {
    this.timeout(20_000);

    let spawner: Spawner | undefined;
    before(() => {
      if (kind === 'native') expect(buildSpawnHelper().built, 'the native spawner built (a C compiler is needed)').to.equal(true);
      if (kind !== undefined) spawner = new Spawner({ kind });
    });
    after(() => spawner?.close());

    let tmpRoot: string;
    let dirs: TaskDirs;
    let scratch: string;
    /** Every pid a test learned; all must be gone when it ends. */
    let pids: number[];

    beforeEach(() => {
      tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-run-command-test-'));
      dirs = new TaskDirs(tmpRoot);
      scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-run-command-scratch-'));
      pids = [];
    });

    afterEach(async () => {
      // Its spare and its trash; a spare still being made is removed when it arrives.
      dirs.close();
      await dirs.drained();
      const alive = pids.filter((pid) => !isGone(pid));
      for (const pid of alive) {
        try {
          process.kill(pid, 'SIGKILL'); // do not leak it into the next test
        } catch {
          // already gone
        }
      }
      const left = fs.readdirSync(tmpRoot);
      fs.rmSync(tmpRoot, { recursive: true, force: true });
      fs.rmSync(scratch, { recursive: true, force: true });
      expect(alive, 'processes still alive after the test').to.deep.equal([]);
      expect(left, 'task directories left behind').to.deep.equal([]);
    });

    function start(options: Partial<RunCommandOptions> & { command: string }, onChunk?: (chunk: Chunk, running: RunningCommand) => void): Run {
      const chunks: Chunk[] = [];
      const waiters: { pattern: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];
      const stdout = (): string => chunks.filter((c) => c.stream === 'stdout').map((c) => c.text).join('');
      const check = (): void => {
        for (const w of [...waiters]) {
          const m = stdout().match(w.pattern);
          if (m) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve(m);
          }
        }
      };
      const running: RunningCommand = runCommand({
        dirs,
        spawner,
        ...options,
        onOutput(stream, data, seq) {
          const chunk = { stream, text: data.toString('utf8'), seq };
          chunks.push(chunk);
          onChunk?.(chunk, running);
          check();
        },
      });
      return {
        running,
        chunks,
        stdout,
        stderr: () => chunks.filter((c) => c.stream === 'stderr').map((c) => c.text).join(''),
        waitFor: (pattern) =>
          new Promise((resolve) => {
            waiters.push({ pattern, resolve });
            check();
          }),
      };
    }

    /** Runs to the end; returns the result and the run. */
    async function runToEnd(options: Partial<RunCommandOptions> & { command: string }): Promise<{ result: CommandResult; run: Run }> {
      const run = start(options);
      return { result: await run.running.result, run };
    }

    function expectSeqInOrder(chunks: Chunk[]): void {
      expect(chunks.map((c) => c.seq)).to.deep.equal(chunks.map((_, i) => i));
    }

    describe('output', () => {
      it('delivers interleaved stdout and stderr in the order read, numbered across both streams', async () => {
        // Each write waits until the previous one has arrived (an acknowledgement through a fifo),
        // so the order across the two pipes is fixed and the test is deterministic.
        const ack = path.join(scratch, 'ack');
        const fifo = ackFifo(ack);
        // Three acknowledgements for the three reads.
        let acks = 0;
        const run = start({ command: `echo $$; read <"$ACK"; echo a; read <"$ACK"; echo b >&2; read <"$ACK"; echo c`, env: { ACK: ack } }, (chunk) => {
          if (/\n$/.test(chunk.text) && acks++ < 3) fifo.ack();
        });
        const [, pid] = await run.waitFor(/^(\d+)\n/);
        pids.push(Number(pid));
        const result = await run.running.result.finally(fifo.close);
        expect(result).to.include({ outcome: 'exited', exitCode: 0, signal: null, stdoutBytes: run.stdout().length, stderrBytes: 2 });
        expect(run.chunks.map((c) => [c.stream, c.text])).to.deep.equal([
          ['stdout', `${pid}\n`],
          ['stdout', 'a\n'],
          ['stderr', 'b\n'],
          ['stdout', 'c\n'],
        ]);
        expectSeqInOrder(run.chunks);
      });

      it('runs `echo a; echo b >&2; echo c`: each stream complete and in order, seq contiguous', async () => {
        const { result, run } = await runToEnd({ command: 'echo a; echo b >&2; echo c' });
        expect(run.stdout()).to.equal('a\nc\n');
        expect(run.stderr()).to.equal('b\n');
        expect(result).to.include({ outcome: 'exited', exitCode: 0, stdoutBytes: 4, stderrBytes: 2 });
        expectSeqInOrder(run.chunks);
      });

      it('keeps stderr apart from stdout, with byte counts', async () => {
        const { result, run } = await runToEnd({ command: 'printf "out put"; printf "é\\n" >&2' });
        expect(run.stdout()).to.equal('out put');
        expect(run.stderr()).to.equal('é\n');
        expect(result.stdoutBytes).to.equal(7);
        expect(result.stderrBytes).to.equal(3); // é is two bytes
      });

      it('holds output back while paused, also across the shell exiting, then delivers it in order', async () => {
        const ack = path.join(scratch, 'ack');
        const fifo = ackFifo(ack);
        let paused = false;
        let deliveredWhilePaused = 0;
        let first = true;
        const run = start({ command: 'echo $$; read <"$ACK"; echo B; echo C >&2', env: { ACK: ack } }, (_chunk, running) => {
          if (paused) deliveredWhilePaused++;
          if (first) {
            first = false;
            // the first chunk: pause, then let the shell write the rest and exit
            paused = true;
            running.pause();
            fifo.ack();
          }
        });
        const [, pid] = await run.waitFor(/^(\d+)\n/);
        pids.push(Number(pid));
        // bash is our child: it is gone (ESRCH) only once Node has reaped it and seen it exit.
        await until(() => isGone(Number(pid)), 'bash to exit');
        for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r)); // Node's own resume on exit runs in here
        expect(deliveredWhilePaused).to.equal(0);
        expect(run.chunks).to.have.length(1);
        paused = false;
        run.running.resume();
        const result = await run.running.result.finally(fifo.close);
        expect(result).to.include({ outcome: 'exited', exitCode: 0 });
        expect(run.stdout()).to.equal(`${pid}\nB\n`);
        expect(run.stderr()).to.equal('C\n');
        expectSeqInOrder(run.chunks);
      });

      it('reads nothing more while paused after bash exits, though a grandchild keeps writing', async () => {
        // On cancel bash dies of SIGTERM at once; `yes` ignores it and writes on until the SIGKILL
        // after the grace. Node resumes a child's pipes when the child exits: were that not undone,
        // the grace would be spent reading `yes` into memory.
        const killGraceMs = 300;
        let yesPid = 0;
        const run = start({ command: '(trap "" TERM; echo $BASHPID; exec yes) & wait', killGraceMs }, (chunk, running) => {
          if (yesPid !== 0) return;
          yesPid = Number(chunk.text.split('\n')[0]);
          pids.push(yesPid);
          running.pause();
          running.cancel();
        });
        await until(() => yesPid !== 0 && isGone(yesPid), 'yes to be killed after the grace');
        const deliveredWhilePaused = run.chunks.length;
        run.running.resume();
        const result = await run.running.result;
        expect(deliveredWhilePaused).to.equal(1);
        expect(result).to.include({ outcome: 'cancelled', signal: 'SIGTERM' });
        // what was left: at most a pipe's worth (64 KiB; 1 MiB through the native spawner, which
        // grows a pipe it hands over) and a Node buffer or two
        expect(result.stdoutBytes).to.be.below((kind === 'native' ? 1024 * 1024 : 0) + 512 * 1024);
        expect(run.stdout().startsWith(`${yesPid}\ny\n`)).to.equal(true);
      });
    });

    describe('exit', () => {
      for (const code of [0, 3]) {
        it(`reports exit code ${code}`, async () => {
          const { result } = await runToEnd({ command: `exit ${code}` });
          expect(result).to.include({ outcome: 'exited', exitCode: code, signal: null });
          expect(result.durationMs).to.be.a('number').and.be.at.least(0);
          expect(result.startedAt).to.be.closeTo(Date.now(), 10_000);
        });
      }

      it('reports the signal that ended bash', async () => {
        const { result, run } = await runToEnd({ command: 'echo $$; kill -TERM $$' });
        pids.push(Number(run.stdout().trim()));
        expect(result).to.include({ outcome: 'exited', exitCode: null, signal: 'SIGTERM' });
      });
    });

    describe('environment and directory', () => {
      it(`passes the task's env over a minimal inherited one (${INHERITED_ENV_KEYS.join(', ')})`, async () => {
        process.env.TROUPE_TEST_NOT_INHERITED = 'secret';
        try {
          const { run } = await runToEnd({
            command: 'printf "%s|" "$FOO" "$HOME" "${TROUPE_TEST_NOT_INHERITED-unset}" "$PATH"',
            env: { FOO: 'bar baz', HOME: '/nowhere' },
          });
          expect(run.stdout()).to.equal(`bar baz|/nowhere|unset|${process.env.PATH}|`);
        } finally {
          delete process.env.TROUPE_TEST_NOT_INHERITED;
        }
      });

      it('runs in a fresh directory under the TaskDirs root that is gone afterwards', async () => {
        let existedDuring = false;
        const run = start({ command: 'pwd; mkdir -p sub/deep; echo x > sub/deep/f; chmod 000 sub' }, (_c, running) => {
          existedDuring ||= fs.existsSync(running.cwd);
        });
        const other = start({ command: 'pwd' });
        const [result, otherResult] = await Promise.all([run.running.result, other.running.result]);
        expect(run.stdout()).to.equal(`${run.running.cwd}\n`);
        expect(path.dirname(run.running.cwd)).to.equal(fs.realpathSync(tmpRoot));
        expect(path.basename(run.running.cwd).startsWith(TASK_DIR_PREFIX)).to.equal(true);
        expect(result.cwd).to.equal(run.running.cwd);
        expect(otherResult.cwd).to.not.equal(result.cwd);
        expect(existedDuring).to.equal(true);
        expect(fs.existsSync(result.cwd)).to.equal(false);
        expect(fs.existsSync(otherResult.cwd)).to.equal(false);
        expect(result).to.not.have.property('cleanupError');
      });
    });

    describe('timeout and cancel', () => {
      it('times out: kills the group, grandchildren included, and removes the directory', async () => {
        const run = start({ command: 'sleep 100 & echo $! $$; wait', timeoutMs: 500 });
        const [, sleepPid, bashPid] = await run.waitFor(/^(\d+) (\d+)\n/);
        pids.push(Number(sleepPid), Number(bashPid));
        const result = await run.running.result;
        expect(result).to.include({ outcome: 'timed-out', exitCode: null, signal: 'SIGTERM' });
        expect(result.durationMs).to.be.at.least(499);
        await until(() => isGone(Number(sleepPid)), 'the sleep, killed with its group');
        expect(isGone(Number(bashPid))).to.equal(true);
        expect(fs.existsSync(result.cwd)).to.equal(false);
      });

      it('cancels: kills the group at once when it obeys SIGTERM (no wait for the grace)', async () => {
        const killGraceMs = 10_000;
        const run = start({ command: 'sleep 100 & echo $! $$; wait', killGraceMs });
        const [, sleepPid, bashPid] = await run.waitFor(/^(\d+) (\d+)\n/);
        pids.push(Number(sleepPid), Number(bashPid));
        const t = performance.now();
        run.running.cancel();
        run.running.cancel(); // twice is once
        const result = await run.running.result;
        expect(performance.now() - t).to.be.below(killGraceMs / 2);
        expect(result).to.include({ outcome: 'cancelled', exitCode: null, signal: 'SIGTERM' });
        await until(() => isGone(Number(sleepPid)), 'the sleep, killed with its group');
        expect(fs.existsSync(result.cwd)).to.equal(false);
        run.running.cancel(); // after the end: no effect
      });

      it('cancels a command right after its start (through a spawner: before its pid is read here)', async () => {
        // The grace outlasts the test: only the SIGTERM, sent before the pid was known, can end it.
        const run = start({ command: 'exec sleep 100', killGraceMs: 60_000 });
        run.running.cancel();
        const result = await run.running.result;
        expect(result).to.include({ outcome: 'cancelled', exitCode: null, signal: 'SIGTERM' });
        // Known by the end (through a spawner, from its record).
        expect(run.running.pid).to.be.a('number');
        expect(isGone(run.running.pid!)).to.equal(true);
      });

      it('kills a command that ignores SIGTERM with SIGKILL after the grace', async () => {
        const killGraceMs = 300;
        expect(DEFAULT_KILL_GRACE_MS).to.equal(2000);
        // An ignored signal stays ignored in children, so sleep ignores SIGTERM too.
        const run = start({ command: 'trap "" TERM; sleep 100 & echo $! $$; wait', killGraceMs });
        const [, sleepPid, bashPid] = await run.waitFor(/^(\d+) (\d+)\n/);
        pids.push(Number(sleepPid), Number(bashPid));
        const t = performance.now();
        run.running.cancel();
        const result = await run.running.result;
        expect(performance.now() - t).to.be.at.least(killGraceMs - 1);
        expect(result).to.include({ outcome: 'cancelled', exitCode: null, signal: 'SIGKILL' });
        // SIGKILL went to the whole group; the sleep's end may trail bash's by a moment.
        await until(() => isGone(Number(sleepPid)), 'the sleep, killed with its group');
      });

      it('cancels the command when onOutput throws, and says why', async () => {
        const run = start({ command: 'echo $$; exec sleep 100' }, (chunk) => {
          pids.push(Number(chunk.text.trim()));
          throw new Error('consumer broke');
        });
        const result = await run.running.result;
        expect(result).to.include({ outcome: 'cancelled', signal: 'SIGTERM', error: 'onOutput threw: consumer broke' });
      });
    });

    describe('background processes', () => {
      it('ends when bash exits: kills a background grandchild that holds the pipes, keeps all output read', async () => {
        // seq writes more than a pipe holds, so some of it is still in flight when bash exits.
        const { result, run } = await runToEnd({ command: 'sleep 100 & echo $!; seq 1 20000' });
        const [sleepPid, ...numbers] = run.stdout().trimEnd().split('\n');
        pids.push(Number(sleepPid));
        expect(numbers).to.have.length(20000);
        expect(numbers.every((n, i) => Number(n) === i + 1)).to.equal(true);
        expect(result).to.include({ outcome: 'exited', exitCode: 0, signal: null });
        expect(result.stdoutBytes).to.equal(run.stdout().length);
        await until(() => isGone(Number(sleepPid)), 'the sleep, killed with its group');
        expectSeqInOrder(run.chunks);
      });

      it('abandons the pipes after drainTimeoutMs when a process that left the group holds them', async () => {
        // bash waits (through a fifo) until the escapee has left the group, or its end would kill it.
        const ack = path.join(scratch, 'ack');
        execFileSync('mkfifo', [ack]);
        const run = start({
          command: `setsid bash -c 'echo $$; echo ready >"$ACK"; exec sleep 100' & read <"$ACK"; echo hi`,
          env: { ACK: ack },
          drainTimeoutMs: 200,
        });
        const [, escaped] = await run.waitFor(/^(\d+)\n/);
        pids.push(Number(escaped));
        const result = await run.running.result;
        expect(result).to.include({ outcome: 'exited', exitCode: 0, outputAbandoned: true });
        expect(run.stdout()).to.equal(`${escaped}\nhi\n`);
        // It escaped our group, so killing it is up to us here.
        process.kill(Number(escaped), 'SIGKILL');
        await until(() => isGone(Number(escaped)), 'the escaped process to die');
      });
    });

    describe('the process exiting', () => {
      it('kills the command and removes its directory before the process exits', async () => {
        // A process that exits under a running command (here by process.exit, as a worker stopped
        // by SIGTERM does) cannot wait for the usual end: it is done synchronously, at 'exit'.
        const script = `
          const { runCommand } = await import(${JSON.stringify(path.join(DIST, 'actors', 'process', 'run-command.js'))});
          const { Spawner } = await import(${JSON.stringify(path.join(DIST, 'actors', 'process', 'spawner.js'))});
          const { TaskDirs } = await import(${JSON.stringify(path.join(DIST, 'actors', 'process', 'task-dirs.js'))});
          const spawner = ${kind === undefined ? 'undefined' : `new Spawner({ kind: '${kind}' })`};
          const dirs = new TaskDirs(${JSON.stringify(tmpRoot)}, { ahead: 0 });
          runCommand({ command: 'sleep 100 & echo $! "$PWD"; wait', spawner, dirs,
            onOutput: (stream, data) => { process.stdout.write(data); process.exit(0); } });`;
        const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
        const [sleep, cwd] = out.trim().split(' ') as [string, string];
        pids.push(Number(sleep));
        expect(path.dirname(cwd)).to.equal(fs.realpathSync(tmpRoot));
        expect(fs.existsSync(cwd)).to.equal(false);
        await until(() => isGone(Number(sleep)), 'the sleep to be killed with its group');
      });
    });

    describe('failing to start', () => {
      it('resolves failed-to-start when the task directory cannot be made', async () => {
        const file = path.join(scratch, 'a-file');
        fs.writeFileSync(file, '');
        const { result, run } = await runToEnd({ command: 'echo never', dirs: new TaskDirs(path.join(file, 'below')) });
        expect(result).to.include({ outcome: 'failed-to-start', exitCode: null, signal: null, cwd: '', stdoutBytes: 0, stderrBytes: 0 });
        expect(result.error).to.match(/^cannot make the task directory under .*: ENOTDIR/);
        expect(run.running.pid).to.equal(undefined);
        expect(run.chunks).to.deep.equal([]);
        run.running.cancel(); // no effect, no throw
        run.running.pause();
        run.running.resume();
      });

      it('resolves failed-to-start when bash cannot be executed, and removes the directory', async () => {
        // One variable larger than the kernel's per-string limit (128 KiB) makes execve fail (E2BIG).
        const { result, run } = await runToEnd({ command: 'echo never', env: { BIG: 'x'.repeat(200_000) } });
        expect(result).to.include({ outcome: 'failed-to-start', exitCode: null, signal: null });
        expect(result.error).to.match(/^cannot start \/bin\/bash: .*E2BIG/);
        expect(run.running.pid).to.equal(undefined);
        expect(path.dirname(result.cwd)).to.equal(fs.realpathSync(tmpRoot));
        expect(fs.existsSync(result.cwd)).to.equal(false);
      });
    });

    describe('bad options', () => {
      const onOutput = (): void => {};
      const cases: [string, Record<string, unknown>, string][] = [
        ['an empty command', { command: '' }, 'command'],
        ['a blank command', { command: '  \n' }, 'command'],
        ['a command that is not a string', { command: 42 }, 'command'],
        ['a command with a NUL byte', { command: 'echo \0' }, 'command'],
        ['a negative timeout', { command: 'true', timeoutMs: -1 }, 'timeoutMs'],
        ['a NaN timeout', { command: 'true', timeoutMs: NaN }, 'timeoutMs'],
        ['a fractional timeout', { command: 'true', timeoutMs: 1.5 }, 'timeoutMs'],
        ['a timeout past what a timer holds', { command: 'true', timeoutMs: 2 ** 31 }, 'timeoutMs'],
        ['a timeout that is a string', { command: 'true', timeoutMs: '10' }, 'timeoutMs'],
        ['a negative grace', { command: 'true', killGraceMs: -5 }, 'killGraceMs'],
        ['an infinite grace', { command: 'true', killGraceMs: Infinity }, 'killGraceMs'],
        ['a negative drain timeout', { command: 'true', drainTimeoutMs: -1 }, 'drainTimeoutMs'],
        ['no dirs', { command: 'true', dirs: undefined }, 'dirs'],
        ['dirs that are not a TaskDirs', { command: 'true', dirs: '/tmp' }, 'dirs'],
        ['an env that is not an object', { command: 'true', env: 'A=1' }, 'env'],
        ['an env value that is not a string', { command: 'true', env: { A: 1 } }, 'env.A'],
        ['an env name with "="', { command: 'true', env: { 'A=B': 'x' } }, 'env'],
        ['no onOutput', { command: 'true', onOutput: undefined }, 'onOutput'],
      ];
      for (const [what, given, option] of cases) {
        it(`rejects ${what} with TROUPE_E_SETTING naming ${option}`, () => {
          const err = expectCode(() => runCommand({ onOutput, dirs, ...given } as unknown as RunCommandOptions), ErrorCodes.SETTING);
          expect(err).to.be.instanceOf(SettingError);
          expect(err.message.startsWith(`${option}: expected `), err.message).to.equal(true);
        });
      }

      it('rejects options that are not an object', () => {
        expectCode(() => runCommand(null as unknown as RunCommandOptions), ErrorCodes.SETTING);
      });
    });

    describe('backpressure', () => {
      it('streams 1 GB through a consumer that pauses, with RSS growth under 64 MiB', async function () {
        // A gigabyte takes 5-10 s on a quiet 2-core machine and over 20 s on a loaded one; what is
        // asserted is the memory bound, not the time.
        this.timeout(120_000);
        // Through the native spawner a quarter of it: the same pipe reader as through the Node one, and the suite's time is short.
        const TOTAL = kind === 'native' ? 250_000_000 : 1_000_000_000;
        const HOLD_BYTES = 1024 * 1024; // the consumer pauses whenever it holds more than this
        const RSS_BOUND = 64 * 1024 * 1024;
        const baseline = process.memoryUsage.rss();
        let maxRss = baseline;
        let stdoutBytes = 0;
        let stderrBytes = 0;
        let nextSeq = 0;
        let seqBroken = false;
        let paused = false;
        let deliveredWhilePaused = 0;
        let pauses = 0;
        let holding: Buffer[] = [];
        let held = 0;
        const SLOW_EVERY = TOTAL / 4;
        let nextSlowAt = SLOW_EVERY;
        const t = performance.now();
        const running: RunningCommand = runCommand({
          command: `echo $$ >&2; yes | head -c ${TOTAL}`,
          dirs,
          spawner,
          onOutput(stream, data, seq) {
            if (paused) deliveredWhilePaused++;
            if (seq !== nextSeq++) seqBroken = true;
            if (stream === 'stderr') {
              stderrBytes += data.length;
              pids.push(Number(data.toString().trim()));
              return;
            }
            stdoutBytes += data.length;
            holding.push(data);
            held += data.length;
            if (held > HOLD_BYTES && !paused) {
              paused = true;
              pauses++;
              running.pause();
              // Mostly a quick consumer (next turn of the event loop); four times a slow one (200 ms),
              // long enough that reading on while paused would show in RSS.
              const slow = stdoutBytes >= nextSlowAt;
              if (slow) nextSlowAt += SLOW_EVERY;
              (slow ? (f: () => void) => setTimeout(f, 200) : setImmediate)(() => {
                // the consumer has passed on what it held
                holding = [];
                held = 0;
                maxRss = Math.max(maxRss, process.memoryUsage.rss());
                paused = false;
                running.resume();
              });
            }
          },
        });
        const result = await running.result;
        maxRss = Math.max(maxRss, process.memoryUsage.rss());
        const seconds = (performance.now() - t) / 1000;
        const growth = maxRss - baseline;
        // Reported for the record: mocha prints it with the test.
        this.test!.title += ` [${seconds.toFixed(1)} s, ${pauses} pauses, RSS ${(baseline / 2 ** 20).toFixed(0)} → max ${(maxRss / 2 ** 20).toFixed(0)} MiB, growth ${(growth / 2 ** 20).toFixed(1)} MiB]`;
        expect(result).to.include({ outcome: 'exited', exitCode: 0, stdoutBytes: TOTAL });
        expect(stdoutBytes).to.equal(TOTAL);
        expect(result.stderrBytes).to.equal(stderrBytes);
        expect(seqBroken).to.equal(false);
        expect(deliveredWhilePaused).to.equal(0);
        expect(pauses).to.be.greaterThan(100);
        expect(growth).to.be.below(RSS_BOUND);
      });
    });
  });
}
