/**
 * A bench's long-lived child process (a manager, a worker, an sshd, a driver): whether it still runs,
 * when it exited, and a stop that asks first (SIGTERM by default: a node stops cleanly and writes any
 * --cpu-prof profile) and SIGKILLs it if it lingers STOP_GRACE_MS. What a child's output means stays
 * with the bench that reads it.
 */
import type { ChildProcess } from 'node:child_process';

export const STOP_GRACE_MS = 5_000;

export class BenchChild {
  readonly exited: Promise<void>;

  constructor(readonly child: ChildProcess) {
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Asks it to stop, then SIGKILL after STOP_GRACE_MS; resolves once it has exited. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.askToStop();
    const timer = setTimeout(() => this.kill(), STOP_GRACE_MS);
    await this.exited;
    clearTimeout(timer);
  }

  kill(): void {
    if (this.running) this.child.kill('SIGKILL');
  }

  /** How stop() asks: SIGTERM unless a child has a way of its own. */
  protected askToStop(): void {
    this.child.kill('SIGTERM');
  }
}
