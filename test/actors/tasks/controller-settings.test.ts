import { expect } from 'chai';
import { ClusterSystem } from '../../../src/cluster/cluster-system.js';
import { controllerSettings, DEFAULT_CONTROLLER_SETTINGS, DEFAULT_MAX_FINISHED, DEFAULT_TAIL_BYTES } from '../../../actors/tasks/controller-settings.js';
import { spawnController } from '../../../actors/tasks/controller.js';
import { DEFAULT_TASK_LIMITS } from '../../../actors/tasks/task-table.js';
import { MAX_FINISHED } from '../../../actors/tasks/task-client.js';
import { silentLogger } from '../../../src/log.js';
import { testPki } from '../../fixtures/pki.js';
import { expectCode } from '../../fixtures/expect-code.js';

describe('Controller settings', function () {
  this.timeout(60_000);
  it('fills in the defaults; the task client remembers as many finished tasks as the table', () => {
    expect(controllerSettings()).to.deep.equal(DEFAULT_CONTROLLER_SETTINGS);
    expect([DEFAULT_MAX_FINISHED, DEFAULT_TAIL_BYTES]).to.deep.equal([DEFAULT_TASK_LIMITS.maxFinished, DEFAULT_TASK_LIMITS.tailBytes]);
    expect(MAX_FINISHED).to.equal(DEFAULT_MAX_FINISHED);
    expect(controllerSettings({ maxFinished: 5, tailBytes: undefined })).to.deep.include({ maxFinished: 5, tailBytes: DEFAULT_TAIL_BYTES });
  });

  it('a bad value: TROUPE_E_SETTING naming the option, the value and what was expected', () => {
    const cases: [Parameters<typeof controllerSettings>[0], string][] = [
      [{ maxFinished: -1 }, 'maxFinished: expected a whole number of tasks ≥ 0, got -1'],
      [{ tailBytes: 1.5 }, 'tailBytes: expected a whole number of bytes ≥ 0, got 1.5'],
      [{ maxCommandBytes: 0 }, 'maxCommandBytes: expected a positive whole number of bytes, got 0'],
      [{ maxRetries: NaN }, 'maxRetries: expected a whole number ≥ 0, got NaN'],
      [{ timeoutGraceMs: -5 }, 'timeoutGraceMs: expected milliseconds ≥ 0, got -5'],
      [{ pageBytes: Infinity }, 'pageBytes: expected a positive whole number of bytes, got Infinity'],
      [{ resultAckDelayMs: -1 }, 'resultAckDelayMs: expected a whole number of milliseconds from 0 to 60000, got -1'],
    ];
    for (const [given, message] of cases) {
      const err = expectCode(() => controllerSettings(given), 'TROUPE_E_SETTING');
      expect(err.message).to.equal(message);
    }
  });

  it('are checked when the Controller is spawned, before it takes anything', async () => {
    const system = await ClusterSystem.start({ identity: testPki().identity('manager'), listen: { host: '127.0.0.1', port: 0 }, log: silentLogger() });
    try {
      const err = expectCode(() => spawnController(system, { maxFinished: -1 }), 'TROUPE_E_SETTING');
      expect(err.message).to.equal('maxFinished: expected a whole number of tasks ≥ 0, got -1');
    } finally {
      await system.shutdown();
    }
  });
});
