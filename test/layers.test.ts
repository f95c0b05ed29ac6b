/**
 * The shape of the sources, checked on every run: the layers import only downwards, no file
 * imports itself back through others, and no source file outside test/ is over 500 lines (a file
 * that long has two concerns; STYLE.md 1). Reads the .ts files themselves (the repository is the
 * parent of dist/), so a type-only import counts as much as any other.
 *
 * The layers, bottom first (DESIGN.md "Layers and folders"): protocols/ with src/errors.ts and
 * src/log.ts (every layer raises errors and logs), certs/, src/transport/, src/cluster/, actors/,
 * src/deploy/ and src/testbed/ (side by side), src/cli/, and at the top bin/ and src/index.ts (the
 * public API re-exports every layer). A file may import from its own layer and any below it.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const MAX_LINES = 500;

/** [folder or file, rank]: a file belongs to the longest entry its path starts with. */
const LAYERS: readonly [string, number][] = [
  ['protocols', 0],
  ['src/errors.ts', 0],
  ['src/log.ts', 0],
  ['certs', 1],
  ['src/transport', 2],
  ['src/cluster', 3],
  ['actors', 4],
  ['src/deploy', 5],
  ['src/testbed', 5],
  ['src/cli', 6],
  ['bin', 7],
  ['src/index.ts', 7],
];
const LAYER_NAMES = ['protocols', 'certs', 'src/transport', 'src/cluster', 'actors', 'src/deploy | src/testbed', 'src/cli', 'bin | src/index.ts'];

function rankOf(file: string): number | undefined {
  let best: [string, number] | undefined;
  for (const entry of LAYERS) {
    const [at] = entry;
    if ((file === at || file.startsWith(`${at}/`)) && (!best || at.length > best[0].length)) best = entry;
  }
  return best?.[1];
}

function sourceFiles(): string[] {
  const files: string[] = [];
  const walk = (dir: string): void => {
    const abs = path.join(ROOT, dir);
    if (!fs.existsSync(abs)) return;
    for (const entry of fs.readdirSync(abs, { withFileTypes: true })) {
      const rel = `${dir}/${entry.name}`;
      if (entry.isDirectory()) walk(rel);
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) files.push(rel);
    }
  };
  for (const [at] of LAYERS) if (!at.endsWith('.ts')) walk(at);
  for (const [at] of LAYERS) if (at.endsWith('.ts') && fs.existsSync(path.join(ROOT, at))) files.push(at);
  return files.sort();
}

/** The relative imports of a file (import, export … from, import(), side-effect imports), as repo paths. */
function importsOf(file: string): string[] {
  // Doc comments may quote code; comments that open a line are dropped before matching.
  const text = fs.readFileSync(path.join(ROOT, file), 'utf8').replace(/^\s*\/\*[\s\S]*?\*\//gm, '').replace(/^\s*\/\/.*$/gm, '');
  const specs = new Set<string>();
  for (const re of [/\b(?:import|export)\s[^'";]*?\bfrom\s*['"]([^'"]+)['"]/g, /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g, /^\s*import\s*['"]([^'"]+)['"]/gm]) {
    for (const m of text.matchAll(re)) specs.add(m[1]!);
  }
  return [...specs].filter((s) => s.startsWith('.')).map((s) => path.posix.normalize(path.posix.join(path.posix.dirname(file), s)).replace(/\.js$/, '.ts'));
}

describe('the layers of the sources', function () {
  const files = sourceFiles();
  const graph = new Map(files.map((f) => [f, importsOf(f)]));

  it('finds the sources (every layer that exists has files)', function () {
    expect(files).to.include.members(['protocols/wire.ts', 'src/cluster/cluster-system.ts', 'actors/nodes.ts', 'src/cli/main.ts', 'bin/troupe.ts', 'src/index.ts']);
    // The test reads what it should: a known import is found.
    expect(graph.get('src/cluster/cluster-system.ts')).to.include('src/cluster/inbound-gate.ts');
  });

  it('no import from a lower layer to a higher one, or out of the sources', function () {
    const wrong: string[] = [];
    for (const [file, imports] of graph) {
      const from = rankOf(file)!;
      for (const target of imports) {
        const to = rankOf(target);
        if (to === undefined) {
          if (/^(test|bench)\//.test(target) || !fs.existsSync(path.join(ROOT, target))) wrong.push(`${file} → ${target} (not a source file)`);
        } else if (to > from) {
          wrong.push(`${file} (${LAYER_NAMES[from]}) → ${target} (${LAYER_NAMES[to]})`);
        }
      }
    }
    expect(wrong, `imports that go up a layer:\n  ${wrong.join('\n  ')}`).to.deep.equal([]);
  });

  it('no import cycle between files', function () {
    // Tarjan: every strongly connected component of more than one file (or a file importing itself) is a cycle.
    const index = new Map<string, number>();
    const low = new Map<string, number>();
    const stack: string[] = [];
    const onStack = new Set<string>();
    const cycles: string[][] = [];
    let next = 0;
    const visit = (v: string): void => {
      index.set(v, next);
      low.set(v, next++);
      stack.push(v);
      onStack.add(v);
      for (const w of graph.get(v) ?? []) {
        if (!graph.has(w)) continue;
        if (!index.has(w)) {
          visit(w);
          low.set(v, Math.min(low.get(v)!, low.get(w)!));
        } else if (onStack.has(w)) {
          low.set(v, Math.min(low.get(v)!, index.get(w)!));
        }
      }
      if (low.get(v) === index.get(v)) {
        const component: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          onStack.delete(w);
          component.push(w);
        } while (w !== v);
        if (component.length > 1 || graph.get(v)!.includes(v)) cycles.push(component.sort());
      }
    };
    for (const f of files) if (!index.has(f)) visit(f);
    expect(cycles, `files that import one another:\n  ${cycles.map((c) => c.join(' ⇄ ')).join('\n  ')}`).to.deep.equal([]);
  });

  it(`no source file over ${MAX_LINES} lines`, function () {
    const long = files
      .map((f) => [f, fs.readFileSync(path.join(ROOT, f), 'utf8').split('\n').length - 1] as const)
      .filter(([, lines]) => lines > MAX_LINES)
      .map(([f, lines]) => `${f}: ${lines} lines`);
    expect(long, `files over ${MAX_LINES} lines (split them at their seams):\n  ${long.join('\n  ')}`).to.deep.equal([]);
  });
});
