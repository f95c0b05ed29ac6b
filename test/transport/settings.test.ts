import { expect } from 'chai';
import { ErrorCodes, SettingError } from '../../src/errors.js';
import {
  DEFAULT_PORT,
  DEFAULT_TRANSPORT_SETTINGS,
  transportSettings,
  type TransportSettings,
} from '../../src/transport/settings.js';
import { expectCode } from '../fixtures/expect-code.js';

const NUMERIC: (keyof TransportSettings)[] = [
  'heartbeatIntervalMs',
  'heartbeatTimeoutMs',
  'handshakeTimeoutMs',
  'maxFrameBytes',
  'maxBatch',
  'highWaterBytes',
  'maxBufferedBytes',
  'reconnectMinMs',
  'reconnectMaxMs',
  'maxStrikes',
  'strikeWindowMs',
];

function badSetting(given: Partial<TransportSettings>): SettingError {
  const err = expectCode(() => transportSettings(given), ErrorCodes.SETTING);
  expect(err).to.be.instanceOf(SettingError);
  return err;
}

describe('unit: transport settings', () => {
  it('has the documented defaults', () => {
    expect(DEFAULT_PORT).to.equal(7400);
    expect(transportSettings()).to.deep.equal({
      heartbeatIntervalMs: 1000,
      heartbeatTimeoutMs: 3000,
      handshakeTimeoutMs: 5000,
      maxFrameBytes: 16 * 1024 * 1024,
      maxBatch: 1024,
      highWaterBytes: 4 * 1024 * 1024,
      maxBufferedBytes: 64 * 1024 * 1024,
      reconnectMinMs: 100,
      reconnectMaxMs: 5000,
      reconnect: true,
      maxStrikes: 16,
      strikeWindowMs: 10_000,
    });
  });

  it('returns a fresh object; the defaults are frozen', () => {
    const s = transportSettings();
    expect(s).to.not.equal(DEFAULT_TRANSPORT_SETTINGS);
    expect(Object.isFrozen(DEFAULT_TRANSPORT_SETTINGS)).to.equal(true);
    s.maxBatch = 1;
    expect(DEFAULT_TRANSPORT_SETTINGS.maxBatch).to.equal(1024);
  });

  it('keeps the defaults of what is not given', () => {
    const s = transportSettings({ maxBatch: 8, reconnect: false, heartbeatTimeoutMs: 1001 });
    expect(s).to.deep.equal({ ...DEFAULT_TRANSPORT_SETTINGS, maxBatch: 8, reconnect: false, heartbeatTimeoutMs: 1001 });
  });

  for (const key of NUMERIC) {
    it(`${key}: a positive integer, else TROUPE_E_SETTING naming the option and the value`, () => {
      for (const [value, shown] of [[0, '0'], [-1, '-1'], [1.5, '1.5'], [Number.NaN, 'NaN'], [Infinity, 'Infinity'], ['100', '"100"'], [null, 'null']] as const) {
        const err = badSetting({ [key]: value } as unknown as Partial<TransportSettings>);
        expect(err.message).to.equal(`transport.${key}: expected a positive integer, got ${shown}`);
      }
    });
  }

  it('reconnect: true or false only', () => {
    expect(badSetting({ reconnect: 'yes' as unknown as boolean }).message).to.equal('transport.reconnect: expected true or false, got "yes"');
    expect(badSetting({ reconnect: 1 as unknown as boolean }).message).to.equal('transport.reconnect: expected true or false, got 1');
  });

  it('heartbeatTimeoutMs must be more than heartbeatIntervalMs', () => {
    expect(badSetting({ heartbeatTimeoutMs: 1000 }).message).to.equal(
      'transport.heartbeatTimeoutMs: expected more than heartbeatIntervalMs (1000), got 1000',
    );
    expect(badSetting({ heartbeatIntervalMs: 5000 }).message).to.equal(
      'transport.heartbeatTimeoutMs: expected more than heartbeatIntervalMs (5000), got 3000',
    );
    expect(transportSettings({ heartbeatTimeoutMs: 1001 }).heartbeatTimeoutMs).to.equal(1001);
  });

  it('reconnectMaxMs must be at least reconnectMinMs', () => {
    expect(badSetting({ reconnectMaxMs: 99 }).message).to.equal('transport.reconnectMaxMs: expected at least reconnectMinMs (100), got 99');
    expect(badSetting({ reconnectMinMs: 6000 }).message).to.equal('transport.reconnectMaxMs: expected at least reconnectMinMs (6000), got 5000');
    const s = transportSettings({ reconnectMinMs: 100, reconnectMaxMs: 100 });
    expect([s.reconnectMinMs, s.reconnectMaxMs]).to.deep.equal([100, 100]);
  });

  it('maxBufferedBytes must be at least highWaterBytes + maxFrameBytes (a peer is cut only past congestion and one frame)', () => {
    expect(badSetting({ maxBufferedBytes: 20 * 1024 * 1024 - 1 }).message).to.equal(
      'transport.maxBufferedBytes: expected at least highWaterBytes + maxFrameBytes (4194304 + 16777216 = 20971520), got 20971519',
    );
    expect(badSetting({ maxFrameBytes: 64 * 1024 * 1024 }).message).to.contain('transport.maxBufferedBytes: expected at least highWaterBytes + maxFrameBytes');
    expect(transportSettings({ highWaterBytes: 1024, maxFrameBytes: 1024, maxBufferedBytes: 2048 }).maxBufferedBytes).to.equal(2048);
  });
});
