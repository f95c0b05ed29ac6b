/**
 * signalGroup (actors/process/group-signal.ts): a live group is signalled, an empty one says so
 * without a throw, and the ids that would reach our own group or every process are refused.
 */
import { spawn } from 'node:child_process';
import { expect } from 'chai';
import { signalGroup } from '../../../actors/process/group-signal.js';
import { isGone, until } from '../../fixtures/processes.js';

describe('actors: signalGroup', () => {
  it('signals every process of a live group', async () => {
    const bash = spawn('/bin/bash', ['-c', 'sleep 100 & echo $!; wait'], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
    const sleep = await new Promise<number>((resolve) => bash.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => bash.once('exit', (_, signal) => resolve(signal)));
    expect(signalGroup(bash.pid!, 'SIGKILL')).to.equal(true);
    expect(await exited).to.equal('SIGKILL');
    await until(() => isGone(sleep), 'the sleep, killed with its group');
  });

  it('says false, without a throw, for a group that is empty', async () => {
    // Its only member, reaped by us: then nothing is left of the group (an orphan's zombie would be).
    const sleep = spawn('sleep', ['100'], { detached: true, stdio: 'ignore' });
    await new Promise((resolve) => sleep.once('spawn', resolve));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => sleep.once('exit', (_, signal) => resolve(signal)));
    expect(signalGroup(sleep.pid!, 'SIGTERM')).to.equal(true);
    expect(await exited).to.equal('SIGTERM');
    expect(signalGroup(sleep.pid!, 'SIGKILL')).to.equal(false);
  });

  it('refuses group ids 0, 1 and below (our own group, every process)', () => {
    for (const id of [0, 1, -5, Number.NaN]) expect(signalGroup(id, 'SIGTERM'), String(id)).to.equal(false);
  });
});
