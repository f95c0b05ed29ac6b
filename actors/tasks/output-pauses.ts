/**
 * Why each task's output is paused, for the Controller: a congested link to one of its subscribers
 * (`link NODE`), or a subscriber that asked (`pauseOutput`: its own stdout is backed up,
 * `subscriber NODE PATH`). The first reason pauses the task's command on its worker (`throttle`
 * paused), the last one to go resumes it; a task is never resumed while any reason holds.
 *
 * What a subscriber asked is dropped when its node goes down, so a client that dies while paused
 * does not hold the task for ever. Reasons are kept only for tasks the Controller knows and has
 * not finished (the caller checks), so a peer cannot grow this map with ids of its own making.
 */
export class OutputPauses {
  readonly #reasons = new Map<string, Set<string>>();

  /** `tell(id, paused)` sends `throttle` to the task's worker. */
  constructor(private readonly tell: (id: string, paused: boolean) => void) {}

  static linkReason(node: string): string {
    return `link ${node}`;
  }

  static subscriberReason(ref: { node: string; path: string }): string {
    return `subscriber ${ref.node} ${ref.path}`;
  }

  isPaused(id: string): boolean {
    return this.#reasons.has(id);
  }

  /** Adds a reason; false if it was there already. The first reason pauses the task. */
  add(id: string, reason: string): boolean {
    const reasons = this.#reasons.get(id);
    if (!reasons) {
      this.#reasons.set(id, new Set([reason]));
      this.tell(id, true);
      return true;
    }
    if (reasons.has(reason)) return false;
    reasons.add(reason);
    return true;
  }

  /** Removes a reason; the last one gone resumes the task. */
  remove(id: string, reason: string): void {
    const reasons = this.#reasons.get(id);
    if (!reasons?.delete(reason)) return;
    if (reasons.size > 0) return;
    this.#reasons.delete(id);
    this.tell(id, false);
  }

  /** Everything the subscribers on `node` asked: that node went down. */
  dropNode(node: string): void {
    const prefix = `subscriber ${node} `;
    for (const [id, reasons] of [...this.#reasons]) for (const reason of [...reasons]) if (reason.startsWith(prefix)) this.remove(id, reason);
  }

  /** The task ended: nothing to resume. */
  forget(id: string): void {
    this.#reasons.delete(id);
  }
}
