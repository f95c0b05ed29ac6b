/**
 * The self-contained bundle `troupe deploy` installs: the built code (dist/ without tests and
 * benchmarks), the production dependencies (node_modules entries package-lock.json does not mark
 * `dev`), and package.json, as one deterministic tar.gz. A host needs only `node`: no registry, no
 * compiler. Its SHA-256 is checked on the host after the upload, and names the version:
 * `<package version>-<first 12 hex of the sha256>`, so that any change of code or dependencies is a
 * new version and the same build is the same version on every run.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { DeployError, ErrorCodes } from '../errors.js';
import { writeTar, type TarEntry } from './tar-writer.js';

export interface Bundle {
  /** `<version>-<sha12>`: the versioned directory's name on the hosts. */
  id: string;
  sha256: string;
  /** A local file holding the tar.gz. */
  file: string;
  bytes: number;
}

/** The folders of dist/ that make the runtime (dist/test and dist/bench are left out). */
export const BUNDLED_DIST = ['bin', 'src', 'actors', 'protocols', 'certs'];

export interface BundleOptions {
  /** The package root: the folder with package.json, package-lock.json, dist/, node_modules/. Default: this installation's. */
  root?: string;
  /** Extra files (path → content) added to the bundle: a test makes a "new version" this way. */
  extra?: Record<string, string>;
  /** Where the tar.gz is written. Default: the OS temporary folder. */
  outDir?: string;
}

const cache = new Map<string, Bundle>();

/** This installation's package root (dist/src/deploy/bundle.js is three levels down). */
export function packageRoot(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
}

/**
 * Builds the bundle (once per process for the same root and extras). Asynchronous all through (file
 * reads, gzip on the thread pool): the process building it may be a cluster node with heartbeats to keep.
 */
export async function buildBundle(options: BundleOptions = {}): Promise<Bundle> {
  const root = path.resolve(options.root ?? packageRoot());
  const cacheKey = JSON.stringify([root, options.extra ?? {}]);
  const cached = cache.get(cacheKey);
  if (cached && fs.existsSync(cached.file)) return cached;

  const pkg = (await readJson(path.join(root, 'package.json'))) as { version?: string };
  const lock = (await readJson(path.join(root, 'package-lock.json'))) as { packages?: Record<string, { dev?: boolean; link?: boolean }> };
  const entries: TarEntry[] = [];
  const dirs = new Set<string>();
  const addDir = (rel: string) => {
    const parts = rel.split('/');
    for (let i = 1; i <= parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      if (d !== '' && !dirs.has(d)) {
        dirs.add(d);
        entries.push({ path: d, type: 'directory', mode: 0o755 });
      }
    }
  };
  const addFile = async (rel: string, abs: string) => {
    addDir(path.posix.dirname(rel) === '.' ? '' : path.posix.dirname(rel));
    const stat = await fs.promises.stat(abs);
    entries.push({ path: rel, type: 'file', mode: stat.mode & 0o111 ? 0o755 : 0o644, data: await fs.promises.readFile(abs) });
  };
  const walk = async (rel: string, skip: (rel: string) => boolean): Promise<void> => {
    const abs = path.join(root, rel);
    for (const name of (await fs.promises.readdir(abs)).sort()) {
      const childRel = `${rel}/${name}`;
      if (skip(childRel)) continue;
      const st = await fs.promises.lstat(path.join(abs, name));
      if (st.isDirectory()) await walk(childRel, skip);
      else if (st.isFile()) await addFile(childRel, path.join(abs, name));
      // symlinks (node_modules/.bin) are left out: nothing at run time needs them
    }
  };

  await addFile('package.json', path.join(root, 'package.json'));
  const noMaps = (rel: string) => rel.endsWith('.map') || rel.endsWith('.d.ts') || rel.endsWith('.tsbuildinfo');
  for (const dir of BUNDLED_DIST) {
    if (!fs.existsSync(path.join(root, 'dist', dir))) throw new DeployError(ErrorCodes.SETTING, `${path.join(root, 'dist', dir)}: missing; build first (npm run build)`);
    await walk(`dist/${dir}`, noMaps);
  }
  const production = Object.entries(lock.packages ?? {})
    .filter(([key, meta]) => key.startsWith('node_modules/') && !meta.dev && !meta.link)
    .map(([key]) => key)
    .filter((key) => fs.existsSync(path.join(root, key)))
    .sort();
  // a nested node_modules holds packages of their own lock entries (walked, or not, by their own key)
  for (const key of production) await walk(key, (rel) => rel.endsWith('/.bin') || rel === `${key}/node_modules`);
  for (const [rel, content] of Object.entries(options.extra ?? {}).sort()) {
    addDir(path.posix.dirname(rel) === '.' ? '' : path.posix.dirname(rel));
    entries.push({ path: rel, type: 'file', mode: 0o644, data: Buffer.from(content) });
  }

  const gz = await promisify(zlib.gzip)(writeTar(entries), { level: 6 });
  const sha256 = createHash('sha256').update(gz).digest('hex');
  const id = `${pkg.version ?? '0.0.0'}-${sha256.slice(0, 12)}`;
  const outDir = options.outDir ?? os.tmpdir();
  const file = path.join(outDir, `troupe-bundle-${id}.tar.gz`);
  if (!fs.existsSync(file)) {
    const tmp = `${file}.${process.pid}.tmp`;
    await fs.promises.writeFile(tmp, gz);
    await fs.promises.rename(tmp, file);
  }
  const bundle = { id, sha256, file, bytes: gz.length };
  cache.set(cacheKey, bundle);
  return bundle;
}

async function readJson(file: string): Promise<unknown> {
  try {
    return JSON.parse(await fs.promises.readFile(file, 'utf8'));
  } catch (cause) {
    throw new DeployError(ErrorCodes.SETTING, `${file}: cannot read it to build the bundle (${(cause as Error).message})`, { cause });
  }
}
