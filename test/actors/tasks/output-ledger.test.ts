/**
 * OutputLedger: what a subscriber received of each task, checked against seq and the final record.
 */
import { expect } from 'chai';
import type { TaskOutput, TaskRecord } from '../../../protocols/tasks.js';
import { OutputLedger } from '../../../actors/tasks/output-ledger.js';

const chunk = (seq: number, text: string, id = 'abc-1'): TaskOutput => ({ type: 'taskOutput', id, worker: 'worker-1', stream: 'stdout', seq, data: Buffer.from(text) });
const record = (fields: Partial<TaskRecord>): TaskRecord => ({
  id: 'abc-1',
  command: 'x',
  selector: '',
  status: 'running',
  worker: 'worker-1',
  attempts: 1,
  retries: 0,
  submittedAt: 1,
  startedAt: 2,
  finishedAt: null,
  exitCode: null,
  signal: null,
  durationMs: null,
  stdoutBytes: 0,
  stderrBytes: 0,
  error: null,
  broadcast: null,
  ...fields,
});

describe('client: OutputLedger', () => {
  it('whole output: every chunk taken once, in order; no loss at the end', () => {
    const ledger = new OutputLedger();
    expect(ledger.take(chunk(0, 'ab'))).to.equal(true); // before the submit's reply: still counted
    ledger.update(record({}));
    expect(ledger.take(chunk(1, 'cd'))).to.equal(true);
    expect(ledger.loss(record({ status: 'succeeded', exitCode: 0, stdoutBytes: 4 }))).to.equal(undefined);
  });

  it('a repeat (a worker resending after a manager restart) is dropped and not counted twice', () => {
    const ledger = new OutputLedger();
    ledger.update(record({}));
    for (const [seq, text] of [[0, 'a'], [1, 'b'], [0, 'a'], [1, 'b'], [2, 'c']] as const) ledger.take(chunk(seq, text));
    expect(ledger.take(chunk(2, 'c'))).to.equal(false);
    expect(ledger.loss(record({ status: 'failed', exitCode: 3, stdoutBytes: 3 }))).to.equal(undefined);
  });

  it('a gap in seq, or fewer bytes than the worker read, is a loss, said with numbers', () => {
    const gap = new OutputLedger();
    gap.update(record({}));
    gap.take(chunk(0, 'a'));
    gap.take(chunk(3, 'd'));
    expect(gap.loss(record({ status: 'succeeded', exitCode: 0, stdoutBytes: 4 }))).to.equal('2 of its 4 bytes did not arrive, 2 chunks missing');
    const short = new OutputLedger();
    short.update(record({}));
    short.take(chunk(0, 'a'));
    expect(short.loss(record({ status: 'succeeded', exitCode: 0, stdoutBytes: 1, stderrBytes: 5 }))).to.equal('5 of its 6 bytes did not arrive');
  });

  it('a retry counts its attempt from 0; a task lost with its worker, or never started, has no count to hold it to', () => {
    const ledger = new OutputLedger();
    ledger.update(record({}));
    ledger.take(chunk(0, 'first try'));
    ledger.update(record({ status: 'pending', worker: null, startedAt: null }));
    ledger.update(record({ attempts: 2 }));
    expect(ledger.take(chunk(0, 'again'))).to.equal(true);
    expect(ledger.loss(record({ attempts: 2, status: 'succeeded', exitCode: 0, stdoutBytes: 5 }))).to.equal(undefined);
    expect(new OutputLedger().loss(record({ status: 'lost', stdoutBytes: 10 }))).to.equal(undefined);
    expect(new OutputLedger().loss(record({ status: 'cancelled', attempts: 0, startedAt: null }))).to.equal(undefined);
  });
});
