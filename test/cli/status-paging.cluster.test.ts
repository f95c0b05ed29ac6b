/**
 * `troupe status` with a task history larger than one frame (16 MiB): 300 finished tasks of 60 KB
 * commands each. The Controller answers the task list in pages, and `status --json` still prints
 * every task (real processes: manager, worker and the CLI, mTLS on loopback).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { addCertificate } from '../../certs/index.js';
import { CliProcess, killAllCli } from '../fixtures/cli-process.js';
import { testPki } from '../fixtures/pki.js';
import { TaskCluster } from '../fixtures/task-cluster.js';

const TASKS = 300;
const COMMAND_BYTES = 60_000;

describe('troupe status past the frame limit (real processes)', function () {
  this.timeout(120_000);
  let cluster: TaskCluster;
  let dir: string;
  let certs: string;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-status-paging-'));
    certs = path.join(dir, 'certs');
    fs.cpSync(testPki().dir, certs, { recursive: true });
    for (const file of ['client-1.crt', 'client-1.key']) fs.rmSync(path.join(certs, file));
    addCertificate({ out: certs, name: 'client-2', role: 'client' });
    cluster = await TaskCluster.start([{ name: 'worker-1', slots: 4 }]);
    cluster.keepOutput = false;
  });
  after(async () => {
    await killAllCli();
    await cluster?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it(`--json lists all ${TASKS} finished tasks of ${COMMAND_BYTES / 1000} KB commands (over 16 MiB in all); the table says how many`, async () => {
    const commands = Array.from({ length: TASKS }, (_, i) => `: ${String(i).padStart(3, '0')}${'x'.repeat(COMMAND_BYTES - 8)}; true`);
    expect(commands.reduce((n, c) => n + c.length, 0)).to.be.above(16 * 1024 * 1024);
    const submitted = [];
    for (const command of commands) submitted.push(...(await cluster.tasks.submit({ command })));
    const ends = await Promise.all(submitted.map((t) => cluster.tasks.finished(t.id)));
    expect(ends.every((t) => t.status === 'succeeded')).to.equal(true);

    const json = await CliProcess.run(['status', `127.0.0.1:${cluster.port}`, '--json'], { cwd: dir, env: { TROUPE_CERTS: certs } });
    expect(json.code, json.stderr).to.equal(0);
    const status = JSON.parse(json.stdout) as { tasks: { id: string; command: string; status: string }[] };
    expect(status.tasks.map((t) => t.id)).to.deep.equal(submitted.map((t) => t.id));
    expect(status.tasks.map((t) => t.command)).to.deep.equal(commands);

    const table = await CliProcess.run(['status', `127.0.0.1:${cluster.port}`], { cwd: dir, env: { TROUPE_CERTS: certs } });
    expect(table.code, table.stderr).to.equal(0);
    expect(table.stdout.split('\n')[0]).to.equal(`manager "manager": 1 worker (4 slots, 0 busy); ${TASKS} tasks: 0 running, 0 pending, ${TASKS} finished`);
  });
});
