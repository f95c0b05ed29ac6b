/**
 * The README's embedding example ("Embedding: running tasks from your own program") compiled and run
 * as a user would: against the package `npm pack` makes (so `files` and `exports` are tested too),
 * imported as `troupe`, type-checked with strict TypeScript, then run as its own Node process, which
 * starts a manager, a worker and a client and runs one task. Its stdout must be exactly what the
 * README says.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const MARKER = '<!-- embedding-example: compiled and run by test/embedding.cluster.test.ts -->';

/** The ```ts block right after the marker in README.md. */
function readmeExample(): string {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const at = readme.indexOf(MARKER);
  if (at < 0) throw new Error(`README.md has no ${MARKER}`);
  const block = /^```ts\n([\s\S]*?)^```$/m.exec(readme.slice(at));
  if (!block) throw new Error('README.md: no ```ts block after the embedding marker');
  return block[1]!;
}

describe('embedding troupe: the README example', function () {
  this.timeout(90_000);
  let dir: string;
  let child: ChildProcess | undefined;

  before(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-embed-'));
  });

  after(function () {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('compiles against the packed package and prints the task output and its result', async function () {
    // The package as published: npm pack, unpacked into node_modules/troupe. Its dependencies are
    // the repository's own (symlinked), as an install would have put them beside it.
    const tarball = execFileSync('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: ROOT, encoding: 'utf8' }).trim().split('\n').pop()!;
    const modules = path.join(dir, 'node_modules');
    fs.mkdirSync(modules);
    execFileSync('tar', ['xzf', path.join(dir, tarball), '-C', dir]);
    fs.renameSync(path.join(dir, 'package'), path.join(modules, 'troupe'));
    for (const name of fs.readdirSync(path.join(ROOT, 'node_modules'))) {
      if (name.startsWith('.')) continue;
      fs.symlinkSync(path.join(ROOT, 'node_modules', name), path.join(modules, name));
    }
    expect(fs.existsSync(path.join(modules, 'troupe', 'dist', 'test'))).to.equal(false);
    expect(fs.existsSync(path.join(modules, 'troupe', 'dist', 'bench'))).to.equal(false);

    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'embedder', private: true, type: 'module' }));
    fs.writeFileSync(path.join(dir, 'example.ts'), readmeExample());
    const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    // prettier-ignore
    const flags = ['--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--strict', '--skipLibCheck', '--types', 'node', '--outDir', 'out', 'example.ts'];
    try {
      execFileSync(process.execPath, [tsc, ...flags], { cwd: dir, encoding: 'utf8' });
    } catch (err) {
      throw new Error(`the README example does not compile:\n${(err as { stdout?: string }).stdout ?? err}`);
    }

    child = spawn(process.execPath, [path.join(dir, 'out', 'example.js')], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TROUPE_LOG: 'warn' } });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child!.on('exit', (c) => resolve(c)));
    expect({ code, stdout }, stderr).to.deep.equal({ code: 0, stdout: 'hello, world\non worker-1: succeeded, exit code 0\n' });
  });
});
