/**
 * The defaults of the one-shot client commands (`attach`, `run`, `status`, `logs`, …): apart from
 * the client node itself so that the command line can show them (`--help`) without loading the
 * cluster, the transport or the protocols.
 */

/** How long `attach`, `run` and `status` try to reach the manager before they give up. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5000;
/** How long a joined client waits for a lost manager to be back before its tasks count as lost: 30 seconds. */
export const DEFAULT_RECONNECT_GRACE_MS = 30_000;
/** How long `troupe run` waits for a first worker in an empty cluster. */
export const DEFAULT_WAIT_FOR_WORKER_MS = 30_000;
