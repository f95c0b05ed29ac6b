/**
 * Builds the native spawner (spawn-helper.c) into dist/native/troupe-spawn with the system's C
 * compiler (`cc`, or $CC), `-O2 -Wall -Wextra`. `npm run build` runs this after tsc
 * (`node dist/actors/process/spawn-helper-build.js`); the tests that drive the helper call
 * `buildSpawnHelper()` when it is missing. Without a compiler it says so and builds nothing: the
 * worker then uses the Node spawner (spawner.ts, the fallback), and the build still succeeds.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** The built helper: dist/native/troupe-spawn. */
export const SPAWN_HELPER_BINARY = path.resolve(HERE, '..', '..', 'native', 'troupe-spawn');
/** Its source, in the repository (dist/../actors/process/spawn-helper.c). */
export const SPAWN_HELPER_SOURCE = path.resolve(HERE, '..', '..', '..', 'actors', 'process', 'spawn-helper.c');

export interface BuildOutcome {
  built: boolean;
  /** What happened, in a sentence. */
  why: string;
}

/** Compiles the helper (again, when the source is newer); never throws. */
export function buildSpawnHelper(): BuildOutcome {
  const cc = process.env.CC || 'cc';
  if (!fs.existsSync(SPAWN_HELPER_SOURCE)) return { built: false, why: `no ${SPAWN_HELPER_SOURCE}: the native spawner is not built; workers use the Node spawner` };
  try {
    if (fs.statSync(SPAWN_HELPER_BINARY).mtimeMs >= fs.statSync(SPAWN_HELPER_SOURCE).mtimeMs) return { built: true, why: `${SPAWN_HELPER_BINARY} is up to date` };
  } catch {
    // not built yet
  }
  try {
    execFileSync(cc, ['--version'], { stdio: 'ignore' });
  } catch {
    return { built: false, why: `no C compiler (${cc}): the native spawner is not built; workers use the Node spawner (install gcc for the faster one)` };
  }
  fs.mkdirSync(path.dirname(SPAWN_HELPER_BINARY), { recursive: true });
  const temporary = `${SPAWN_HELPER_BINARY}.${process.pid}.tmp`;
  try {
    execFileSync(cc, ['-O2', '-Wall', '-Wextra', '-o', temporary, SPAWN_HELPER_SOURCE], { stdio: ['ignore', 'inherit', 'inherit'] });
    fs.renameSync(temporary, SPAWN_HELPER_BINARY); // whole or not at all, for a worker starting meanwhile
    return { built: true, why: `built ${SPAWN_HELPER_BINARY} with ${cc}` };
  } catch (err) {
    fs.rmSync(temporary, { force: true });
    return { built: false, why: `${cc} failed (${(err as Error).message.split('\n')[0]}): the native spawner is not built; workers use the Node spawner` };
  }
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { why } = buildSpawnHelper();
  console.log(`spawn helper: ${why}`);
}
