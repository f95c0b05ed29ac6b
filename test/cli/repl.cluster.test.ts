/**
 * The manager's REPL, driven as a user or a script drives it: through its stdin (a pipe: lines run
 * in order, notes on stderr) and through a terminal (a pty from script(1): prompt, history, tab
 * completion, Ctrl-C). Real manager and worker processes, mTLS on loopback, ports from the OS.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { BIN, CliProcess, killAllCli } from '../fixtures/cli-process.js';
import { testPki } from '../fixtures/pki.js';
import { alive } from '../fixtures/task-cluster.js';
import { until } from '../fixtures/processes.js';

const STATUS_LINE = /^\[([a-z0-9]{3}-\d+) on (worker-\d): (.+)\]$/;

describe('the manager REPL', function () {
  this.timeout(30_000);
  let dir: string;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-repl-'));
  });
  afterEach(async () => {
    await killAllCli();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  function managerArgs(...more: string[]): string[] {
    return ['manager', '--certs', testPki().dir, '--host', '127.0.0.1', '--port', '0', ...more];
  }

  it('from a pipe: lines run in order, output on stdout, notes on stderr, : commands answer; the exit status is the last command\'s; EOF stops the local workers', async () => {
    const logFile = path.join(dir, 'troupe.log');
    const repl = CliProcess.start(managerArgs('--local-workers', '2', '--log-file', logFile), { cwd: dir, stdin: 'pipe', env: { TROUPE_LOG: 'info' } });
    await repl.waitForLine(/^all 2 local workers joined over mTLS$/, 'stderr');
    const workers = childPids(repl.child.pid!);
    expect(workers).to.have.length(2);
    repl.type(
      'echo one',
      '# a comment, skipped',
      'echo two >&2',
      ':workers',
      ':on name=worker-2 echo on-two',
      ':all echo everywhere',
      'printf partial',
      ':finished',
      ':bogus',
      ':on tag=tpu true',
      'exit 7',
    );
    repl.end();
    expect(await repl.exited).to.deep.equal({ code: 7, signal: null });
    for (const pid of workers) await until(() => !alive(pid), `local worker ${pid}`);

    const out = repl.stdout;
    expect(out[0]).to.equal('one');
    expect(out[1]).to.match(/^WORKER +TAGS +SLOTS +RUNNING +LOAD +CPU +MEMORY +PLATFORM$/);
    expect(out.slice(2, 4).map((l) => l.split(/ +/).slice(0, 4).join(' '))).to.deep.equal([`worker-1 - ${os.availableParallelism()} 0`, `worker-2 - ${os.availableParallelism()} 0`]);
    expect(out[4]).to.equal('on-two');
    expect(out.slice(5, 7).sort()).to.deep.equal(['worker-1: everywhere', 'worker-2: everywhere']);
    expect(out[7]).to.equal('partial');
    expect(out[8]).to.match(/^ID +STATUS +WORKER +EXIT +TIME +COMMAND$/);
    expect(out.slice(9).map((l) => l.split(/ {2,}/).filter((c, i) => i !== 2 && i !== 4))).to.deep.equal([
      [out[9]!.split(' ')[0], 'succeeded', '0', 'echo one'],
      [out[10]!.split(' ')[0], 'succeeded', '0', 'echo two >&2'],
      [out[11]!.split(' ')[0], 'succeeded', '0', 'echo on-two'],
      [out[12]!.split(' ')[0], 'succeeded', '0', 'echo everywhere'],
      [out[13]!.split(' ')[0], 'succeeded', '0', 'echo everywhere'],
      [out[14]!.split(' ')[0], 'succeeded', '0', 'printf partial'],
    ]);
    expect(out).to.have.length(15);

    const notes = repl.stderr.slice(repl.stderr.indexOf('all 2 local workers joined over mTLS') + 1);
    expect(notes[1]).to.equal('two');
    const statuses = notes.filter((l) => STATUS_LINE.test(l)).map((l) => STATUS_LINE.exec(l)!.slice(2).map((s) => s.replace(/, [\d.]+ m?s$/, '')));
    expect(statuses.length).to.equal(7);
    expect(statuses[2]).to.deep.equal(['worker-2', 'exit 0']);
    expect(statuses.slice(3, 5).map((s) => s[0]).sort()).to.deep.equal(['worker-1', 'worker-2']);
    expect(statuses[6]![1]).to.equal('exit 7');
    expect(notes).to.include.members([
      'troupe: unknown command :bogus; :help lists them',
      'troupe: TROUPE_E_NO_MATCHING_WORKER: no worker matches tag=tpu (connected: worker-1, worker-2)',
    ]);
    expect(fs.existsSync(path.join(dir, '.troupe', 'history')), 'no history from a script').to.equal(false);

    // --log-file: every log line there (the local workers' too), none among the notes.
    expect(repl.stderr.filter((l) => l.startsWith('{'))).to.deep.equal([]);
    const logged = fs.readFileSync(logFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { node: string; msg: string });
    expect(logged).to.deep.include.members([{ ...logged.find((l) => l.node === 'manager' && l.msg === 'manager listening')! }]);
    expect(logged.filter((l) => l.msg === 'joined the manager').map((l) => l.node).sort()).to.deep.equal(['worker-1', 'worker-2']);
  });

  it('a command typed before any worker joined waits with a note; SIGINT cancels the running command and the REPL goes on; background tasks, :cancel and :wait', async () => {
    const repl = CliProcess.start(managerArgs(), { cwd: dir, stdin: 'pipe' });
    const port = Number(/:(\d+) \(certificates/.exec(await repl.waitForLine(/listening on wss:\/\/127\.0\.0\.1:\d+/, 'stderr'))![1]);
    repl.type('echo first');
    await repl.waitForLine(/^no worker has joined yet; waiting for one \(Ctrl-C gives up\)…$/, 'stderr');
    expect(repl.stdout).to.deep.equal([]);
    const worker = CliProcess.start(['worker', '--certs', testPki().dir, '--name', 'worker-1', '--join', `127.0.0.1:${port}`, '--slots', '3']);
    await repl.waitForLine(/^first$/);

    // SIGINT (a Ctrl-C from a terminal, for a REPL reading a pipe) cancels the foreground command.
    repl.type('echo $$; sleep 100; echo never');
    const pid = Number(await repl.waitForLine(/^\d+$/));
    let mark = repl.stderr.length;
    repl.child.kill('SIGINT');
    const cancelled = await repl.waitForLine(STATUS_LINE, 'stderr', 10_000, mark);
    expect(STATUS_LINE.exec(cancelled)![3]).to.match(/^cancelled, /);
    expect(repl.stderr.slice(mark)[0]).to.match(/^\^C: cancelling [a-z0-9]{3}-\d+$/);
    await until(() => !alive(pid), `pid ${pid} ended`);
    repl.type('echo after');
    await repl.waitForLine(/^after$/);

    // In the background: prefixed output, :running lists it, :cancel ends it, :wait waits for the rest.
    mark = repl.stderr.length;
    repl.type('echo bg-begin; sleep 100 &');
    const id = /^\[([a-z0-9]{3}-\d+)\] in the background; :wait waits for it$/.exec(await repl.waitForLine(/in the background/, 'stderr', 10_000, mark))![1]!;
    await repl.waitForLine(new RegExp(`^\\[${id}\\] bg-begin$`));
    let from = repl.stdout.length;
    repl.type(':running');
    const row = await repl.waitForLine(new RegExp(`^${id} `), 'stdout', 10_000, from);
    expect(row.split(/ {2,}/).slice(0, 4)).to.deep.equal([id, 'running', 'worker-1', '-']);
    mark = repl.stderr.length;
    repl.type(`:cancel ${id}`);
    expect(await repl.waitForLine(/^cancelling /, 'stderr', 10_000, mark)).to.equal(`cancelling ${id} (running on worker-1)`);
    expect(await repl.waitForLine(new RegExp(`^\\[${id} on worker-1: cancelled, `), 'stderr', 10_000, mark)).to.match(STATUS_LINE);
    repl.type(`:cancel ${id}`, 'exit 5 &', 'sleep 0.2; exit 3 &', ':wait');
    repl.end();
    expect(await repl.exited).to.deep.equal({ code: 5, signal: null });
    expect(repl.stderr).to.include(`troupe: TROUPE_E_TASK_FINISHED: task ${id} already ended (cancelled)`);
    from = repl.stderr.findIndex((l) => l.startsWith('troupe: TROUPE_E_TASK_FINISHED'));
    const ends = repl.stderr.slice(from).filter((l) => STATUS_LINE.test(l)).map((l) => STATUS_LINE.exec(l)![3]!.replace(/, [\d.]+ m?s$/, ''));
    expect(ends.sort()).to.deep.equal(['exit 3', 'exit 5']);
    worker.child.kill('SIGTERM');
    await worker.exited;
  });

  it('demo, as `echo \'echo hi\' | npm start` runs it: dev certificates, two local workers, "hi", exit 0, the workers gone', async () => {
    const demo = CliProcess.start(['demo', '--port', '0'], { cwd: dir, stdin: 'pipe' });
    await demo.waitForLine(/^all 2 local workers joined over mTLS$/, 'stderr');
    const workers = childPids(demo.child.pid!);
    expect(workers).to.have.length(2);
    demo.type('echo hi');
    demo.end();
    expect(await demo.exited).to.deep.equal({ code: 0, signal: null });
    expect(demo.stdout).to.deep.equal(['hi']);
    expect(demo.stderr[0]).to.equal('created development certificates in .troupe/certs (a local CA; not for production: see docs/security.md)');
    for (const pid of workers) await until(() => !alive(pid), `local worker ${pid}`);
  });

  it('on a terminal: a prompt, tab completion of : commands, Ctrl-C cancels the running command, :quit leaves; history kept in .troupe/history', async function () {
    const command = [process.execPath, BIN, ...managerArgs('--local-workers', '1')].map((a) => `'${a}'`).join(' ');
    const term = new CliProcess(spawn('script', ['-qfec', command, '/dev/null'], { cwd: dir, env: { ...process.env, NO_COLOR: '1', TROUPE_LOG: 'warn', TERM: 'xterm' }, stdio: ['pipe', 'pipe', 'pipe'] }), plain);
    const waitFor = (match: RegExp, after = 0) => term.waitForLine(match, 'stdout', 15_000, after);
    // What the terminal shows so far, including a line still being typed (which waitFor cannot see).
    let shown = '';
    term.child.stdout!.on('data', (chunk: Buffer) => (shown += chunk.toString()));
    const waitForScreen = (text: string) =>
      new Promise<void>((resolve) => {
        const check = () => (plain(shown).endsWith(text) ? (term.child.stdout!.off('data', check), resolve()) : undefined);
        term.child.stdout!.on('data', check);
        check();
      });
    // Typed before the prompt shows, a line would be echoed by the terminal itself (not yet in raw mode).
    await waitForScreen('troupe> ');
    expect(term.stdout).to.include.members(['all 1 local workers joined over mTLS', 'Type a shell command to run it on a worker; :help for more; Ctrl-D or :quit leaves.']);
    let mark = term.stdout.length;
    term.child.stdin!.write('echo hi\r');
    await waitFor(/^\[[a-z0-9]{3}-\d+ on worker-1: exit 0, \d+ ms\]$/, mark);
    expect(term.stdout.slice(mark, mark + 2)).to.deep.equal(['troupe> echo hi', 'hi']);

    mark = term.stdout.length;
    // Readline completes only on a tab that ends what it read at once: the Enter goes after the completion shows.
    term.child.stdin!.write(':wor\t');
    await waitForScreen('troupe> :workers');
    term.child.stdin!.write('\r');
    await waitFor(/^worker-1 +- +\d+ +0 /, mark);

    mark = term.stdout.length;
    term.child.stdin!.write('echo started; sleep 100\r');
    await waitFor(/^started$/, mark);
    term.child.stdin!.write('\x03');
    await waitFor(/^\[[a-z0-9]{3}-\d+ on worker-1: cancelled, /, mark);

    term.child.stdin!.write(':quit\r');
    expect((await term.exited).code).to.equal(130);
    expect(fs.readFileSync(path.join(dir, '.troupe', 'history'), 'utf8')).to.equal('echo hi\n:workers\necho started; sleep 100\n:quit\n');
  });
});

/** A line of a terminal's output as a person sees it: without escape sequences and carriage returns. */
function plain(line: string): string {
  // eslint-disable-next-line no-control-regex
  return line.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '');
}

function childPids(pid: number): number[] {
  const out = execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' });
  return out.split('\n').map((l) => Number(l.trim())).filter((n) => n > 0);
}
