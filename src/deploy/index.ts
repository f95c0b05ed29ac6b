/**
 * `troupe deploy` as a library (docs/deploy.md): an inventory, then `deployUp` / `deployStatus` /
 * `deployStop` / `deployDown` / `deployLogs`, each returning per-host results instead of printing.
 *
 *   const inventory = loadInventory('troupe-hosts.yaml');
 *   const report = await deployUp({ inventory, fanout: 16, acceptNewHostKeys: true });
 *   if (!report.ok) for (const r of report.results) if (!r.ok) console.error(r.code, r.error);
 */
export { deployUp, DEFAULT_BATCH, type UpOptions, type UpReport } from './deploy-up.js';
export { deployStatus, type HostStatus, type StatusReport } from './deploy-status.js';
export { deployDown, deployStop } from './deploy-down.js';
export { deployLogs, DEFAULT_LOG_LINES, type LogsOptions } from './deploy-logs.js';
export { DEFAULT_FANOUT, type FleetOptions, type FleetReport, type HostResult } from './fleet.js';
export {
  loadInventory,
  parseInventory,
  selectHosts,
  DEFAULT_INVENTORY_FILE,
  DEFAULT_KNOWN_HOSTS,
  DEFAULT_REMOTE_DIR,
  DEFAULT_SSH_PORT,
  type HostSpec,
  type Inventory,
  type ManagerSpec,
} from './inventory.js';
export { buildBundle, type Bundle, type BundleOptions } from './bundle.js';
export { DEFAULT_JOIN_TIMEOUT_MS } from './cluster-watch.js';
export { DEFAULT_CONNECT_TIMEOUT_MS } from './ssh-session.js';
export { KnownHosts } from './known-hosts.js';
