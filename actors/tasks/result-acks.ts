/**
 * The Controller's acknowledgements of results (a worker keeps each result until it is
 * acknowledged), held a moment on the way so that they travel inside the next `work` for the same
 * worker (its `acks`) instead of in a frame of their own.
 *
 * Why: a task's end and the start of the worker's next task were two frames from the manager, each
 * a TLS record written here and a wake-up, a read and a decode there. When tasks follow each other
 * (a script running one after another, a queue, every slot kept busy), the next `work` for that
 * worker comes a fraction of a millisecond after the result.
 *
 * Guarantees:
 * - Every acknowledgement held is sent: with the next `work` for that worker, or as `resultAck` at
 *   most `delayMs` after it was held, whichever is first. The worker takes a work's `acks` before
 *   its task, so it sees them in the order they were held, as if each had come alone.
 * - At most MAX_ACKS_PER_WORK wait for one worker; the one past that sends them all at once.
 * - `delayMs` 0: each one is sent at once, as `resultAck`.
 * - A worker that is gone (`forget`) loses what waited for it, as a message in flight to it would:
 *   a new incarnation reports its unacknowledged results again and is acknowledged then.
 * Holding an acknowledgement changes nothing a task sees: the worker's slot is free once it has
 * sent the result; it keeps the result (and the task's Executor) up to `delayMs` longer.
 */
import type { ActorRef } from '../../protocols/actor-ref.js';
import { MAX_ACKS_PER_WORK } from '../../protocols/tasks.js';
import type { ClusterSystem } from '../../src/cluster/cluster-system.js';

export class ResultAcks {
  /** By worker node: where they go and the task ids, oldest first. */
  readonly #held = new Map<string, { ref: ActorRef; ids: string[] }>();
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly system: ClusterSystem,
    readonly delayMs: number,
  ) {}

  /** Acknowledges task `id`'s result to the worker `ref`: soon, or with its next work. */
  hold(ref: ActorRef, id: string): void {
    if (this.delayMs === 0) return this.system.dispatch(ref, { type: 'resultAck', id });
    let held = this.#held.get(ref.node);
    // None yet, or an old incarnation's (gone with it): a fresh list.
    if (!held || !held.ref.equals(ref)) this.#held.set(ref.node, (held = { ref, ids: [] }));
    held.ids.push(id);
    if (held.ids.length >= MAX_ACKS_PER_WORK) this.#send(ref.node);
    // Armed by the first one held and never cleared: a cleared timer still wakes the process when
    // it was due (Node leaves libuv's timer set), so clearing it at each take would cost a wake-up
    // a task. It fires at most once per delayMs, and sends what is held then (often nothing).
    else this.#timer ??= setTimeout(this.#sendAll, this.delayMs).unref();
  }

  /** What waits for the worker `ref`, taken to go in its next work; undefined when nothing does. */
  take(ref: ActorRef): string[] | undefined {
    const held = this.#held.get(ref.node);
    if (!held || !held.ref.equals(ref)) return undefined;
    this.#held.delete(ref.node);
    return held.ids;
  }

  /** The worker on `node` is gone: what waited for it is dropped. */
  forget(node: string): void {
    this.#held.delete(node);
  }

  #sendAll = (): void => {
    this.#timer = undefined;
    for (const node of [...this.#held.keys()]) this.#send(node);
  };

  #send(node: string): void {
    const held = this.#held.get(node);
    if (!held) return;
    this.#held.delete(node);
    for (const id of held.ids) this.system.dispatch(held.ref, { type: 'resultAck', id });
  }
}
