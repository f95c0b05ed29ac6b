/**
 * What `ClusterSystem.spawn` takes besides the behaviour and the name: where the actor hangs, its
 * first state, what runs after it stopped, what a throw in its behaviour does, and whether it waits
 * for a turn of its own.
 */
import type { ActorRef } from '../../protocols/actor-ref.js';

export interface SpawnOptions<S> {
  parent?: ActorRef;
  initialState?: S;
  /** Called after the actor stopped, with its last state. */
  afterStop?: (state: S) => void;
  /** What to do when the behaviour throws; default: log the message type and stop the actor. */
  onCrash?: 'stop' | 'resume';
  /**
   * A message sent on this node that finds the actor idle, outside every actor's turn (a timer, a
   * promise callback), is handled before `dispatch` returns, not a turn later (nact-drain.ts).
   */
  inline?: boolean;
}
