/**
 * One timer per heartbeat period for all the connections of a process, instead of one timer each:
 * a manager holding a thousand idle workers wakes four times per period, not four thousand.
 *
 * A connection adds its tick function when it opens and removes it when it closes. The timer runs
 * only while some connection listens, and never keeps the process alive (unref).
 *
 * A late tick (more than LATE_TICK_PERIODS periods after the last: this process was frozen, by a
 * long GC pause or starved of CPU) runs after the next poll phase instead of at once: what peers
 * sent while we were frozen is read first, so a peer is not judged silent for our own stall. (The
 * expired timer runs before the loop reads any socket; a worker process starved for a few seconds
 * cut every one of its links to a manager that had answered all along.)
 */
type Tick = (now: number) => void;

/** A tick this many periods after the previous one is late: it waits for the sockets to be read. */
export const LATE_TICK_PERIODS = 2;

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
  /** When the timer last fired. */
  last = Date.now();
  /** A late tick waits for its setImmediate. */
  deferred = false;
}

const clocks = new Map<number, Clock>();

/** Calls `tick(Date.now())` every `periodMs` until `removeTick`. */
export function addTick(periodMs: number, tick: Tick): void {
  let clock = clocks.get(periodMs);
  if (!clock) clocks.set(periodMs, (clock = new Clock()));
  clock.ticks.add(tick);
  if (clock.timer) return;
  clock.last = Date.now();
  clock.timer = setInterval(() => {
    const now = Date.now();
    const late = now - clock.last > LATE_TICK_PERIODS * periodMs;
    clock.last = now;
    if (!late) return run(clock, now);
    if (clock.deferred) return;
    clock.deferred = true;
    setImmediate(() => {
      clock.deferred = false;
      run(clock, Date.now());
    });
  }, periodMs).unref();
}

function run(clock: Clock, now: number): void {
  for (const t of [...clock.ticks]) t(now);
}

export function removeTick(periodMs: number, tick: Tick): void {
  const clock = clocks.get(periodMs);
  if (!clock) return;
  clock.ticks.delete(tick);
  if (clock.ticks.size > 0) return;
  clearInterval(clock.timer);
  clocks.delete(periodMs);
}
