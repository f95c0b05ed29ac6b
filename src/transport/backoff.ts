/**
 * Capped, jittered exponential backoff: the n-th delay is a random 50–100 % of min(max, min · 2^n).
 * The jitter keeps a thousand workers from reconnecting in lockstep after a manager restart.
 */
export class Backoff {
  #attempt = 0;
  constructor(
    private readonly minMs: number,
    private readonly maxMs: number,
    private readonly random: () => number = Math.random,
  ) {}

  next(): number {
    const ceiling = Math.min(this.maxMs, this.minMs * 2 ** Math.min(this.#attempt, 30));
    this.#attempt++;
    return Math.round(ceiling * (0.5 + this.random() / 2));
  }

  reset(): void {
    this.#attempt = 0;
  }

  get attempts(): number {
    return this.#attempt;
  }
}
