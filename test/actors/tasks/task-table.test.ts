import { expect } from 'chai';
import { Tail, TaskTable } from '../../../actors/tasks/task-table.js';

const spec = (id: string) => ({ id, command: 'true', env: {}, timeoutMs: 0 });

describe('the task table', () => {
  it('a tail keeps exactly the last bytes of a stream', () => {
    const tail = new Tail(5);
    tail.push(Buffer.from('abc'));
    expect(tail.toBuffer().toString()).to.equal('abc');
    tail.push(Buffer.from('defg'));
    expect(tail.toBuffer().toString()).to.equal('cdefg');
    tail.push(Buffer.from('0123456789'));
    expect(tail.toBuffer().toString()).to.equal('56789');
    expect(new Tail(0).toBuffer().length).to.equal(0);
  });

  it('moves a task through its statuses and counts its output', () => {
    const table = new TaskTable({ maxFinished: 10, tailBytes: 4 });
    const id = table.newId();
    expect(id).to.match(/^[0-9a-z]{3}-1$/);
    const entry = table.add(spec(id), { selector: 'tag=gpu', retries: 1, subscribers: [], broadcast: null, now: 10 });
    expect(entry.record).to.include({ status: 'pending', attempts: 0, worker: null, submittedAt: 10 });
    table.running(entry, 'worker-1', 20);
    expect(entry.record).to.include({ status: 'running', worker: 'worker-1', attempts: 1, startedAt: 20 });
    table.output(entry, 'stdout', Buffer.from('hello'));
    table.output(entry, 'stderr', Buffer.from('!'));
    table.result(entry, { id, outcome: 'exited', exitCode: 0, signal: null, startedAt: 20, durationMs: 5, stdoutBytes: 5, stderrBytes: 1, error: null }, 30);
    expect(entry.record).to.include({ status: 'succeeded', exitCode: 0, stdoutBytes: 5, stderrBytes: 1, finishedAt: 30, durationMs: 5 });
    expect(entry.tail.stdout.toBuffer().toString()).to.equal('ello');
    expect(table.isFinished(entry)).to.equal(true);
  });

  it('maps outcomes to statuses', () => {
    const table = new TaskTable();
    const statusOf = (outcome: 'exited' | 'timed-out' | 'cancelled' | 'failed-to-start', exitCode: number | null) => {
      const entry = table.add(spec(table.newId()), { selector: '', retries: 0, subscribers: [], broadcast: null, now: 0 });
      table.result(entry, { id: entry.record.id, outcome, exitCode, signal: null, startedAt: 0, durationMs: 0, stdoutBytes: 0, stderrBytes: 0, error: null }, 1);
      return entry.record.status;
    };
    expect([statusOf('exited', 0), statusOf('exited', 2), statusOf('exited', null), statusOf('timed-out', null), statusOf('cancelled', null), statusOf('failed-to-start', null)]).to.deep.equal([
      'succeeded',
      'failed',
      'failed',
      'timed-out',
      'cancelled',
      'failed',
    ]);
  });

  it('remembers at most maxFinished finished tasks, dropping the oldest; live ones are kept', () => {
    const table = new TaskTable({ maxFinished: 2, tailBytes: 0 });
    const live = table.add(spec('live'), { selector: '', retries: 0, subscribers: [], broadcast: null, now: 0 });
    for (const id of ['a', 'b', 'c']) table.finish(table.add(spec(id), { selector: '', retries: 0, subscribers: [], broadcast: null, now: 0 }), 'cancelled', 1);
    expect(table.list().map((r) => r.id)).to.deep.equal(['live', 'b', 'c']);
    expect(table.list(new Set(['pending'])).map((r) => r.id)).to.deep.equal([live.record.id]);
    expect(table.get('a')).to.equal(undefined);
  });

  it('each table draws its own random id prefix, so a restarted Controller does not reuse ids', () => {
    const ids = new Set(Array.from({ length: 50 }, () => new TaskTable().newId()));
    expect(ids.size).to.be.greaterThan(45);
  });
  it('pages the task list by a cursor, a count and a size, in submission order; the last page has no next', () => {
    const table = new TaskTable({ maxFinished: 100, tailBytes: 0 });
    const big = (id: string) => ({ id, command: 'x'.repeat(1000), env: {}, timeoutMs: 0 });
    for (const id of ['a', 'b', 'c', 'd', 'e']) table.add(big(id), { selector: '', retries: 0, subscribers: [], broadcast: null, now: 0 });
    table.finish(table.get('c')!, 'cancelled', 1);
    const ids = (p: { tasks: { id: string }[]; next?: number }) => [p.tasks.map((t) => t.id), p.next];
    // By count.
    const first = table.page(undefined, 0, 2, 1 << 20);
    expect(ids(first)).to.deep.equal([['a', 'b'], 2]);
    expect(ids(table.page(undefined, first.next!, 2, 1 << 20))).to.deep.equal([['c', 'd'], 4]);
    expect(ids(table.page(undefined, 4, 2, 1 << 20))).to.deep.equal([['e'], undefined]);
    // By size: about 1.5 KB a record here, so 3 KB holds two; a record larger than the bound still comes, alone.
    expect(ids(table.page(undefined, 0, 100, 3200))).to.deep.equal([['a', 'b'], 2]);
    expect(ids(table.page(undefined, 0, 100, 10))).to.deep.equal([['a'], 1]);
    // By status: the cursor still counts in submission order.
    expect(ids(table.page(new Set(['pending']), 0, 2, 1 << 20))).to.deep.equal([['a', 'b'], 2]);
    expect(ids(table.page(new Set(['pending']), 2, 2, 1 << 20))).to.deep.equal([['d', 'e'], undefined]);
  });

  it('remembers every worker that ran the task, with its latest attempt; a result names whose run it was', () => {
    const table = new TaskTable();
    const entry = table.add(spec('t'), { selector: '', retries: 2, subscribers: [], broadcast: null, now: 0 });
    table.running(entry, 'worker-1', 1);
    table.retry(entry, 'lost');
    table.running(entry, 'worker-2', 2);
    expect([...entry.ranOn]).to.deep.equal([['worker-1', 1], ['worker-2', 2]]);
    table.result(entry, { id: 't', outcome: 'exited', exitCode: 3, signal: null, startedAt: 1, durationMs: 1, stdoutBytes: 0, stderrBytes: 0, error: null }, 3, 'worker-1');
    expect(entry.record).to.include({ status: 'failed', exitCode: 3, worker: 'worker-1', attempts: 2 });
  });
});
