import { expect } from 'chai';
import { Backoff } from '../../src/transport/backoff.js';

/** A random source that returns the given values in turn, then repeats the last. */
function sequence(...values: number[]): () => number {
  let i = 0;
  return () => values[Math.min(i++, values.length - 1)]!;
}

function take(backoff: Backoff, n: number): number[] {
  return Array.from({ length: n }, () => backoff.next());
}

describe('unit: transport backoff', () => {
  it('doubles from min up to max, each delay at the top of its range when random is ~1', () => {
    const backoff = new Backoff(100, 5000, () => 0.999999999);
    expect(take(backoff, 9)).to.deep.equal([100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
  });

  it('never goes below half the ceiling: random 0 gives exactly 50 %', () => {
    const backoff = new Backoff(100, 5000, () => 0);
    expect(take(backoff, 8)).to.deep.equal([50, 100, 200, 400, 800, 1600, 2500, 2500]);
  });

  it('uses the random value linearly between 50 % and 100 % of the ceiling', () => {
    const backoff = new Backoff(1000, 1000, sequence(0.5, 0.25, 0.1));
    expect(take(backoff, 3)).to.deep.equal([750, 625, 550]);
  });

  it('counts attempts, and reset starts again from min', () => {
    const backoff = new Backoff(10, 1000, () => 0.999999999);
    expect(backoff.attempts).to.equal(0);
    expect(take(backoff, 4)).to.deep.equal([10, 20, 40, 80]);
    expect(backoff.attempts).to.equal(4);
    backoff.reset();
    expect(backoff.attempts).to.equal(0);
    expect(backoff.next()).to.equal(10);
    expect(backoff.attempts).to.equal(1);
  });

  it('stays finite and at the cap after very many attempts', () => {
    const backoff = new Backoff(100, 60_000, () => 0.999999999);
    const delays = take(backoff, 2000);
    expect(delays.at(-1)).to.equal(60_000);
    expect(delays.every(Number.isFinite)).to.equal(true);
    expect(backoff.attempts).to.equal(2000);
  });

  it('with Math.random (the default), every delay is an integer within [ceiling / 2, ceiling]', () => {
    for (let run = 0; run < 50; run++) {
      const backoff = new Backoff(100, 5000);
      for (let n = 0; n < 10; n++) {
        const ceiling = Math.min(5000, 100 * 2 ** n);
        const delay = backoff.next();
        expect(Number.isInteger(delay), `delay ${delay}`).to.equal(true);
        expect(delay, `attempt ${n}`).to.be.within(ceiling / 2, ceiling);
      }
    }
  });

  it('with Math.random, delays are spread out, not in lockstep', () => {
    const firsts = new Set(Array.from({ length: 200 }, () => new Backoff(1000, 1000).next()));
    // 200 draws over 501 possible values: all equal would mean there is no jitter.
    expect(firsts.size).to.be.greaterThan(50);
  });
});
