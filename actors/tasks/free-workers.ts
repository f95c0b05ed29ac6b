/**
 * The WorkerPool's workers with a free slot, kept in placement order: least loaded by
 * running/slots, then fewest running, then name (a binary heap with each member's place, so that
 * a change of one worker's running tasks is O(log n)). `first()` is the worker an unrestricted
 * task goes to, at once, where a walk over every free worker cost O(W) per placement (5,000
 * workers: 5,000 comparisons per task while the cluster is not saturated).
 *
 * Guarantee: `first()` is exactly the minimum of that order over the members, provided `update` is
 * called after every change of a member's running tasks (before any other call).
 */

/** What the order reads of a worker. */
export interface Placeable {
  readonly name: string;
  readonly slots: number;
  readonly running: { readonly size: number };
}

export class FreeWorkers<W extends Placeable> implements Iterable<W> {
  readonly #heap: W[] = [];
  readonly #at = new Map<W, number>();

  get size(): number {
    return this.#heap.length;
  }

  has(w: W): boolean {
    return this.#at.has(w);
  }

  /** The least loaded member (see the module comment), or undefined when empty. */
  first(): W | undefined {
    return this.#heap[0];
  }

  /** Adds `w`, or puts it in its place again after its running tasks changed. */
  update(w: W): void {
    const at = this.#at.get(w);
    if (at === undefined) {
      this.#heap.push(w);
      this.#at.set(w, this.#heap.length - 1);
      this.#up(this.#heap.length - 1);
    } else if (!this.#up(at)) this.#down(at);
  }

  delete(w: W): boolean {
    const at = this.#at.get(w);
    if (at === undefined) return false;
    this.#at.delete(w);
    const last = this.#heap.pop()!;
    if (at < this.#heap.length) {
      this.#heap[at] = last;
      this.#at.set(last, at);
      if (!this.#up(at)) this.#down(at);
    }
    return true;
  }

  /** The members, in no particular order. */
  [Symbol.iterator](): Iterator<W> {
    return this.#heap[Symbol.iterator]();
  }

  /** Moves the entry at `i` up while it precedes its parent; true if it moved. */
  #up(i: number): boolean {
    const start = i;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (before(this.#heap[parent]!, this.#heap[i]!)) break;
      this.#swap(i, parent);
      i = parent;
    }
    return i !== start;
  }

  #down(i: number): void {
    const n = this.#heap.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let best = i;
      if (l < n && before(this.#heap[l]!, this.#heap[best]!)) best = l;
      if (r < n && before(this.#heap[r]!, this.#heap[best]!)) best = r;
      if (best === i) return;
      this.#swap(i, best);
      i = best;
    }
  }

  #swap(i: number, j: number): void {
    const a = this.#heap[i]!;
    const b = this.#heap[j]!;
    this.#heap[i] = b;
    this.#heap[j] = a;
    this.#at.set(b, i);
    this.#at.set(a, j);
  }
}

/** The placement order: whether `a` goes before `b` (names are unique, so this is strict). */
export function before(a: Placeable, b: Placeable): boolean {
  const la = load(a);
  const lb = load(b);
  if (la !== lb) return la < lb;
  if (a.running.size !== b.running.size) return a.running.size < b.running.size;
  return a.name < b.name;
}

function load(w: Placeable): number {
  return w.slots === 0 ? Infinity : w.running.size / w.slots;
}
