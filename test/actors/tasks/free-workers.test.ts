/**
 * FreeWorkers (the WorkerPool's free workers, least loaded first): after any sequence of changes,
 * `first()` is the worker the pool's placement order puts first (load, then running, then name),
 * as a walk over every member finds it, and the members are exactly those added and not deleted.
 * A seeded sequence of 5,000 random changes over 200 workers of 1 to 4 slots.
 */
import { expect } from 'chai';
import { before, FreeWorkers } from '../../../actors/tasks/free-workers.js';

interface W {
  name: string;
  slots: number;
  running: Set<number>;
}

/** A small deterministic generator (mulberry32): the same sequence on every run. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('FreeWorkers', () => {
  it('keeps first() the least-loaded free worker, by load, then running, then name, through 5,000 changes', () => {
    const rand = random(17);
    const workers: W[] = Array.from({ length: 200 }, (_, i) => ({ name: `worker-${i}`, slots: 1 + Math.floor(rand() * 4), running: new Set() }));
    const free = new FreeWorkers<W>();
    /** In the pool (a worker may leave and come back). */
    const present = new Set(workers);
    const expected = () => new Set(workers.filter((x) => present.has(x) && x.running.size < x.slots));
    let task = 0;
    for (const w of workers) free.update(w);
    for (let step = 0; step < 5_000; step++) {
      const w = workers[Math.floor(rand() * workers.length)]!;
      const r = rand();
      if (r < 0.5) {
        if (w.running.size < w.slots) w.running.add(task++);
      } else if (r < 0.95) {
        if (w.running.size > 0) w.running.delete([...w.running][0]!);
      } else if (!present.delete(w)) present.add(w);
      // As the pool does after every change of a worker (#keepFree).
      if (present.has(w) && w.running.size < w.slots) free.update(w);
      else free.delete(w);
      let best: W | undefined;
      for (const x of expected()) if (!best || before(x, best)) best = x;
      expect(free.first()?.name).to.equal(best?.name);
      expect(free.size).to.equal(expected().size);
    }
    const names = (ws: Iterable<W>) => [...ws].map((x) => x.name).sort();
    expect(names(free)).to.deep.equal(names(expected()));
  });
});
