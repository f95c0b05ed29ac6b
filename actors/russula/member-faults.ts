/**
 * The faults a Russula worker inflicts on its own member (a step's `faults`): member i of the
 * first `count` (i from its name, GROUP/i) is SIGKILLed, process group and all, once,
 * (i + 1) × intervalMs after it became ready. Each kill and restart is recorded in the member's
 * `faults` (when, and the pid). Whether to start the command again (`recover`) is the worker's.
 */
import type { FaultEvent, FaultSpec } from '../../protocols/russula/index.js';

/** What of a member the faults read and change. */
export interface FaultedMember {
  name: string;
  step: { faults?: FaultSpec };
  process?: { pid?: number; cancel(): void };
  faults: FaultEvent[];
  faultTimers: NodeJS.Timeout[];
  /** The process now ending was killed on purpose (a fault), not by itself. */
  crashing: boolean;
}

/** Arms the member's one fault, if it has one: `fire` is called when it is due. */
export function scheduleFault(m: FaultedMember, fire: () => void): void {
  const index = Number(m.name.slice(m.name.lastIndexOf('/') + 1));
  if (m.step.faults && m.faultTimers.length === 0 && m.faults.length === 0 && index < m.step.faults.count) {
    m.faultTimers.push(setTimeout(fire, (index + 1) * m.step.faults.intervalMs));
  }
}

/** SIGKILLs the member's process group (or cancels its process when that fails), recording the kill. */
export function inflictFault(m: FaultedMember & { process: NonNullable<FaultedMember['process']> }): void {
  const pid = m.process.pid;
  m.crashing = true;
  m.faults.push({ action: 'kill', at: Date.now(), ...(pid !== undefined && { pid }) });
  if (pid === undefined) return m.process.cancel();
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    m.process.cancel();
  }
}

/** Records the restart of the member's process after a fault (its pid, when already known). */
export function recordRestart(m: FaultedMember): void {
  const pid = m.process?.pid;
  m.faults.push({ action: 'restart', at: Date.now(), ...(pid !== undefined && { pid }) });
}
