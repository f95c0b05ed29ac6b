/**
 * One person, one client certificate, many commands at once: each `troupe run` / `troupe status`
 * is its own member of the cluster (`client-1~<session>`), so none evicts another. Real `troupe`
 * processes (the CLI) against a real manager and workers, mTLS on loopback.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { CliProcess, killAllCli } from '../fixtures/cli-process.js';
import { testPki } from '../fixtures/pki.js';
import { TaskCluster } from '../fixtures/task-cluster.js';

describe('many client commands with one certificate', function () {
  this.timeout(90_000);
  let cluster: TaskCluster;
  let manager: string;

  before(async () => {
    cluster = await TaskCluster.start([
      { name: 'worker-1', slots: 4 },
      { name: 'worker-2', slots: 4 },
    ]);
    manager = `127.0.0.1:${cluster.port}`;
  });
  after(async () => {
    await killAllCli();
    await cluster?.stop();
  });

  // The fixture's PKI has exactly one client certificate, client-1: every command below uses it.
  const args = (...rest: string[]) => [rest[0]!, manager, '--certs', testPki().dir, '--connect-timeout', '60', ...rest.slice(1)];

  it('8 `troupe run` in parallel: each prints its own output exactly and exits with its own code', async () => {
    // Each one is still running when the others join (the sleep), so a connection that replaced
    // another would cut it off.
    const runs = Array.from({ length: 8 }, (_, i) =>
      CliProcess.run(args('run', '--', `echo start-${i}; sleep 1; echo end-${i}; echo err-${i} >&2; exit ${i + 1}`)),
    );
    const results = await Promise.all(runs);
    expect(results.map((r) => [r.code, r.stdout, r.stderr])).to.deep.equal(
      Array.from({ length: 8 }, (_, i) => [i + 1, `start-${i}\nend-${i}`, `err-${i}`]),
    );
  });

  it('`troupe status` while a `troupe run` of the same certificate runs: both answer in full', async () => {
    // The command runs until the test has seen status (workers run on this machine: a file says when).
    const flag = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-one-cert-')), 'go');
    const run = CliProcess.start(args('run', '--', `echo started; while [ ! -e ${flag} ]; do sleep 0.05; done; echo finished`));
    try {
      await run.waitForLine(/^started$/, 'stdout', 60_000);
      const status = await CliProcess.run(args('status'));
      expect(status.code).to.equal(0);
      expect(status.stdout.split('\n')[0], status.stdout).to.match(/^manager "manager": 2 workers \(8 slots, 1 busy\); \d+ tasks?: 1 running, 0 pending, \d+ finished$/);
      fs.writeFileSync(flag, '');
      const { code } = await run.exited;
      expect([code, run.stdout, run.stderr]).to.deep.equal([0, ['started', 'finished'], []]);
    } finally {
      fs.rmSync(path.dirname(flag), { recursive: true, force: true });
    }
  });
});
