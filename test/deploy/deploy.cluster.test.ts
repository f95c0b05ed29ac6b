/**
 * `troupe deploy` against real hosts: network namespaces, each with its own sshd and directory
 * (test/fixtures/netns-hosts.ts), a manager in this process listening on the bridge. One set of
 * hosts for the whole file; the tests run in order, each starting from what the one before left.
 */
import { expect } from 'chai';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { generateCertificates } from '../../certs/index.js';
import type { MemberEvent } from '../../protocols/cluster-messages.js';
import { TaskClient } from '../../actors/tasks/task-client.js';
import { runManager, type ManagerNode } from '../../actors/nodes.js';
import { buildBundle, deployDown, deployLogs, deployStatus, deployStop, deployUp, loadInventory, type Inventory, type UpOptions } from '../../src/deploy/index.js';
import { ErrorCodes } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { NetnsLab, type NetnsHost } from '../fixtures/netns-hosts.js';
import { nextMemberEvent } from '../fixtures/member-events.js';

const BIN = path.resolve('dist/bin/troupe.js');

describe('deploy: up, status, rolling update, failures, NAT, partition, down on namespace hosts with real sshd', function () {
  this.timeout(120_000);
  let lab: NetnsLab;
  let manager: ManagerNode;
  let tasks: TaskClient;
  let certs: string;
  let known: string;
  let inventoryFile: string;
  let inventory: Inventory;
  const members: MemberEvent[] = [];

  const writeInventory = (file: string, hosts: readonly NetnsHost[], extra: (h: NetnsHost) => string[] = () => []): string =>
    lab.inventory(file, { certs, knownHosts: known, managerPort: manager.system.address!.port, hosts, extra });
  const up = (options: Partial<UpOptions> = {}) => deployUp({ inventory, joinTimeoutMs: 30_000, ...options });
  const pidOf = (h: NetnsHost) => Number(fs.readFileSync(path.join(h.dir, 'troupe', 'run', 'troupe.pid'), 'utf8'));
  const running = (id: string) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (tasks.tasks.get(id)?.status !== 'running') return;
        tasks.off('update', check);
        resolve();
      };
      tasks.on('update', check);
      check();
    });
  const until = (predicate: (e: MemberEvent) => boolean) => nextMemberEvent(manager.system, predicate);

  before(async () => {
    lab = await NetnsLab.create({ hosts: 3 });
    certs = path.join(lab.dir, 'certs');
    generateCertificates({ out: certs, hostnames: [lab.managerAddress], workers: 0, clients: 0 });
    known = lab.knownHosts(path.join(lab.dir, 'known_hosts'));
    manager = await runManager({ certs, listen: { host: lab.managerAddress, port: 0 }, localWorkers: 0, print: () => {}, log: () => silentLogger(), signals: [] });
    manager.system.on('member', (e) => members.push(e));
    tasks = TaskClient.start(manager.system);
    inventoryFile = writeInventory(path.join(lab.dir, 'troupe-hosts.yaml'), lab.hosts, (h) => ['slots: 1', ...(h.label === 'h1' ? ['tags: [gpu]'] : [])]);
    inventory = loadInventory(inventoryFile);
  });

  after(async () => {
    tasks?.stop();
    await manager?.stop();
    await lab?.destroy();
  });

  it('up on three hosts: each installs, gets a certificate by request, starts and joins; tasks run there; status says so', async () => {
    const report = await up();
    expect(report.results.map((r) => [r.host, r.ok, r.code])).to.deep.equal([
      ['h1', true, undefined],
      ['h2', true, undefined],
      ['h3', true, undefined],
    ]);
    for (const r of report.results) expect(r.done).to.deep.equal(['connected', 'uploaded', 'certificate', 'started', 'joined']);

    const ran = await tasks.submit({ command: 'ip -4 -o addr show eth0', broadcast: true });
    expect(ran).to.have.length(3);
    const outputs = new Map<string, string>();
    tasks.on('output', (chunk) => outputs.set(chunk.id, (outputs.get(chunk.id) ?? '') + chunk.data));
    for (const t of ran) {
      const done = await tasks.finished(t.id);
      expect(done.status).to.equal('succeeded');
      const host = lab.hosts.find((h) => h.label === done.worker)!;
      expect(outputs.get(t.id)).to.include(`${host.address}/24`); // it ran in that host's namespace
    }
    const gpu = (await tasks.submit({ command: 'true', selector: 'tag=gpu' }))[0]!;
    expect((await tasks.finished(gpu.id)).worker).to.equal('h1');

    // keys were made on the hosts, 0600, and the CA key went nowhere
    for (const h of lab.hosts) {
      const key = path.join(h.dir, 'troupe', 'certs', `${h.label}.key`);
      expect(fs.statSync(key).mode & 0o777).to.equal(0o600);
      expect(fs.readdirSync(path.join(h.dir, 'troupe', 'certs')).sort()).to.deep.equal(['ca.crt', `${h.label}.crt`, `${h.label}.key`]);
      expect(fs.readlinkSync(path.join(h.dir, 'troupe', 'current'))).to.equal(`versions/${report.version}`);
    }
    expect(execFileSync('grep', ['-rl', 'BEGIN', lab.dir, '--include=ca.key'], { encoding: 'utf8' }).trim()).to.equal(path.join(certs, 'ca.key'));

    const status = await deployStatus({ inventory });
    expect(status.ok).to.equal(true);
    expect(status.hosts.map((s) => [s.host, s.reachable, s.running, s.joined, s.version])).to.deep.equal(lab.hosts.map((h) => [h.label, true, true, true, report.version]));
  });

  it('up again changes nothing: no upload, no new certificate, no restart', async () => {
    const pids = lab.hosts.map(pidOf);
    const certMtimes = lab.hosts.map((h) => fs.statSync(path.join(h.dir, 'troupe', 'certs', `${h.label}.crt`)).mtimeMs);
    const membersBefore = members.length;
    const report = await up();
    expect(report.ok).to.equal(true);
    for (const r of report.results) expect(r.done).to.deep.equal(['connected']);
    expect(lab.hosts.map(pidOf)).to.deep.equal(pids);
    expect(lab.hosts.map((h) => fs.statSync(path.join(h.dir, 'troupe', 'certs', `${h.label}.crt`)).mtimeMs)).to.deep.equal(certMtimes);
    expect(members.slice(membersBefore).filter((e) => e.role === 'worker')).to.deep.equal([]); // no worker left or joined
    expect(fs.readdirSync(path.join(lab.hosts[0]!.dir, 'troupe', 'uploads'))).to.deep.equal([]);
  });

  it('logs: the node\'s log lines from its host', async () => {
    const chunks: Buffer[] = [];
    await deployLogs({ inventory, host: 'h1', lines: 1000, write: (d) => chunks.push(d) });
    const text = Buffer.concat(chunks).toString();
    expect(text).to.match(/"node":"h1"/);
    expect(text).to.include('joined the manager');
  });

  it('a worker process killed: status shows it down, up brings it back (and only it)', async () => {
    const h2 = lab.hosts[1]!;
    const others = [lab.hosts[0]!, lab.hosts[2]!].map(pidOf);
    const gone = until((e) => e.node === 'h2' && e.status === 'down');
    process.kill(pidOf(h2), 'SIGKILL');
    await gone;
    const status = await deployStatus({ inventory });
    expect(status.ok).to.equal(false);
    expect(status.hosts.find((s) => s.host === 'h2')).to.include({ reachable: true, running: false, joined: false });
    const report = await up();
    expect(report.ok).to.equal(true);
    expect(report.results.map((r) => r.done)).to.deep.equal([['connected'], ['connected', 'started', 'joined'], ['connected']]);
    expect([lab.hosts[0]!, lab.hosts[2]!].map(pidOf)).to.deep.equal(others);
  });

  it('a new version rolls out host by host, each rejoining before the next stops; a task running on another host is not disturbed', async () => {
    const h3 = lab.hosts[2]!;
    const fifo = path.join(h3.dir, 'go');
    execFileSync('mkfifo', [fifo]);
    const [held] = await tasks.submit({ command: `cat ${fifo}`, selector: 'name=h3' });
    await running(held!.id);
    const bundle = await buildBundle({ extra: { 'dist/NEXT': 'a new version' }, outDir: lab.dir });
    const steps: string[] = [];
    let report: Awaited<ReturnType<typeof up>>;
    try {
      report = await up({ bundle, hosts: 'h1,h2', onProgress: (host, step) => steps.push(`${host}: ${step}`) });
    } catch (err) {
      fs.writeFileSync(fifo, 'release\n');
      throw err;
    }
    if (!report.ok || steps.indexOf('h2: stopping the old node') < steps.indexOf('h1: done (connected, uploaded, started, joined, restarted)')) fs.writeFileSync(fifo, 'release\n');
    expect(report.ok, JSON.stringify(report.results)).to.equal(true);
    expect(report.version).to.equal(bundle.id);
    for (const r of report.results) expect(r.done).to.deep.equal(['connected', 'uploaded', 'started', 'joined', 'restarted']);
    const at = (line: string) => steps.indexOf(line);
    expect(at('h1: waiting until it has joined')).to.be.greaterThan(-1);
    expect(at('h1: done (connected, uploaded, started, joined, restarted)'), steps.join('\n')).to.be.lessThan(at('h2: stopping the old node'));
    for (const h of lab.hosts.slice(0, 2)) expect(fs.readlinkSync(path.join(h.dir, 'troupe', 'current'))).to.equal(`versions/${bundle.id}`);
    // the task on h3 ran through the rollout
    fs.writeFileSync(fifo, 'still here\n');
    const finished = await tasks.finished(held!.id);
    expect(finished.status).to.equal('succeeded');
    expect(finished.worker).to.equal('h3');
  });

  it('a version that cannot start: the first host fails with its output, the rollout stops before the next; up with a good one mends it', async () => {
    const broken = await buildBundle({ extra: { 'dist/bin/troupe.js': "console.error('broken build'); process.exit(3);\n" }, outDir: lab.dir });
    const pids = lab.hosts.map(pidOf);
    const report = await up({ bundle: broken, hosts: 'h1,h2' });
    expect(report.results.map((r) => [r.host, r.code])).to.deep.equal([
      ['h1', ErrorCodes.JOIN_TIMEOUT],
      ['h2', ErrorCodes.NOT_ATTEMPTED],
    ]);
    expect(report.results[0]!.error).to.match(/h1: the node exited before it joined: .*broken build/);
    expect(pidOf(lab.hosts[1]!)).to.equal(pids[1]); // h2 untouched, still running the version before
    const mended = await up({ hosts: 'h1,h2', batch: 2 });
    expect(mended.results.map((r) => [r.host, r.ok])).to.deep.equal([
      ['h1', true],
      ['h2', true],
    ]);
  });

  it('a host without a usable node: TROUPE_E_NODE_MISSING, and nothing installed there', async () => {
    const file = writeInventory(path.join(lab.dir, 'no-node.yaml'), [lab.hosts[0]!], () => ['node: /opt/none/bin/node']);
    const before = fs.readdirSync(path.join(lab.hosts[0]!.dir, 'troupe', 'versions')).sort();
    const report = await deployUp({ inventory: loadInventory(file), bundle: await buildBundle({ extra: { 'dist/OTHER': 'x' }, outDir: lab.dir }) });
    expect(report.results.map((r) => [r.host, r.code, r.done])).to.deep.equal([['h1', ErrorCodes.NODE_MISSING, ['connected']]]);
    expect(report.results[0]!.error).to.match(/no `\/opt\/none\/bin\/node` on the remote PATH/);
    expect(fs.readdirSync(path.join(lab.hosts[0]!.dir, 'troupe', 'versions')).sort()).to.deep.equal(before);
  });

  it('one host unreachable: the others converge, the exit status is 1 and its line names the error', async () => {
    const file = writeInventory(path.join(lab.dir, 'with-ghost.yaml'), [...lab.hosts, { ...lab.hosts[0]!, label: 'ghost', address: `10.213.${lab.subnet}.99` }], (h) => ['slots: 1', ...(h.label === 'h1' ? ['tags: [gpu]'] : [])]);
    const { code, stdout } = await cli(['deploy', 'up', '--inventory', file, '--connect-timeout', '3', '--hosts', 'h3,ghost']);
    expect(code).to.equal(1);
    expect(stdout).to.match(/^ghost +no +TROUPE_E_SSH_CONNECT: 10\.213\.\d+\.99: /m);
    expect(stdout, stdout).to.match(/^h3 +ok +already right$/m);
    expect(stdout).to.match(/1 of 2 hosts failed/);
  });

  it('a changed host key and a wrong private key are refused with their codes, and nothing is done there', async () => {
    const [h1, h2] = lab.hosts;
    const badKnown = path.join(lab.dir, 'known_changed');
    fs.writeFileSync(badKnown, `${h1!.address} ${h2!.hostKey}\n${h2!.address} ${h2!.hostKey}\n`);
    const file = writeInventory(path.join(lab.dir, 'bad.yaml'), [h1!, h2!], (h) => (h.label === 'h2' ? [`identity: ${lab.wrongKey}`] : []));
    const pids = [h1!, h2!].map(pidOf);
    const service = [h1!, h2!].map((h) => fs.statSync(path.join(h.dir, 'troupe', 'run', 'service.json')).mtimeMs);
    const report = await deployUp({ inventory: loadInventory(file), knownHosts: badKnown, acceptNewHostKeys: true, bundle: await buildBundle() });
    expect(report.ok).to.equal(false);
    expect(report.results.map((r) => [r.host, r.code, r.done])).to.deep.equal([
      ['h1', ErrorCodes.SSH_HOST_KEY, []],
      ['h2', ErrorCodes.SSH_AUTH, []],
    ]);
    expect(report.results[0]!.error).to.match(/host key has CHANGED/);
    expect([h1!, h2!].map(pidOf)).to.deep.equal(pids);
    expect([h1!, h2!].map((h) => fs.statSync(path.join(h.dir, 'troupe', 'run', 'service.json')).mtimeMs)).to.deep.equal(service);
    expect(fs.readFileSync(badKnown, 'utf8').split('\n')).to.have.length(3);
  });

  it('a partition: the host is unreachable within the heartbeat timeout, rejoins without help when its link is back, and runs what was queued meanwhile', async () => {
    const [h1, h2, h3] = lab.hosts;
    // h2 and h3 busy (one slot each), so that what is submitted during the partition has to wait
    const fifo = path.join(lab.dir, 'busy');
    execFileSync('mkfifo', [fifo]);
    const busy = [...(await tasks.submit({ command: `cat ${fifo}`, selector: 'name=h2' })), ...(await tasks.submit({ command: `cat ${fifo}`, selector: 'name=h3' }))];
    await Promise.all(busy.map((t) => running(t.id)));
    const unreachable = until((e) => e.node === 'h1' && e.status === 'unreachable');
    lab.setLink(h1!, false);
    try {
      await unreachable;
      const queued = await tasks.submit({ command: 'echo queued' });
      expect(queued.map((t) => t.status)).to.deep.equal(['pending']);
      const back = until((e) => e.node === 'h1' && e.status === 'up');
      lab.setLink(h1!, true);
      await back;
      const done = await tasks.finished(queued[0]!.id);
      expect([done.status, done.worker]).to.deep.equal(['succeeded', 'h1']);
    } finally {
      lab.setLink(h1!, true);
      fs.writeFileSync(fifo, 'done\n');
    }
    for (const t of busy) expect((await tasks.finished(t.id)).status).to.equal('succeeded');
    expect([h2, h3].map((h) => h!.label)).to.deep.equal(['h2', 'h3']);
  });

  it('behind NAT: a worker joins and runs tasks, though the manager cannot open a connection to it', async () => {
    const nat = await lab.addNatHost();
    fs.appendFileSync(known, `[${nat.address}]:${nat.sshPort} ${nat.hostKey}\n`);
    const file = writeInventory(path.join(lab.dir, 'nat.yaml'), [nat]);
    const report = await deployUp({ inventory: loadInventory(file), joinTimeoutMs: 30_000 });
    expect(report.results.map((r) => [r.host, r.ok, r.error])).to.deep.equal([[nat.label, true, undefined]]);
    const [task] = await tasks.submit({ command: 'ip -4 -o addr show eth0', selector: `name=${nat.label}` });
    let out = '';
    tasks.on('output', (c) => c.id === task!.id && (out += c.data));
    expect((await tasks.finished(task!.id)).status).to.equal('succeeded');
    expect(out).to.include(`${nat.innerAddress}/24`);
    // Nothing on the manager's network can open a connection to the worker: from a host on the bridge
    // (as the manager, but with no route out of the lab) its address is unreachable…
    const probe = spawnSync('ip', ['netns', 'exec', lab.hosts[1]!.ns, 'bash', '-c', `exec 3<>/dev/tcp/${nat.innerAddress}/22`], { encoding: 'utf8' });
    expect(probe.status).to.not.equal(0);
    expect(probe.stderr).to.match(/Network is unreachable/);
    // …the lab's network has no route to it (the root namespace would send it out of its default route, not into the lab)…
    const route = spawnSync('ip', ['route', 'get', nat.innerAddress], { encoding: 'utf8' }); // fails outright on a machine without a default route
    expect(route.status !== 0 || !route.stdout.includes(lab.bridge), route.stdout).to.equal(true);
    // …and the worker's connection reaches the manager from the router's address, masqueraded.
    const port = manager.system.address!.port;
    const flows = execFileSync('ss', ['-Htn', 'state', 'established', 'src', `${lab.managerAddress}:${port}`, 'dst', nat.routerAddress], { encoding: 'utf8' });
    expect(flows.trim()).to.not.equal('');
    expect(manager.system.members().find((m) => m.node === nat.label)?.status).to.equal('up');
    const down = await deployDown({ inventory: loadInventory(file) });
    expect(down.ok).to.equal(true);
  });

  it('down leaves nothing of troupe on the hosts', async () => {
    const report = await deployDown({ inventory });
    expect(report.results.map((r) => [r.host, r.ok, r.done])).to.deep.equal(lab.hosts.slice(0, 3).map((h) => [h.label, true, ['connected', 'stopped', 'removed']]));
    for (const h of lab.hosts) {
      expect(fs.existsSync(path.join(h.dir, 'troupe'))).to.equal(false);
      const pids = execFileSync('ip', ['netns', 'pids', h.ns], { encoding: 'utf8' }).split(/\s+/).filter(Boolean);
      const cmdlines = pids.map((p) => {
        try {
          return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8');
        } catch {
          return '';
        }
      });
      expect(cmdlines.filter((c) => c.includes('troupe'))).to.deep.equal([]);
    }
  });

  it('a manager deployed on a host: workers join it there; stop stops, down removes', async () => {
    const [h1, h2, h3] = lab.hosts;
    const file = path.join(lab.dir, 'managed.yaml');
    fs.writeFileSync(
      file,
      [
        `certs: ${certs}`,
        `knownHosts: ${known}`,
        'defaults:',
        '  user: root',
        `  identity: ${lab.clientKey}`,
        `  dir: ${lab.dir}/{name}/troupe`,
        '  service: process',
        'manager:',
        '  name: boss',
        `  address: ${h3!.address}`,
        'workers:',
        `  - name: h[1-2]`,
        `    address: 10.213.${lab.subnet}.[10-11]`,
        '',
      ].join('\n'),
    );
    const managed = loadInventory(file);
    const report = await deployUp({ inventory: managed, joinTimeoutMs: 30_000 });
    expect(report.results.map((r) => [r.host, r.role, r.ok, r.done])).to.deep.equal([
      ['boss', 'manager', true, ['connected', 'uploaded', 'certificate', 'started', 'joined']],
      ['h1', 'worker', true, ['connected', 'uploaded', 'certificate', 'started', 'joined']],
      ['h2', 'worker', true, ['connected', 'uploaded', 'certificate', 'started', 'joined']],
    ]);
    const status = await deployStatus({ inventory: managed });
    expect(status.hosts.map((s) => [s.host, s.running, s.joined])).to.deep.equal([['boss', true, true], ['h1', true, true], ['h2', true, true]]);
    const stopped = await deployStop({ inventory: managed });
    expect(stopped.results.map((r) => r.done)).to.deep.equal([['connected', 'stopped'], ['connected', 'stopped'], ['connected', 'stopped']]);
    expect(fs.existsSync(path.join(h1!.dir, 'troupe', 'versions'))).to.equal(true);
    const after = await deployStatus({ inventory: managed });
    expect(after.hosts.map((s) => s.running)).to.deep.equal([false, false, false]);
    expect((await deployDown({ inventory: managed })).ok).to.equal(true);
    for (const name of ['h1', 'h2', 'boss']) expect(fs.existsSync(path.join(lab.dir, name, 'troupe'))).to.equal(false);
  });
});

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
