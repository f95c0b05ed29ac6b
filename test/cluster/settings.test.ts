import { expect } from 'chai';
import { ErrorCodes, SettingError } from '../../src/errors.js';
import {
  clusterSettings,
  DEFAULT_DEAD_LETTER_LOG_INTERVAL_MS,
  DEFAULT_MANAGER_DOWN_AFTER_MS,
  DEFAULT_MEMBER_DOWN_AFTER_MS,
  DEFAULT_QUERY_TIMEOUT_MS,
} from '../../src/cluster/settings.js';
import { transportSettings } from '../../src/transport/settings.js';
import { expectCode } from '../fixtures/expect-code.js';

type Given = Parameters<typeof clusterSettings>[0];

function badSetting(given: Given): SettingError {
  const err = expectCode(() => clusterSettings(given), ErrorCodes.SETTING);
  expect(err).to.be.instanceOf(SettingError);
  return err;
}

describe('unit: cluster settings', () => {
  it('has the documented defaults, with the transport defaults composed in', () => {
    expect(DEFAULT_MANAGER_DOWN_AFTER_MS).to.equal(0);
    expect(DEFAULT_MEMBER_DOWN_AFTER_MS).to.equal(5000);
    expect(DEFAULT_QUERY_TIMEOUT_MS).to.equal(5000);
    expect(DEFAULT_DEAD_LETTER_LOG_INTERVAL_MS).to.equal(1000);
    expect(clusterSettings()).to.deep.equal({
      downAfterMs: undefined,
      queryTimeoutMs: 5000,
      deadLetterLogIntervalMs: 1000,
      transport: transportSettings(),
    });
  });

  it('takes what is given, and the default for what is undefined', () => {
    const s = clusterSettings({ downAfterMs: 0, queryTimeoutMs: 1, deadLetterLogIntervalMs: 0, transport: { maxBatch: 2 } });
    expect(s).to.deep.equal({ downAfterMs: 0, queryTimeoutMs: 1, deadLetterLogIntervalMs: 0, transport: transportSettings({ maxBatch: 2 }) });
    const u = clusterSettings({ queryTimeoutMs: undefined, deadLetterLogIntervalMs: undefined });
    expect([u.queryTimeoutMs, u.deadLetterLogIntervalMs]).to.deep.equal([5000, 1000]);
  });

  it('downAfterMs: an integer ≥ 0', () => {
    expect(badSetting({ downAfterMs: -1 }).message).to.equal('downAfterMs: expected an integer ≥ 0, got -1');
    expect(badSetting({ downAfterMs: 0.5 }).message).to.equal('downAfterMs: expected an integer ≥ 0, got 0.5');
    expect(badSetting({ downAfterMs: '5' as unknown as number }).message).to.equal('downAfterMs: expected an integer ≥ 0, got "5"');
  });

  it('queryTimeoutMs: a positive integer', () => {
    expect(badSetting({ queryTimeoutMs: 0 }).message).to.equal('queryTimeoutMs: expected a positive integer, got 0');
    expect(badSetting({ queryTimeoutMs: -1 }).message).to.equal('queryTimeoutMs: expected a positive integer, got -1');
    expect(badSetting({ queryTimeoutMs: Number.NaN }).message).to.match(/^queryTimeoutMs: expected .+, got NaN$/);
  });

  it('deadLetterLogIntervalMs: an integer ≥ 0', () => {
    expect(badSetting({ deadLetterLogIntervalMs: -5 }).message).to.equal('deadLetterLogIntervalMs: expected an integer ≥ 0, got -5');
    expect(badSetting({ deadLetterLogIntervalMs: Infinity }).message).to.equal('deadLetterLogIntervalMs: expected an integer ≥ 0, got Infinity');
  });

  it('a bad transport setting fails with the transport option named', () => {
    expect(badSetting({ transport: { maxStrikes: 0 } }).message).to.equal('transport.maxStrikes: expected a positive integer, got 0');
  });
});
