import { expect } from 'chai';
import { pino } from 'pino';
import { LogLimiter } from '../../src/transport/log-limiter.js';

describe('unit: transport log limiter', () => {
  function captured() {
    const lines: { level: number; msg: string; suppressed?: number }[] = [];
    const log = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    return { lines, log };
  }

  it('the first `burst` lines of an interval at warn, the rest at debug; the next interval says how many went to debug', () => {
    const { lines, log } = captured();
    const limiter = new LogLimiter(3, 1000);
    for (let i = 0; i < 10; i++) limiter.warn(log, { i }, 'refused', 5000 + i);
    expect(lines.map((l) => l.level)).to.deep.equal([40, 40, 40, 20, 20, 20, 20, 20, 20, 20]);
    limiter.warn(log, {}, 'refused', 6000);
    expect(lines.at(-1)).to.include({ level: 40, suppressed: 7 });
    limiter.warn(log, {}, 'refused', 6001);
    expect(lines.at(-1)).to.not.have.property('suppressed');
  });

  it('defaults to 20 a minute', () => {
    const limiter = new LogLimiter();
    expect([limiter.burst, limiter.intervalMs]).to.deep.equal([20, 60_000]);
  });
});
