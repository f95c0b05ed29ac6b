/**
 * A task directory's name prefix and its removal: what runCommand's options and TaskDirs both need,
 * in a module of its own so that neither imports the other.
 */
import fs from 'node:fs';
import path from 'node:path';
import { messageOf } from '../../src/errors.js';

/** The per-task directory's name prefix under a TaskDirs root. */
export const TASK_DIR_PREFIX = 'troupe-task-';

/**
 * Removes a task directory; returns why it could not, or undefined. Never throws. `sync: false`:
 * without blocking the event loop even for the first rmdir (for removals off a task's path).
 */
export async function removeTaskDir(dir: string, { sync = true } = {}): Promise<string | undefined> {
  // Most commands leave their directory empty: one rmdir (on a task's path: without a thread-pool round trip).
  try {
    if (sync) fs.rmdirSync(dir);
    else await fs.promises.rmdir(dir);
    return undefined;
  } catch {
    // not empty (or gone): the full removal below
  }
  try {
    await fs.promises.rm(dir, { recursive: true, force: true });
    return undefined;
  } catch {
    // A task may leave directories we may not enter or write (chmod 000): open them up, try again.
    try {
      await makeOwnerWritable(dir);
      await fs.promises.rm(dir, { recursive: true, force: true });
      return undefined;
    } catch (err) {
      return messageOf(err);
    }
  }
}

async function makeOwnerWritable(dir: string): Promise<void> {
  await fs.promises.chmod(dir, 0o700);
  for (const entry of await fs.promises.readdir(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) await makeOwnerWritable(path.join(dir, entry.name));
  }
}
