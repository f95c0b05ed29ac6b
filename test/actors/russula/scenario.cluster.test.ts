/**
 * Russula end to end: a real manager (`troupe manager --local-workers 5 --sessions DIR`, tags
 * server, server, client, client, client) and a sixth worker process tagged `victim`, all over
 * mTLS; scenarios run by the real `troupe scenario run` command (a client node in its own process)
 * and by the manager's sessions directory. Step processes run real bash and node; servers listen
 * on ports the OS picks. Processes are checked by pid through /proc.
 */
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { addCertificate } from '../../../certs/index.js';
import { COORDINATOR_RUSSULA_MESSAGES, RUSSULA_WORKER_KEY, type RussulaState } from '../../../protocols/russula/index.js';
import { ClusterSystem } from '../../../src/cluster/cluster-system.js';
import { silentLogger } from '../../../src/log.js';
import type { ScenarioResult } from '../../../actors/russula/scenario-runner.js';
import { CliProcess, killAllCli } from '../../fixtures/cli-process.js';
import { testPki } from '../../fixtures/pki.js';
import { isGone, until } from '../../fixtures/processes.js';
import { alive } from '../../fixtures/task-cluster.js';

const EXAMPLES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..', 'examples');

describe('Russula scenarios on a cluster of real processes', function () {
  this.timeout(30_000);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-russula-'));
  const certs = path.join(tmp, 'certs');
  const sessions = path.join(tmp, 'sessions');
  const work = path.join(tmp, 'work');
  /** The workers' TMPDIR: step directories, and anything a killed worker leaves. */
  const workerTmp = path.join(tmp, 'worker-tmp');
  let manager: CliProcess;
  let victim: CliProcess;
  let port = 0;
  /** Process groups orphaned by a killed worker: killed in after(). */
  const orphans: number[] = [];

  const scenarioFile = (name: string, text: string, dir = work): string => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, text);
    return file;
  };
  const readResult = (file: string): ScenarioResult => JSON.parse(fs.readFileSync(file.replace(/\.ya?ml$/, '.result.json'), 'utf8')) as ScenarioResult;
  const runScenario = (file: string) => CliProcess.run(['scenario', 'run', file, `127.0.0.1:${port}`, '--certs', certs]);
  const readPid = (file: string) => Number(fs.readFileSync(path.join(work, file), 'utf8').trim());

  before(async () => {
    for (const dir of [certs, sessions, work, workerTmp]) fs.mkdirSync(dir, { recursive: true });
    for (const file of fs.readdirSync(testPki().dir)) fs.copyFileSync(path.join(testPki().dir, file), path.join(certs, file));
    addCertificate({ out: certs, name: 'victim-1', role: 'worker' });
    // Already there at start: one without a result (runs), one whose result is newer (left alone).
    scenarioFile('at-start.yaml', oneServerOneClient('at-start'), sessions);
    scenarioFile('already-done.yaml', oneServerOneClient('already-done'), sessions);
    fs.writeFileSync(path.join(sessions, 'already-done.result.json'), '{"kept": true}\n');
    const future = new Date(Date.now() + 60_000);
    fs.utimesSync(path.join(sessions, 'already-done.result.json'), future, future);

    manager = CliProcess.start(
      ['manager', '--no-repl', '--certs', certs, '--host', '127.0.0.1', '--port', '0', '--local-workers', '5', '--local-worker-tags', 'server', '--local-worker-tags', 'server', '--local-worker-tags', 'client', '--sessions', sessions],
      { env: { TMPDIR: workerTmp } },
    );
    const line = await manager.waitForLine(/listening on wss:\/\/127\.0\.0\.1:\d+/);
    port = Number(/:(\d+) \(certificates/.exec(line)![1]);
    victim = CliProcess.start(['worker', '--certs', certs, '--name', 'victim-1', '--join', `127.0.0.1:${port}`, '--tags', 'victim'], { env: { TMPDIR: workerTmp } });
    await Promise.all([manager.waitForLine(/^all 5 local workers joined/), victim.waitForLine(/^joined the cluster/)]);
    await manager.waitForLine(/^sessions: scenario at-start: ok/);
  });

  after(async () => {
    await killAllCli();
    for (const group of orphans) {
      try {
        process.kill(-group, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('runs the example: 2 servers ready, 3 clients talk to every server, the servers stopped', async () => {
    const file = scenarioFile('echo.yaml', fs.readFileSync(path.join(EXAMPLES, 'echo.yaml'), 'utf8'));
    const { code, stdout, stderr } = await runScenario(file);
    expect(code, stderr).to.equal(0);
    expect(stderr).to.equal('');
    const lines = stdout.split('\n');
    expect(lines[0]).to.match(/^scenario echo: servers \(2 × server, tag=server\), clients \(3 × client, tag=client\); 4 steps; run echo-/);
    expect(lines[1]).to.match(/^\[ +\d+\.\d\d s\] assign: servers → worker-1, worker-2; clients → worker-3, worker-4, worker-5 \(/);
    expect(lines[2]).to.match(/^\[ +\d+\.\d\d s\] servers ready: 127\.0\.0\.1:\d+, 127\.0\.0\.1:\d+ \(/);
    expect(lines[3]).to.match(/^\[ +\d+\.\d\d s\] clients until done: exit 0, 0, 0 \(/);
    expect(lines[4]).to.match(/^\[ +\d+\.\d\d s\] pause 200 ms \(\d+ ms, 0 msgs, 0 B\)$/);
    expect(lines[5]).to.match(/^\[ +\d+\.\d\d s\] servers until done: exit 0, 0 \(/);
    expect(lines[6]).to.equal(`scenario echo: ok in ${/ok in (\S+ s)/.exec(lines[6]!)![1]}; result: ${path.join(work, 'echo.result.json')}`);

    const result = readResult(file);
    expect(result).to.include({ scenario: 'echo', ok: true, error: null });
    expect(result.steps.map((s) => [s.step, s.ok])).to.deep.equal([['assign', true], ['servers ready', true], ['clients until done', true], ['pause 200 ms', true], ['servers until done', true]]);
    const servers = result.members.filter((m) => m.group === 'servers');
    const clients = result.members.filter((m) => m.group === 'clients');
    expect(servers.map((m) => m.worker)).to.deep.equal(['worker-1', 'worker-2']);
    expect(clients.map((m) => m.worker)).to.deep.equal(['worker-3', 'worker-4', 'worker-5']);
    for (const s of servers) {
      expect(s.states.map((x) => `${x.state}${x.ready ? '+' : ''}`)).to.deep.equal(['ready+', 'running', 'running+', 'stopping+', 'done+']);
      expect(s.states.every((x, i) => i === 0 || Date.parse(x.at) >= Date.parse(s.states[i - 1]!.at))).to.equal(true);
      expect(s).to.include({ state: 'done', exitCode: 0 });
      expect(s.address).to.match(/^127\.0\.0\.1:\d+$/);
      expect(s.stdoutTail).to.equal(`listening on ${s.address}\nstopping\n`);
      await until(() => !alive(s.pid!), `server ${s.member} pid ${s.pid}`);
    }
    for (const c of clients) {
      expect(c.states.map((x) => `${x.state}${x.ready ? '+' : ''}`)).to.deep.equal(['ready+', 'running+', 'done+']);
      expect(c).to.include({ state: 'done', exitCode: 0, signal: null, stderrTail: '' });
      const said = c.stdoutTail!.trim().split('\n').sort();
      expect(said).to.deep.equal(
        servers.map((s) => `${s.address} answered: echo from ${s.worker}: hello from ${c.member}`).sort(),
      );
    }
    const sum = result.steps.reduce((n, s) => n + s.traffic.sentBytes + s.traffic.receivedBytes, 0);
    expect(sum).to.equal(result.traffic.sentBytes + result.traffic.receivedBytes);
  });

  it('sends no coordination bytes while servers and clients run and hold still', async () => {
    const file = scenarioFile(
      'steady.yaml',
      `name: steady
groups:
  servers:
    select: tag=server
    count: 2
    protocol: server
    ready: { stdout: 'port (?<port>\\d+)' }
    command: exec node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => console.log("port " + s.address().port))'
  clients:
    select: tag=client
    count: 3
    protocol: client
    env: { SERVERS: "\${servers.addresses}" }
    command: sleep 2.5
steps:
  - { group: servers, until: ready }
  - { group: clients, until: running }
  - { pause: 1s }
  - { group: clients, until: done }
  - { group: servers, until: done }
`,
    );
    const { code, stderr } = await runScenario(file);
    expect(code, stderr).to.equal(0);
    const result = readResult(file);
    const steady = result.steps.find((s) => s.step === 'pause 1 s')!;
    expect(steady.ok).to.equal(true);
    expect(steady.durationMs).to.be.at.least(1000);
    // The measurement phase: 2 servers and 3 clients running, nothing moves.
    expect(steady.traffic).to.deep.equal({ sentBytes: 0, receivedBytes: 0, sentMessages: 0, receivedMessages: 0 });
    // And not only Russula's: the transport counted nothing at all on the coordinator's link meanwhile.
    expect(steady.link).to.deep.equal({ bytesIn: 0, bytesOut: 0, messagesIn: 0, messagesOut: 0 });
    // Starting the clients: one advance to each, one state from each (running, ready at once).
    const start = result.steps.find((s) => s.step === 'clients until running')!;
    expect([start.traffic.sentMessages, start.traffic.receivedMessages]).to.deep.equal([3, 3]);
    // Measured on both ends: each worker's own count of what it sent equals what the coordinator got.
    for (const m of result.members) expect(m.workerSent, m.member).to.deep.equal(m.received);
    expect(result.members.reduce((n, m) => n + m.received.bytes, 0)).to.equal(result.traffic.receivedBytes);
    // The clients ran through the pause: they were running before it started and done after it ended.
    for (const c of result.members.filter((m) => m.group === 'clients')) {
      const running = Date.parse(c.states.find((s) => s.state === 'running')!.at);
      const done = Date.parse(c.states.find((s) => s.state === 'done')!.at);
      expect(running).to.be.at.most(steady.startedAt);
      expect(done).to.be.at.least(steady.startedAt + steady.durationMs - 50);
    }
  });

  it('a TCP port readiness check: ready when the port accepts, and that is the address the clients get', async () => {
    const probe = net.createServer().listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const free = (probe.address() as net.AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    const file = scenarioFile(
      'port.yaml',
      `name: port
groups:
  servers:
    select: tag=server
    protocol: server
    ready: { port: ${free} }
    command: sleep 0.3; exec node -e 'require("net").createServer((c) => c.end("hi\\n")).listen(${free}, "127.0.0.1")'
  clients:
    select: tag=client
    protocol: client
    env: { TO: "\${servers.ports}" }
    command: exec node -e 'require("net").connect(+process.env.TO, "127.0.0.1").on("data", (d) => process.stdout.write("got " + d))'
steps:
  - { group: servers, until: ready }
  - { group: clients, until: done }
  - { group: servers, until: done }
`,
    );
    const { code, stderr } = await runScenario(file);
    expect(code, stderr).to.equal(0);
    const [server, client] = readResult(file).members;
    expect(server!.address).to.equal(`127.0.0.1:${free}`);
    const running = Date.parse(server!.states.find((s) => s.state === 'running' && !s.ready)!.at);
    const ready = Date.parse(server!.states.find((s) => s.state === 'running' && s.ready)!.at);
    expect(ready - running).to.be.at.least(300);
    expect(client).to.include({ state: 'done', stdoutTail: 'got hi\n' });
  });

  it('a server that never becomes ready: timeout, and everything it started is stopped', async () => {
    const file = scenarioFile(
      'never-ready.yaml',
      `name: never-ready
groups:
  servers:
    select: tag=server
    count: 2
    protocol: server
    ready: { stdout: 'this is never printed' }
    killGrace: 500ms
    command: |
      sleep 60 & echo $! > ${work}/never-ready.\${TROUPE_RUSSULA_MEMBER#servers/}.sleep
      echo $$ > ${work}/never-ready.\${TROUPE_RUSSULA_MEMBER#servers/}.bash
      echo started
      wait
steps:
  - { group: servers, until: ready, timeout: 1s }
  - { group: servers, until: done }
`,
    );
    const { code, stdout, stderr } = await runScenario(file);
    expect(code).to.equal(1);
    const resultFile = path.join(work, 'never-ready.result.json');
    expect(stderr).to.equal(
      `troupe: TROUPE_E_RUSSULA_TIMEOUT: servers ready: not reached within 1000 ms: servers/0 on worker-1 in "running" (not ready); servers/1 on worker-2 in "running" (not ready) (result: ${resultFile})`,
    );
    expect(stdout).to.match(/servers ready: FAILED after 1\.\d\d s: TROUPE_E_RUSSULA_TIMEOUT/);
    expect(stdout).to.match(/stopping everything the run started…\n\[ +\d+\.\d\d s\] stopped \(/);
    const result = readResult(file);
    expect(result.ok).to.equal(false);
    expect(result.error!.code).to.equal('TROUPE_E_RUSSULA_TIMEOUT');
    for (const [i, m] of result.members.entries()) {
      expect(m).to.include({ state: 'stopped', code: 'TROUPE_E_RUSSULA_STOPPED', signal: 'SIGTERM' });
      expect(m.states.map((s) => s.state)).to.deep.equal(['ready', 'running', 'stopped']);
      expect(m.stdoutTail).to.equal('started\n');
      const bash = readPid(`never-ready.${i}.bash`);
      const sleep = readPid(`never-ready.${i}.sleep`);
      expect(m.pid).to.equal(bash);
      await until(() => !alive(bash), `bash ${bash}`);
      await until(() => !alive(sleep), `its sleep ${sleep}`);
    }
  });

  it('a client that exits non-zero (examples/echo-fails.yaml): the run fails, its servers are stopped', async () => {
    const file = scenarioFile('echo-fails.yaml', fs.readFileSync(path.join(EXAMPLES, 'echo-fails.yaml'), 'utf8'));
    const { code, stderr } = await runScenario(file);
    expect(code).to.equal(1);
    expect(stderr).to.match(/^troupe: TROUPE_E_RUSSULA_PROCESS_FAILED: clients\/\d on worker-\d: the process exited with code 3 \(result: .*echo-fails\.result\.json\)$/);
    const result = readResult(file);
    expect(result.error!.code).to.equal('TROUPE_E_RUSSULA_PROCESS_FAILED');
    expect(result.steps.map((s) => [s.step, s.ok])).to.deep.equal([['assign', true], ['servers ready', true], ['clients until done', false]]);
    const failed = result.members.filter((m) => m.state === 'failed');
    expect(failed.length).to.be.at.least(1);
    for (const m of failed) {
      expect(m).to.include({ group: 'clients', exitCode: 3, code: 'TROUPE_E_RUSSULA_PROCESS_FAILED', reason: 'the process exited with code 3' });
      expect(m.stderrTail).to.match(/^expected "pong" from 127\.0\.0\.1:\d+, got "echo ping"\n$/);
    }
    for (const s of result.members.filter((m) => m.group === 'servers')) {
      expect(s).to.include({ state: 'stopped', code: 'TROUPE_E_RUSSULA_STOPPED' });
      await until(() => !alive(s.pid!), `pid ${s.pid!} ended`);
    }
  });

  it('too few matching workers: a clear error before anything starts', async () => {
    const file = scenarioFile(
      'too-few.yaml',
      `name: too-few
waitForWorkers: 0s
groups:
  servers: { select: tag=server, count: 3, protocol: server, command: "touch ${work}/too-few.started; sleep 60" }
  clients: { select: tag=client, count: 3, protocol: client, command: "touch ${work}/too-few.started" }
steps:
  - { group: servers, until: running }
  - { group: clients, until: done }
`,
    );
    const { code, stdout, stderr } = await runScenario(file);
    expect(code).to.equal(1);
    expect(stderr).to.equal(
      `troupe: TROUPE_E_RUSSULA_TOO_FEW_WORKERS: too few workers: group servers needs 3 workers matching "tag=server", 2 are free (matching: worker-1, worker-2; connected Russula workers: victim-1, worker-1, worker-2, worker-3, worker-4, worker-5) (result: ${path.join(work, 'too-few.result.json')})`,
    );
    expect(stdout.split('\n')[1]).to.match(/^\[ +\d+\.\d\d s\] assign: FAILED after \d+ ms: TROUPE_E_RUSSULA_TOO_FEW_WORKERS/);
    const result = readResult(file);
    expect(result.members).to.deep.equal([]);
    expect(result.traffic).to.deep.equal({ sentBytes: 0, receivedBytes: 0, sentMessages: 0, receivedMessages: 0 });
    expect(fs.existsSync(path.join(work, 'too-few.started'))).to.equal(false);
  });

  it('a step a worker cannot run is refused with a reason, and the worker goes on', async () => {
    const client = await ClusterSystem.start({ identity: testPki().identity('client-1'), join: { host: '127.0.0.1', port }, messages: COORDINATOR_RUSSULA_MESSAGES, log: silentLogger() });
    try {
      await client.ready();
      const worker = (await client.receptionist.lookup(RUSSULA_WORKER_KEY)).find((e) => e.meta.name === 'worker-3')!;
      const seen: RussulaState[] = [];
      const waiters: { match: (m: RussulaState) => boolean; resolve: (m: RussulaState) => void }[] = [];
      const probe = client.spawn<null, RussulaState>(
        (state, msg) => {
          seen.push(msg);
          for (const w of waiters.splice(0)) if (w.match(msg)) w.resolve(msg);
          else waiters.push(w);
          return state;
        },
        'probe',
        { initialState: null },
      );
      const next = (member: string, state: string) =>
        new Promise<RussulaState>((resolve) => {
          const found = seen.find((m) => m.member === member && m.state === state);
          if (found) return resolve(found);
          waiters.push({ match: (m) => m.member === member && m.state === state, resolve });
        });
      const run = 'probe-run-1';
      const step = { protocol: 'client', command: 'true', env: {}, killGraceMs: 0 };
      const assign = (member: string, over: object) => client.dispatch(worker.ref, { type: 'russulaAssign', run, member, step: { ...step, ...over }, coordinator: probe });
      assign('a/0', { protocol: 'teapot' });
      assign('b/0', { ready: { stdout: '(' } });
      assign('c/0', { env: { 'A=B': 'x' } });
      expect(await next('a/0', 'failed')).to.include({ code: 'TROUPE_E_RUSSULA_REFUSED', reason: 'unknown protocol "teapot"' });
      expect((await next('b/0', 'failed')).reason).to.match(/^ready\.stdout is not a regular expression: /);
      await next('c/0', 'ready');
      client.dispatch(worker.ref, { type: 'russulaAdvance', run, member: 'c/0', to: 'running' });
      const refused = await next('c/0', 'failed');
      expect(refused.code).to.equal('TROUPE_E_RUSSULA_REFUSED');
      expect(refused.reason).to.match(/^cannot run the step: env: expected variable names that are non-empty, without "=" or NUL, got "A=B"$/);
    } finally {
      await client.shutdown();
    }
    // The worker still plays: the next run uses it (worker-3 is clients/0 there).
    const { code, stderr } = await runScenario(scenarioFile('after-refusals.yaml', oneServerOneClient('after-refusals')));
    expect(code, stderr).to.equal(0);
  });

  it('the sessions directory runs a new file, gives a malformed one an error result, and goes on', async () => {
    // Already there at start: at-start ran (before), already-done was left alone.
    expect(readResult(path.join(sessions, 'at-start.yaml'))).to.include({ scenario: 'at-start', ok: true });
    expect(fs.readFileSync(path.join(sessions, 'already-done.result.json'), 'utf8')).to.equal('{"kept": true}\n');

    const from = manager.stdout.length;
    // Rename into place: the file is whole when it appears.
    fs.writeFileSync(path.join(sessions, '.new.yaml.part'), oneServerOneClient('new'));
    fs.renameSync(path.join(sessions, '.new.yaml.part'), path.join(sessions, 'new.yaml'));
    await manager.waitForLine(/^sessions: scenario new: ok/, 'stdout', 15_000, from);
    const ok = readResult(path.join(sessions, 'new.yaml'));
    expect(ok).to.include({ scenario: 'new', ok: true, error: null });
    // The server ends by the SIGTERM of its stopping state; the client exits 0.
    expect(ok.members.map((m) => [m.member, m.state, m.exitCode, m.signal])).to.deep.equal([['servers/0', 'done', null, 'SIGTERM'], ['clients/0', 'done', 0, null]]);
    expect(ok.members[1]!.stdoutTail).to.equal(`${ok.members[0]!.address} said hello\n`);

    fs.writeFileSync(path.join(sessions, 'broken.yaml'), 'name: broken\ngroups:\n  servers: { count: two, protocol: teapot }\nsteps: []\n');
    await manager.waitForLine(/^sessions: scenario broken\.yaml: TROUPE_E_SCENARIO_INVALID/, 'stdout', 15_000, from);
    const bad = readResult(path.join(sessions, 'broken.yaml'));
    expect(bad).to.include({ scenario: 'broken', ok: false, run: null });
    expect(bad.error).to.deep.equal({
      code: 'TROUPE_E_SCENARIO_INVALID',
      message:
        'broken.yaml: 4 problems: groups.servers.count: expected a whole number from 1 to 1000, got "two"; groups.servers.protocol: expected one of server, client, got "teapot"; groups.servers.command: expected a shell command, got nothing; steps: expected a list of steps (at least one), got an empty list',
    });

    // The watcher goes on. This one leaves its server running after the last step: the run's end stops it.
    fs.writeFileSync(path.join(sessions, 'after.yml'), oneServerOneClient('after').replace('  - { group: servers, until: done }\n', ''));
    await manager.waitForLine(/^sessions: scenario after: ok/, 'stdout', 15_000, from);
    const after = readResult(path.join(sessions, 'after.yml'));
    expect(after.ok).to.equal(true);
    expect(after.members.map((m) => [m.member, m.state])).to.deep.equal([['servers/0', 'stopped'], ['clients/0', 'done']]);
    await until(() => !alive(after.members[0]!.pid!), `pid ${after.members[0]!.pid!} ended`);
    expect(manager.since(from).some((l) => /^sessions: \[ +\d+\.\d\d s\] the scenario ended: stopped servers\/0 \(/.test(l))).to.equal(true);
    expect(manager.since(from).filter((l) => /^sessions: running /.test(l))).to.deep.equal(['sessions: running new.yaml', 'sessions: running broken.yaml', 'sessions: running after.yml']);
  });

  it('a worker that drops off and comes back (same process) within reconnectGrace: the run goes on', async () => {
    const go = path.join(work, 'reconnect.go');
    const file = scenarioFile(
      'reconnect.yaml',
      `name: reconnect
reconnectGrace: 15s
groups:
  victims: { select: tag=victim, protocol: server, ready: { stdout: '^up$' }, command: "echo up; exec sleep 60" }
  clients: { select: tag=client, protocol: client, command: "while [ ! -e ${go} ]; do sleep 0.05; done; echo went" }
steps:
  - { group: victims, until: ready }
  - { group: clients, until: done }
  - { group: victims, until: done }
`,
    );
    const run = CliProcess.start(['scenario', 'run', file, `127.0.0.1:${port}`, '--certs', certs]);
    await run.waitForLine(/victims ready/);
    const from = manager.stdout.length;
    // Frozen, it misses its heartbeats: the manager cuts it and marks it down; thawed, it redials.
    victim.child.kill('SIGSTOP');
    await manager.waitForLine(/^- victim-1 down/, 'stdout', 15_000, from);
    victim.child.kill('SIGCONT');
    await manager.waitForLine(/^\+ victim-1 up/, 'stdout', 15_000, from);
    fs.writeFileSync(go, '');
    const { code } = await run.exited;
    expect(code, run.stderr.join('\n')).to.equal(0);
    const result = readResult(file);
    const member = result.members.find((m) => m.group === 'victims')!;
    expect(member).to.include({ worker: 'victim-1', state: 'done', reconnects: 1 });
    expect(member.states.map((x) => x.state)).to.deep.equal(['ready', 'running', 'running', 'stopping', 'done']);
    await until(() => !alive(member.pid!), `pid ${member.pid!} ended`);
  });

  // Last: it takes a worker away for good.
  it('a worker killed during the run: the run fails with TROUPE_E_RUSSULA_WORKER_LOST and stops the rest', async () => {
    const file = scenarioFile(
      'killed.yaml',
      `name: killed
reconnectGrace: 300ms
groups:
  servers: { select: tag=server, count: 2, protocol: server, ready: { stdout: '^up$' }, command: "echo up; exec sleep 60" }
  victims: { select: tag=victim, count: 1, protocol: server, ready: { stdout: '^up$' }, command: "echo up; exec sleep 60" }
steps:
  - { group: servers, until: ready }
  - { group: victims, until: ready }
  - { pause: 60s }
`,
    );
    const run = CliProcess.start(['scenario', 'run', file, `127.0.0.1:${port}`, '--certs', certs]);
    await run.waitForLine(/victims ready/);
    victim.child.kill('SIGKILL');
    const { code } = await run.exited;
    expect(code).to.equal(1);
    const result = readResult(file);
    const lost = result.members.find((m) => m.group === 'victims')!;
    orphans.push(lost.pid!);
    expect(run.stderr.join('\n')).to.match(/^troupe: TROUPE_E_RUSSULA_WORKER_LOST: victims\/0: worker victim-1 lost in "running": its node went down and did not come back within 300 ms \(result: /);
    expect(result.error!.code).to.equal('TROUPE_E_RUSSULA_WORKER_LOST');
    expect(result.steps.map((s) => [s.step, s.ok])).to.deep.equal([['assign', true], ['servers ready', true], ['victims ready', true], ['pause 60 s', false]]);
    expect(lost).to.include({ worker: 'victim-1', code: 'TROUPE_E_RUSSULA_WORKER_LOST' });
    // The dead worker's spawner ended its process rather than leave it running, orphaned.
    await until(() => isGone(lost.pid!), "the killed worker's server to be killed by its spawner");
    for (const s of result.members.filter((m) => m.group === 'servers')) {
      expect(s).to.include({ state: 'stopped', code: 'TROUPE_E_RUSSULA_STOPPED' });
      await until(() => !alive(s.pid!), `pid ${s.pid!} ended`);
    }
  });
});

/** One echo server and one client that reads its greeting: small and quick, for the sessions directory. */
function oneServerOneClient(name: string): string {
  return `name: ${name}
groups:
  servers:
    select: tag=server
    protocol: server
    ready: { stdout: 'port (?<port>\\d+)' }
    command: exec node -e 'const s = require("net").createServer((c) => c.end("hello\\n")).listen(0, "127.0.0.1", () => console.log("port " + s.address().port))'
  clients:
    select: tag=client
    protocol: client
    env: { SERVERS: "\${servers.addresses}" }
    command: exec node -e 'const [h, p] = process.env.SERVERS.split(":"); require("net").connect(+p, h).on("data", (d) => process.stdout.write(process.env.SERVERS + " said " + d))'
steps:
  - { group: servers, until: ready }
  - { group: clients, until: done }
  - { group: servers, until: done }
`;
}
