/**
 * `troupe run`, `troupe status` and `troupe attach` as a user runs them, against a real manager
 * and two real workers (processes of the CLI, real bash, mTLS on loopback). The client commands use
 * their own certificate directory: a copy of the test PKI whose only client is client-2, so that
 * they pick it without --name (client-1 is the fixture's own client node).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { addCertificate } from '../../certs/index.js';
import { ClusterSystem } from '../../src/cluster/cluster-system.js';
import { TaskClient } from '../../actors/tasks/task-client.js';
import { silentLogger } from '../../src/log.js';
import { CLIENT_TASK_MESSAGES } from '../../protocols/tasks.js';
import { CliProcess, killAllCli } from '../fixtures/cli-process.js';
import { testPki } from '../fixtures/pki.js';
import { alive, TaskCluster } from '../fixtures/task-cluster.js';
import { until } from '../fixtures/processes.js';

const STATUS_LINE = /^\[([a-z0-9]{3}-\d+) on (worker-\d): (.+)\]$/;

describe('troupe run, status and attach against a cluster', function () {
  this.timeout(30_000);
  let cluster: TaskCluster;
  let dir: string;
  let certs: string;
  let manager: string;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-client-'));
    certs = path.join(dir, 'certs');
    fs.cpSync(testPki().dir, certs, { recursive: true });
    for (const file of ['client-1.crt', 'client-1.key']) fs.rmSync(path.join(certs, file));
    addCertificate({ out: certs, name: 'client-2', role: 'client' });
    cluster = await TaskCluster.start([
      { name: 'worker-1', slots: 2, tags: ['gpu'] },
      { name: 'worker-2', slots: 1 },
    ]);
    manager = `127.0.0.1:${cluster.port}`;
  });
  after(async () => {
    await killAllCli();
    await cluster?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const troupe = (args: string[], options: Parameters<typeof CliProcess.run>[1] = {}) => CliProcess.run(args, { cwd: dir, ...options, env: { TROUPE_CERTS: certs, ...options.env } });

  describe('run', () => {
    it('streams stdout and stderr to ours and exits with the command\'s exit code', async () => {
      const { code, stdout, stderr } = await troupe(['run', manager, '--', 'echo out; echo err >&2; echo more; exit 3']);
      expect(stdout).to.equal('out\nmore');
      expect(stderr).to.equal('err');
      expect(code).to.equal(3);
      const ok = await troupe(['run', manager, '--', 'printf', 'no-newline']);
      expect([ok.code, ok.stdout, ok.stderr]).to.deep.equal([0, 'no-newline', '']);
    });

    it('a command killed by signal n exits 128 + n, a timeout 124, each told in one status line', async () => {
      const killed = await troupe(['run', manager, '--', 'kill -TERM $$']);
      expect(killed.code).to.equal(143);
      expect(killed.stdout).to.equal('');
      expect(killed.stderr).to.match(/^\[[a-z0-9]{3}-\d+ on worker-\d: killed by SIGTERM, \d+ ms\]$/);
      const slow = await troupe(['run', manager, '--timeout', '0.3', '--', 'echo begun; sleep 30']);
      expect(slow.code).to.equal(124);
      expect(slow.stdout).to.equal('begun');
      expect(slow.stderr).to.match(/^\[[a-z0-9]{3}-\d+ on worker-\d: timed out, \d+ ms\]$/);
    });

    it('--on picks the worker by selector; -v says where each ran; a selector nothing matches is one clear line', async () => {
      const gpu = await troupe(['run', manager, '--on', 'tag=gpu', '-v', '--', 'true']);
      expect(gpu.code).to.equal(0);
      expect(gpu.stderr).to.match(/^\[[a-z0-9]{3}-\d+ on worker-1: exit 0, \d+ ms\]$/);
      const two = await troupe(['run', manager, '--on', 'name=worker-2', '--verbose', '--', 'exit 2']);
      expect(two.code).to.equal(2);
      expect(STATUS_LINE.exec(two.stderr)?.[2]).to.equal('worker-2');
      const none = await troupe(['run', manager, '--on', 'tag=tpu', '--', 'true']);
      expect(none.code).to.equal(1);
      expect(none.stderr).to.equal('troupe: TROUPE_E_NO_MATCHING_WORKER: no worker matches tag=tpu (connected: worker-1, worker-2)');
      const bad = await troupe(['run', manager, '--on', 'colour=red', '--', 'true']);
      expect(bad.code).to.equal(1);
      expect(bad.stderr).to.match(/^troupe: TROUPE_E_BAD_SELECTOR: selector "colour=red": unknown key "colour"/);
    });

    it('--all runs on every worker, prefixes each line with the worker (pdsh style), and exits non-zero if any failed', async () => {
      const lock = path.join(dir, `lock-${Date.now()}`);
      // mkdir is atomic: exactly one of the two workers succeeds.
      const { code, stdout, stderr } = await troupe(['run', manager, '--all', '--', `echo hello; echo warn >&2; printf 'no newline'; mkdir ${lock} 2>/dev/null || exit 5`]);
      expect(code).to.equal(5);
      expect(stdout.split('\n').sort()).to.deep.equal(['worker-1: hello', 'worker-1: no newline', 'worker-2: hello', 'worker-2: no newline']);
      expect(stdout.split('\n').filter((l) => l.startsWith('worker-1: '))).to.deep.equal(['worker-1: hello', 'worker-1: no newline']);
      expect(stderr.split('\n').sort()).to.deep.equal(['worker-1: warn', 'worker-2: warn']);
      const all = await troupe(['run', manager, '--all', '--', 'true']);
      expect([all.code, all.stdout, all.stderr]).to.deep.equal([0, '', '']);
    });

    it('Ctrl-C cancels the task on the worker, which kills its process group, and exits 130', async () => {
      const run = CliProcess.start(['run', manager, '--', 'echo $$; sleep 100; echo never'], { cwd: dir, env: { TROUPE_CERTS: certs } });
      const pid = Number(await run.waitForLine(/^\d+$/));
      expect(alive(pid)).to.equal(true);
      run.child.kill('SIGINT');
      expect(await run.exited).to.deep.equal({ code: 130, signal: null });
      expect(run.stderr[0]).to.match(/^troupe: \^C: cancelling [a-z0-9]{3}-\d+ \(again to leave at once\)$/);
      expect(run.stderr[1]).to.match(/^\[[a-z0-9]{3}-\d+ on worker-\d: cancelled, [\d.]+ m?s\]$/);
      expect(run.stdout).to.deep.equal([String(pid)]);
      await until(() => !alive(pid), `pid ${pid} ended`);
    });

    it('a reader that goes away (as `| head -1`) cancels the command on the worker; exit 141, as for SIGPIPE', async () => {
      const run = CliProcess.start(['run', manager, '--', 'echo $$; exec yes'], { cwd: dir, env: { TROUPE_CERTS: certs } });
      const pid = Number(await run.waitForLine(/^\d+$/));
      run.child.stdout!.destroy();
      expect(await run.exited).to.deep.equal({ code: 141, signal: null });
      await until(() => !alive(pid), `pid ${pid} ended`);
      expect(run.stderr).to.have.length(1);
      expect(run.stderr[0]).to.match(/^\[[a-z0-9]{3}-\d+ on worker-\d: cancelled, [\d.]+ m?s\]$/);
    });

    it('takes the manager and the certificates from TROUPE_JOIN and TROUPE_CERTS; no command is a usage error', async () => {
      const { code, stdout } = await troupe(['run', '--', 'echo', 'from', 'env'], { env: { TROUPE_JOIN: manager } });
      expect([code, stdout]).to.deep.equal([0, 'from env']);
      const empty = await troupe(['run', manager]);
      expect(empty.code).to.equal(1);
      expect(empty.stderr).to.equal('troupe: TROUPE_E_SETTING: command: expected a shell command after --, e.g. troupe run HOST:PORT -- \'uname -a\', got ""');
    });
  });

  describe('status', () => {
    it('tables of workers (tags, slots, load, memory, running tasks) and tasks', async () => {
      const { code, stdout } = await troupe(['status', manager]);
      expect(code).to.equal(0);
      const lines = stdout.split('\n');
      expect(lines[0]).to.match(/^manager "manager": 2 workers \(3 slots, 0 busy\); \d+ tasks: 0 running, 0 pending, \d+ finished$/);
      expect(lines[2]).to.match(/^WORKER +TAGS +SLOTS +RUNNING +LOAD +CPU +MEMORY +PLATFORM$/);
      expect(lines[3]).to.match(new RegExp(`^worker-1 +gpu +2 +0 +(\\d+\\.\\d\\d|-) +(\\d+%|-) +([\\d.]+( [KMGT]iB)?\\/[\\d.]+ [KMGT]iB|-) +${process.platform}/${process.arch}$`));
      expect(lines[4]).to.match(new RegExp(`^worker-2 +- +1 +0 +`));
      expect(lines[6]).to.match(/^ID +STATUS +WORKER +EXIT +TIME +COMMAND$/);
      expect(lines.slice(7).every((l) => /^[a-z0-9]{3}-\d+ +(succeeded|failed|timed-out|cancelled|lost) +worker-\d /.test(l) || /^… and \d+ earlier finished tasks? \(--json lists all\)$/.test(l))).to.equal(true);
    });

    it('--json: every worker with its traits and last usage, every task', async () => {
      const marker = `status-json-${Date.now()}`;
      expect((await troupe(['run', manager, '--on', 'name=worker-2', '--', `echo ${marker}`])).code).to.equal(0);
      const { code, stdout } = await troupe(['status', manager, '--json']);
      expect(code).to.equal(0);
      const status = JSON.parse(stdout) as { manager: string; address: string; workers: { worker: string; tags: string[]; slots: number; busy: number; running: string[]; usage: unknown }[]; tasks: { command: string; worker: string; status: string; exitCode: number }[] };
      expect([status.manager, status.address]).to.deep.equal(['manager', manager]);
      expect(status.workers.map((w) => [w.worker, w.tags, w.slots, w.busy, w.running])).to.deep.equal([
        ['worker-1', ['gpu'], 2, 0, []],
        ['worker-2', [], 1, 0, []],
      ]);
      for (const w of status.workers) if (w.usage !== null) expect(w.usage).to.include({ worker: w.worker, slots: w.slots });
      expect(status.tasks.find((t) => t.command === `echo ${marker}`)).to.include({ worker: 'worker-2', status: 'succeeded', exitCode: 0 });
    });
  });

  describe('attach', () => {
    it('with a client certificate: the REPL from another node; lines run in order, the exit status is the last one\'s', async () => {
      const { code, stdout, stderr } = await troupe(['attach', manager], { input: ':workers\necho via attach\n:on tag=gpu echo on gpu\nexit 4\n' });
      expect(code).to.equal(4);
      expect(stdout.split('\n').slice(0, 3).map((l) => l.split(/ +/).slice(0, 3).join(' '))).to.deep.equal(['WORKER TAGS SLOTS', 'worker-1 gpu 2', 'worker-2 - 1']);
      expect(stdout.split('\n').slice(3)).to.deep.equal(['via attach', 'on gpu']);
      const notes = stderr.split('\n');
      expect(notes[0]).to.equal(`attached to manager "manager" at ${manager} as "client-2"`);
      const statuses = notes.filter((l) => STATUS_LINE.test(l)).map((l) => STATUS_LINE.exec(l)!.slice(2).map((s) => s.replace(/, .*$/, '')));
      expect(statuses.map(([, outcome]) => outcome)).to.deep.equal(['exit 0', 'exit 0', 'exit 4']);
      expect(statuses[1]![0]).to.equal('worker-1');
    });

    it('is refused up front with a worker certificate, by name or by files; a worker-role node that submits anyway gets TROUPE_E_FORBIDDEN from the manager', async () => {
      const byName = await troupe(['attach', manager, '--name', 'worker-3']);
      expect(byName.code).to.equal(1);
      expect(byName.stderr).to.equal(`troupe: TROUPE_E_ROLE_MISMATCH: ${path.join(certs, 'worker-3.crt')} is a worker certificate; troupe attach needs a client certificate (each \`troupe generate-tls-certificates\` set has client-1; or \`--add NAME --role client\`)`);
      const files = ['worker-3.crt', 'worker-3.key', 'ca.crt'].map((f) => path.join(certs, f));
      const byFiles = await troupe(['attach', manager, '--cert', files[0]!, '--key', files[1]!, '--ca', files[2]!]);
      expect(byFiles.code).to.equal(1);
      expect(byFiles.stderr).to.equal(`troupe: TROUPE_E_ROLE_MISMATCH: ${files[0]} is a worker certificate; troupe attach needs a client certificate (each \`troupe generate-tls-certificates\` set has client-1; or \`--add NAME --role client\`)`);

      // What the manager itself says to a node whose certificate says worker: it may join, not submit.
      const from = cluster.manager.stderr.length;
      const impostor = await ClusterSystem.start({ identity: testPki().identity('worker-3'), join: { host: '127.0.0.1', port: cluster.port }, messages: CLIENT_TASK_MESSAGES, log: silentLogger() });
      try {
        await impostor.ready();
        const err = await TaskClient.start(impostor, 'manager')
          .submit({ command: 'id' })
          .then(
            () => expect.fail('a worker certificate submitted a task'),
            (e: Error & { code?: string }) => e,
          );
        expect(err.code).to.equal('TROUPE_E_FORBIDDEN');
        expect(err.message).to.match(/"submit"/);
        const logged = JSON.parse(await cluster.manager.waitForLine(/forbidden message refused/, 'stderr', 5000, from)) as Record<string, unknown>;
        expect(logged).to.include({ node: 'manager', peer: 'worker-3', role: 'worker', type: 'submit', msg: 'forbidden message refused' });
      } finally {
        await impostor.shutdown();
      }
    });
  });

  it('an unreachable manager: one clear line and exit 1 after a bounded wait, for run, status and attach alike', async () => {
    const results = await Promise.all(
      [['run', '127.0.0.1:1', '--', 'true'], ['status', '127.0.0.1:1'], ['attach', '127.0.0.1:1']].map((args) => troupe(args, { env: { TROUPE_CONNECT_TIMEOUT: '0.5' }, input: '' })),
    );
    for (const { code, stdout, stderr } of results) {
      expect(code).to.equal(1);
      expect(stdout).to.equal('');
      expect(stderr).to.equal('troupe: TROUPE_E_CONNECTION: 127.0.0.1:1: connection refused (is the manager running?); gave up after 0.5 s');
    }
  });

  it('a bad manager address and a missing certificate directory: one clear line each', async () => {
    const [address, missing] = await Promise.all([
      troupe(['run', 'host:port', '--', 'true']),
      troupe(['status', manager], { env: { TROUPE_CERTS: path.join(dir, 'none') } }),
    ]);
    expect([address.code, address.stderr]).to.deep.equal([1, 'troupe: TROUPE_E_SETTING: manager: expected a port number from 0 to 65535, got "host:port"']);
    expect(missing.code).to.equal(1);
    expect(missing.stderr).to.equal(`troupe: TROUPE_E_CERT_MISSING: cannot read the certificates directory ${path.join(dir, 'none')} (ENOENT); create it with \`troupe generate-tls-certificates --out ${path.join(dir, 'none')}\``);
  });
});
