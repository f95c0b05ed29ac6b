/**
 * One timer per heartbeat period for all the connections of a process, instead of one timer each:
 * a manager holding a thousand idle workers wakes four times per period, not four thousand.
 *
 * A connection adds its tick function when it opens and removes it when it closes. The timer runs
 * only while some connection listens, and never keeps the process alive (unref).
 */
type Tick = (now: number) => void;

/**
 * The period a connection's heartbeat ticks at: a quarter of its heartbeat interval. Others who
 * want a clock that wakes the process no more than it is woken anyway (the lag sampler, the live
 * view) tick at the same period.
 */
export function heartbeatTickMs(heartbeatIntervalMs: number): number {
  return Math.max(1, Math.floor(heartbeatIntervalMs / 4));
}

class Clock {
  readonly ticks = new Set<Tick>();
  timer: NodeJS.Timeout | undefined;
}

const clocks = new Map<number, Clock>();

/** Calls `tick(Date.now())` every `periodMs` until `removeTick`. */
export function addTick(periodMs: number, tick: Tick): void {
  let clock = clocks.get(periodMs);
  if (!clock) clocks.set(periodMs, (clock = new Clock()));
  clock.ticks.add(tick);
  clock.timer ??= setInterval(() => {
    const now = Date.now();
    for (const t of [...clock.ticks]) t(now);
  }, periodMs).unref();
}

export function removeTick(periodMs: number, tick: Tick): void {
  const clock = clocks.get(periodMs);
  if (!clock) return;
  clock.ticks.delete(tick);
  if (clock.ticks.size > 0) return;
  clearInterval(clock.timer);
  clocks.delete(periodMs);
}
