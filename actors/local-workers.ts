/**
 * `--local-workers N`: worker nodes as child processes of the manager, joined over mTLS on loopback
 * exactly as remote ones are. They exit when the manager does (the IPC channel closes), even if it
 * is killed. Each runs in its own process group, so that a Ctrl-C at the terminal reaches only the
 * manager (whose REPL cancels the running command with it) and not the workers.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import readline from 'node:readline';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { addCertificate } from '../certs/index.js';
import type { Logger } from '../src/log.js';
import { certificatesOfRole } from '../certs/identity-finder.js';

const BIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'troupe.js');
const STOP_GRACE_MS = 3000;

export interface LocalWorkersOptions {
  count: number;
  certs: string;
  join: { host: string; port: number };
  log: Logger;
  /** Tags per worker: the i-th entry for worker-i, the last one for the rest ("server,ssd"). */
  tags?: readonly string[];
  /** Extra arguments for each `troupe worker` (e.g. --slots). */
  args?: readonly string[];
  /** Environment added to ours for each worker. */
  env?: Record<string, string>;
  /** Each line a worker writes to stderr (its logs); default: straight to our stderr. */
  stderr?: (line: string) => void;
}

export class LocalWorkers {
  readonly names: readonly string[];
  /** Resolves when the first of the workers has exited (for whatever reason). */
  readonly firstExit: Promise<void>;
  #children: ChildProcess[] = [];

  private constructor(names: string[], children: ChildProcess[]) {
    this.names = names;
    this.#children = children;
    this.firstExit = Promise.race(children.map((c) => once(c, 'exit').then(() => {})));
  }

  static start(options: LocalWorkersOptions): LocalWorkers {
    const names = localWorkerNames(options.certs, options.count);
    const host = options.join.host.includes(':') ? `[${options.join.host}]` : options.join.host;
    const children = names.map((name, i) => {
      const tags = options.tags?.length ? options.tags[Math.min(i, options.tags.length - 1)]! : '';
      const child = fork(BIN, ['worker', '--join', `${host}:${options.join.port}`, '--name', name, '--certs', options.certs, '--exit-with-parent', ...(tags ? ['--tags', tags] : []), ...(options.args ?? [])], {
        stdio: ['ignore', 'ignore', options.stderr ? 'pipe' : 'inherit', 'ipc'],
        env: { ...process.env, ...options.env },
        detached: true,
      });
      if (options.stderr) readline.createInterface({ input: child.stderr!, crlfDelay: Infinity }).on('line', options.stderr);
      child.on('exit', (code, signal) => {
        if (code !== 0 && signal !== 'SIGTERM') options.log.warn({ worker: name, code, signal }, 'local worker exited');
      });
      return child;
    });
    return new LocalWorkers(names, children);
  }

  /** SIGTERM each, SIGKILL what is left after a grace period; resolves when all have exited. */
  async stop(): Promise<void> {
    await Promise.all(
      this.#children.map(async (child) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = once(child, 'exit');
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
        await exited;
        clearTimeout(timer);
      }),
    );
  }
}

/**
 * worker-1 … worker-N, from the certificates directory; missing ones are issued from its CA (the
 * manager's machine holds ca.key, and these workers run on it).
 */
function localWorkerNames(certs: string, count: number): string[] {
  const have = new Set(certificatesOfRole(certs, 'worker'));
  const names = Array.from({ length: count }, (_, i) => `worker-${i + 1}`);
  for (const name of names) if (!have.has(name)) addCertificate({ out: certs, name, role: 'worker' });
  return names;
}
