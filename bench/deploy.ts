/**
 * bench:deploy — wall time of `troupe deploy up` on 8 namespace hosts with real sshd
 * (test/fixtures/netns-hosts.ts; needs root, like the deploy tests): a first `up` (install,
 * certificates, start, joined) and a no-op `up`, beside the baseline of 8 `ssh HOST true` run with
 * the same fan-out by OpenSSH's own client, in the same run. Prints one JSON object.
 *
 *   npm run bench:deploy            # HOSTS=8 RUNS=5 by default
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { generateCertificates } from '../certs/index.js';
import { runManager } from '../actors/nodes.js';
import { buildBundle, deployUp, loadInventory } from '../src/deploy/index.js';
import { silentLogger } from '../src/log.js';
import { NetnsLab } from '../test/fixtures/netns-hosts.js';

const HOSTS = Number(process.env.HOSTS ?? 8);
const RUNS = Number(process.env.RUNS ?? 5);

function sshTrue(lab: NetnsLab, known: string, address: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('ssh', ['-i', lab.clientKey, '-o', `UserKnownHostsFile=${known}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', '-o', 'ControlMaster=no', `root@${address}`, 'true'], { stdio: 'ignore' });
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`ssh ${address} true: exit ${code}`))));
  });
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  const lab = await NetnsLab.create({ hosts: HOSTS });
  const manager = await (async () => {
    const certs = path.join(lab.dir, 'certs');
    generateCertificates({ out: certs, hostnames: [lab.managerAddress], workers: 0, clients: 0 });
    return { certs, node: await runManager({ certs, listen: { host: lab.managerAddress, port: 0 }, localWorkers: 0, print: () => {}, log: () => silentLogger(), signals: [] }) };
  })();
  try {
    const known = lab.knownHosts(path.join(lab.dir, 'known_hosts'));
    const file = lab.inventory(path.join(lab.dir, 'troupe-hosts.yaml'), { certs: manager.certs, knownHosts: known, managerPort: manager.node.system.address!.port });
    const inventory = loadInventory(file);

    const ssh: number[] = [];
    const timeSsh = async () => {
      const t = performance.now();
      await Promise.all(lab.hosts.map((h) => sshTrue(lab, known, h.address)));
      ssh.push(performance.now() - t);
    };
    await timeSsh();

    let t = performance.now();
    const bundle = await buildBundle();
    const bundleMs = performance.now() - t;
    t = performance.now();
    const first = await deployUp({ inventory, fanout: HOSTS, bundle });
    const firstMs = performance.now() - t;
    if (!first.ok) throw new Error(`first up failed: ${JSON.stringify(first.results.filter((r) => !r.ok))}`);

    const noop: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      await timeSsh();
      t = performance.now();
      const again = await deployUp({ inventory, fanout: HOSTS, bundle });
      noop.push(performance.now() - t);
      if (!again.ok || again.results.some((r) => r.done.join() !== 'connected')) throw new Error('the no-op up did something');
    }
    const result = {
      bench: 'deploy',
      hosts: HOSTS,
      fanout: HOSTS,
      runs: RUNS,
      bundleBytes: bundle.bytes,
      bundleBuildMs: Math.round(bundleMs),
      firstUpMs: Math.round(firstMs),
      noopUpMsMedian: Math.round(median(noop)),
      noopUpMs: noop.map(Math.round),
      baselineSshTrueMsMedian: Math.round(median(ssh)),
      baselineSshTrueMs: ssh.map(Math.round),
      noopOverBaseline: Number((median(noop) / median(ssh)).toFixed(2)),
      targets: { noopWithin: '2 x baseline', firstUpUnder: '30000 ms' },
    };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } finally {
    await manager.node.stop();
    await lab.destroy();
  }
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
