/**
 * The Worker's settings (actors/tasks/worker-settings.ts): defaults, and each bad option refused at
 * construction with TROUPE_E_SETTING naming the option, the value and what was expected.
 */
import os from 'node:os';
import { expect } from 'chai';
import { DEFAULT_KILL_GRACE_MS } from '../../../actors/process/run-command.js';
import {
  DEFAULT_MAX_HELD_OUTPUT_BYTES,
  DEFAULT_SLOTS,
  DEFAULT_SUBSCRIBER_WAIT_MS,
  DEFAULT_USAGE_INTERVAL_MS,
  workerSettings,
  type WorkerOptions,
} from '../../../actors/tasks/worker-settings.js';
import { ErrorCodes, SettingError } from '../../../src/errors.js';
import { expectCode } from '../../fixtures/expect-code.js';

describe('actors: worker settings', () => {
  it('fills in the defaults', () => {
    expect(workerSettings()).to.deep.equal({
      slots: DEFAULT_SLOTS,
      tags: [],
      killGraceMs: DEFAULT_KILL_GRACE_MS,
      usageIntervalMs: DEFAULT_USAGE_INTERVAL_MS,
      tmpRoot: os.tmpdir(),
      spawner: undefined,
      maxHeldOutputBytes: DEFAULT_MAX_HELD_OUTPUT_BYTES,
      subscriberWaitMs: DEFAULT_SUBSCRIBER_WAIT_MS,
    });
    expect(DEFAULT_SLOTS).to.equal(os.availableParallelism());
    expect([DEFAULT_USAGE_INTERVAL_MS, DEFAULT_MAX_HELD_OUTPUT_BYTES, DEFAULT_SUBSCRIBER_WAIT_MS]).to.deep.equal([1000, 4 * 1024 * 1024, 10_000]);
  });

  it('keeps what is given, and drops repeated tags', () => {
    const s = workerSettings({ slots: 3, tags: ['gpu', 'ssd', 'gpu'], killGraceMs: 0, usageIntervalMs: 50, tmpRoot: '/var/tmp', spawner: false, maxHeldOutputBytes: 0, subscriberWaitMs: 0 });
    expect(s).to.deep.equal({ slots: 3, tags: ['gpu', 'ssd'], killGraceMs: 0, usageIntervalMs: 50, tmpRoot: '/var/tmp', spawner: false, maxHeldOutputBytes: 0, subscriberWaitMs: 0 });
  });

  const cases: [string, WorkerOptions, string, string][] = [
    ['no slots', { slots: 0 }, 'slots', 'slots: expected a whole number from 1 to 10000, got 0'],
    ['too many slots', { slots: 10_001 }, 'slots', 'slots: expected a whole number from 1 to 10000, got 10001'],
    ['fractional slots', { slots: 1.5 }, 'slots', 'slots: expected a whole number from 1 to 10000, got 1.5'],
    ['a tag with a space', { tags: ['a b'] }, 'tags', 'tags: expected tags of letters, digits, ".", "_" or "-" (up to 64), got "a b"'],
    ['tags that are not an array', { tags: 'gpu' as unknown as string[] }, 'tags', ''],
    ['a negative grace', { killGraceMs: -1 }, 'killGraceMs', ''],
    ['a usage interval of 0', { usageIntervalMs: 0 }, 'usageIntervalMs', ''],
    ['an empty tmpRoot', { tmpRoot: '' }, 'tmpRoot', ''],
    ['a spawner that is not one', { spawner: {} as never }, 'spawner', ''],
    ['a negative held-output bound', { maxHeldOutputBytes: -1 }, 'maxHeldOutputBytes', 'maxHeldOutputBytes: expected a whole number of bytes ≥ 0, got -1'],
    ['a subscriber wait past what a timer holds', { subscriberWaitMs: 2 ** 31 }, 'subscriberWaitMs', ''],
    ['a bench runCommand that is not a function', { runCommand: 'noop' as never }, 'runCommand', 'runCommand: expected a function, got "noop"'],
  ];
  for (const [what, given, option, message] of cases) {
    it(`refuses ${what} with TROUPE_E_SETTING naming ${option}`, () => {
      const err = expectCode(() => workerSettings(given), ErrorCodes.SETTING);
      expect(err).to.be.instanceOf(SettingError);
      if (message !== '') expect(err.message).to.equal(message);
      else expect(err.message.startsWith(`${option}: expected `), err.message).to.equal(true);
    });
  }
});
