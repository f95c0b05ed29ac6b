/**
 * What a worker says about itself when it checks in with the receptionist (under `worker` or
 * `russula`): its metadata, read back by whoever picks workers. The metadata comes from a peer, so
 * every field is checked and a missing or malformed one gets its default, never an exception.
 */

/** The fields a selector matches (`tag=`, `name=`, `platform=`, `arch=`) and the worker's slots. */
export interface WorkerTraits {
  /** `meta.name`, or the node's name when there is none. */
  name: string;
  tags: string[];
  platform: string;
  arch: string;
  /** Tasks it runs at once: a non-negative integer; 1 when absent or malformed. */
  slots: number;
}

/** Reads a worker's traits from the metadata it checked in with, on node `node`. */
export function workerTraits(node: string, meta: Readonly<Record<string, unknown>>): WorkerTraits {
  return {
    name: typeof meta.name === 'string' ? meta.name : node,
    tags: Array.isArray(meta.tags) ? meta.tags.filter((t): t is string => typeof t === 'string') : [],
    platform: typeof meta.platform === 'string' ? meta.platform : '',
    arch: typeof meta.arch === 'string' ? meta.arch : '',
    slots: typeof meta.slots === 'number' && Number.isInteger(meta.slots) && meta.slots >= 0 ? meta.slots : 1,
  };
}
