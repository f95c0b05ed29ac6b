/**
 * What the cluster benches (bench:idle, bench:scale) share: certificates for many nodes, the CPU of
 * a process from /proc, the lines of a child's output, and many lightweight nodes joined from one
 * process over real mTLS sockets, in small groups.
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { createAuthority, issueCertificate, loadIdentity, type Identity } from '../certs/index.js';
import type { ClusterSystem } from '../src/cluster/cluster-system.js';

/** Clock ticks per second of /proc/PID/stat times (USER_HZ): 100 on Linux. */
export const CLOCK_TICKS = 100;

/**
 * A bench's scratch: a new temporary directory and the list of its child processes. `cleanup`
 * (also run at this process's exit, and on SIGINT or SIGTERM) SIGKILLs every child still running and
 * removes the directory.
 */
export function benchScratch(prefix: string): { dir: string; children: ChildProcess[]; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const children: ChildProcess[] = [];
  const cleanup = () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', cleanup);
  // Ctrl-C or a kill of the bench: exit (so cleanup runs) instead of leaving children and files.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(128 + os.constants.signals[signal]));
  return { dir, children, cleanup };
}

/** User + system CPU seconds of a process so far, and its RSS in MiB. */
export function cpuOf(pid: number): { cpuS: number; rssMiB: number } {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After "(comm) ": state is field 3, utime 14, stime 15, rss 24 (pages).
  const utime = Number(fields[14 - 3]);
  const stime = Number(fields[15 - 3]);
  const rssPages = Number(fields[24 - 3]);
  return { cpuS: (utime + stime) / CLOCK_TICKS, rssMiB: (rssPages * 4096) / 2 ** 20 };
}

export function lines(child: ChildProcess, stream: 'stdout' | 'stderr', onLine: (line: string) => void): void {
  readline.createInterface({ input: child[stream]! }).on('line', onLine);
}

/**
 * Writes into `dir` a CA, `manager`, `worker-1` … `worker-N` (one shared key: issuing is cheap, key
 * generation is not) and the given clients.
 */
export function writeCertificates(dir: string, workers: number, clients: readonly string[] = []): void {
  const ca = createAuthority();
  const write = (name: string, pem: { cert: string; key: string }) => {
    fs.writeFileSync(path.join(dir, `${name}.crt`), pem.cert);
    fs.writeFileSync(path.join(dir, `${name}.key`), pem.key, { mode: 0o600 });
  };
  write('ca', ca);
  write('manager', issueCertificate(ca, { name: 'manager', role: 'manager' }));
  for (const name of clients) write(name, issueCertificate(ca, { name, role: 'client' }));
  const first = issueCertificate(ca, { name: 'worker-1', role: 'worker' });
  write('worker-1', first);
  for (let i = 2; i <= workers; i++) write(`worker-${i}`, issueCertificate(ca, { name: `worker-${i}`, role: 'worker', key: first.key }));
}

/**
 * Starts workers `worker-FIRST` … `worker-(FIRST+COUNT-1)` with `start`, in groups of `groupSize`
 * (25: a thousand TLS handshakes at once only time out), each ready (joined) before the next group
 * starts; `onGroup` is told how many have joined after each group.
 */
export async function joinWorkers(
  dir: string,
  first: number,
  count: number,
  start: (identity: Identity, name: string) => Promise<ClusterSystem>,
  onGroup?: (joined: number) => void,
  groupSize = 25,
): Promise<ClusterSystem[]> {
  const systems: ClusterSystem[] = [];
  for (let i = first; i < first + count; i += groupSize) {
    const group: Promise<void>[] = [];
    for (let j = i; j < Math.min(i + groupSize, first + count); j++) {
      const name = `worker-${j}`;
      const system = await start(loadIdentity({ dir, name }), name);
      systems.push(system);
      group.push(system.ready());
    }
    await Promise.all(group);
    onGroup?.(systems.length);
  }
  return systems;
}
