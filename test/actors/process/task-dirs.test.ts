/**
 * TaskDirs against the real filesystem: directories made ahead, taken off their path at once when
 * discarded, deleted behind; and runCommand using them. Each test ends with its root empty again.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { spawnSync, spawn } from 'node:child_process';
import { expect } from 'chai';
import { runCommand, TASK_DIR_PREFIX } from '../../../actors/process/run-command.js';
import { TaskDirs, TRASH_DIR_PREFIX } from '../../../actors/process/task-dirs.js';

/** Resolves once `condition()` holds (background work has no event to wait for); rejects after `withinMs`. */
async function until(condition: () => boolean, what: string, withinMs = 5000): Promise<void> {
  const deadline = performance.now() + withinMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`still waiting after ${withinMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

describe('actors: TaskDirs', () => {
  let root: string;
  let dirs: TaskDirs | undefined;
  const entries = (prefix: string) => fs.readdirSync(root).filter((e) => e.startsWith(prefix));

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-task-dirs-test-'));
    dirs = undefined;
  });

  afterEach(async () => {
    dirs?.close();
    // A spare being made when close() ran is removed when it arrives.
    await dirs?.drained();
    const left = fs.readdirSync(root);
    fs.rmSync(root, { recursive: true, force: true });
    expect(left, 'left behind by close()').to.deep.equal([]);
  });

  it('hands out fresh, empty, distinct directories under the real root, made ahead', async () => {
    dirs = new TaskDirs(root, { ahead: 2 });
    expect(dirs.root).to.equal(fs.realpathSync(root));
    const first = dirs.take(); // none made yet: made now, and two spares start
    await until(() => entries(TASK_DIR_PREFIX).length === 3, 'two spares made');
    const [second, third] = [dirs.take(), dirs.take()];
    for (const dir of [first, second, third]) {
      expect(path.dirname(dir)).to.equal(dirs.root);
      expect(path.basename(dir).startsWith(TASK_DIR_PREFIX)).to.equal(true);
      expect(fs.readdirSync(dir)).to.deep.equal([]);
    }
    expect(new Set([first, second, third]).size).to.equal(3);
    for (const dir of [first, second, third]) await dirs.discard(dir);
  });

  it('makes its spares right after the turn that took one, and none once closed', async () => {
    dirs = new TaskDirs(root, { ahead: 2 });
    const first = dirs.take();
    expect(entries(TASK_DIR_PREFIX)).to.deep.equal([path.basename(first)]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(entries(TASK_DIR_PREFIX)).to.have.length(3);
    await dirs.discard(first);
    // A refill queued when close() runs makes nothing.
    const second = dirs.take();
    dirs.close();
    await dirs.drained();
    expect(entries(TASK_DIR_PREFIX)).to.deep.equal([path.basename(second)]);
    await dirs.discard(second);
  });

  it('discard takes the directory off its path at once and deletes it behind, contents and all', async () => {
    dirs = new TaskDirs(root, { ahead: 0 });
    const dir = dirs.take();
    fs.mkdirSync(path.join(dir, 'sub', 'deep'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'sub', 'deep', 'f'), 'x');
    const empty = dirs.take();
    expect(await dirs.discard(dir)).to.equal(undefined);
    expect(await dirs.discard(empty)).to.equal(undefined);
    expect(fs.existsSync(dir)).to.equal(false);
    expect(fs.existsSync(empty)).to.equal(false);
    const [trash] = entries(TRASH_DIR_PREFIX);
    expect(trash).to.be.a('string');
    await until(() => fs.readdirSync(path.join(root, trash!)).length === 0, 'the trash emptied');
  });

  it('deletes what waits in the trash right after the turn of the next take, or when drained() asks', async () => {
    dirs = new TaskDirs(root, { ahead: 0 });
    const trashEntries = () => fs.readdirSync(path.join(root, entries(TRASH_DIR_PREFIX)[0]!));
    for (let i = 0; i < 3; i++) expect(await dirs.discard(dirs.take())).to.equal(undefined);
    // Nothing deleted yet, nor handed to the thread pool: all three still there.
    expect(dirs.trashWaiting).to.equal(3);
    expect(trashEntries()).to.have.length(3);
    const next = dirs.take();
    await new Promise((resolve) => setImmediate(resolve));
    expect(dirs.trashWaiting).to.equal(0);
    expect(trashEntries(), 'deleted in the turn after the take').to.deep.equal([]);
    // One that is not empty goes to the thread pool, and drained() waits for it.
    fs.writeFileSync(path.join(next, 'f'), 'x');
    await dirs.discard(next);
    expect(dirs.trashWaiting).to.equal(1);
    await dirs.drained();
    expect(dirs.trashWaiting).to.equal(0);
    expect(trashEntries()).to.deep.equal([]);
  });

  it('what waits in the trash is deleted by itself when no take follows', async () => {
    dirs = new TaskDirs(root, { ahead: 0 });
    await dirs.discard(dirs.take());
    const [trash] = entries(TRASH_DIR_PREFIX);
    await until(() => fs.readdirSync(path.join(root, trash!)).length === 0, 'the trash emptied after TRASH_DELAY_MS');
    expect(dirs.trashWaiting).to.equal(0);
  });

  it('a directory that cannot be moved is removed in place; one already gone is no error', async () => {
    dirs = new TaskDirs(root, { ahead: 0 });
    const gone = dirs.take();
    fs.rmdirSync(gone);
    expect(await dirs.discard(gone)).to.equal(undefined);
    dirs.close(); // no trash any more: discard removes in place
    const dir = dirs.take();
    fs.writeFileSync(path.join(dir, 'f'), 'x');
    expect(await dirs.discard(dir)).to.equal(undefined);
    expect(fs.existsSync(dir)).to.equal(false);
    expect(entries(TRASH_DIR_PREFIX)).to.deep.equal([]);
  });

  it('does not hand out a spare older than maxSpareAgeMs', async () => {
    dirs = new TaskDirs(root, { ahead: 1, maxSpareAgeMs: 0 });
    const first = dirs.take();
    await until(() => entries(TASK_DIR_PREFIX).length === 2, 'a spare made');
    const spare = fs.readdirSync(root).map((e) => path.join(dirs!.root, e)).find((d) => d !== first)!;
    await new Promise((r) => setTimeout(r, 5));
    const second = dirs.take();
    expect(second).to.not.equal(spare);
    expect(fs.existsSync(spare)).to.equal(false);
    await dirs.discard(first);
    await dirs.discard(second);
  });

  it('runCommand with dirs: runs in one of them, and its path is gone when result resolves', async () => {
    dirs = new TaskDirs(root, { ahead: 1 });
    let stdout = '';
    const running = runCommand({ command: 'pwd; touch f; mkdir d', dirs, onOutput: (_s, data) => (stdout += data.toString()) });
    const result = await running.result;
    expect(result).to.include({ outcome: 'exited', exitCode: 0 });
    expect(result).to.not.have.property('cleanupError');
    expect(stdout).to.equal(`${result.cwd}\n`);
    expect(path.dirname(result.cwd)).to.equal(dirs.root);
    expect(fs.existsSync(result.cwd)).to.equal(false);
    const [trash] = entries(TRASH_DIR_PREFIX);
    await until(() => fs.readdirSync(path.join(root, trash!)).length === 0, 'the trash emptied');
  });

  it('a root that does not exist yet: take() says why (each time), and hands out directories once it exists', () => {
    const later = path.join(root, 'later');
    dirs = new TaskDirs(later, { ahead: 0 });
    expect(dirs.root).to.equal(later);
    expect(() => dirs!.take()).to.throw(/ENOENT/);
    expect(() => dirs!.take()).to.throw(/ENOENT/);
    fs.mkdirSync(later);
    const dir = dirs.take();
    expect(path.dirname(dir)).to.equal(fs.realpathSync(later));
    expect(dirs.root).to.equal(fs.realpathSync(later));
    fs.rmdirSync(dir);
    fs.rmdirSync(later);
  });

  it('with an owner: names its directories for owner and process, and removes those of the same owner whose process is gone', async () => {
    const dead = spawnSync('/bin/true').pid!; // reaped: its pid names no process now
    const live = spawn('/bin/sleep', ['100'], { stdio: 'ignore' });
    try {
      const make = (name: string) => {
        fs.mkdirSync(path.join(root, name));
        fs.writeFileSync(path.join(root, name, 'left'), 'x');
        return name;
      };
      const leftovers = [make(`${TASK_DIR_PREFIX}worker-1.${dead}-aaaaaa`), make(`${TRASH_DIR_PREFIX}worker-1.${dead}-bbbbbb`)];
      const kept = [
        make(`${TASK_DIR_PREFIX}worker-1.${live.pid}-cccccc`), // the same name, but its process runs
        make(`${TASK_DIR_PREFIX}worker-2.${dead}-dddddd`), // another worker's
        make(`${TASK_DIR_PREFIX}worker-1.x.${dead}-eeeeee`), // worker-1.x's, not worker-1's
        make(`${TASK_DIR_PREFIX}eeeeee`), // made without an owner
      ];
      dirs = new TaskDirs(root, { ahead: 0, owner: 'worker-1' });
      expect([...dirs.removedLeftovers].sort()).to.deep.equal(leftovers.map((n) => path.join(dirs!.root, n)).sort());
      expect(fs.readdirSync(root).sort()).to.deep.equal([...kept].sort());
      const dir = dirs.take();
      expect(path.basename(dir).startsWith(`${TASK_DIR_PREFIX}worker-1.${process.pid}-`)).to.equal(true);
      await dirs.discard(dir);
      expect(fs.readdirSync(root).filter((n) => n.startsWith(`${TRASH_DIR_PREFIX}worker-1.${process.pid}-`))).to.have.length(1);
      expect(() => new TaskDirs(root, { owner: '../x' })).to.throw(/owner/);
      for (const name of kept) fs.rmSync(path.join(root, name), { recursive: true });
    } finally {
      live.kill('SIGKILL');
    }
  });
});
