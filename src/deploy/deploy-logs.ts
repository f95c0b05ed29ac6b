/**
 * `troupe deploy logs HOST [-f]`: the node's log (JSON lines, D/log/troupe.log) and its output
 * (D/log/troupe.out), the last `lines` of each, followed with `follow` until `signal` aborts.
 */
import { DeployError, ErrorCodes } from '../errors.js';
import { connectHost, knownHostsOf, type FleetOptions } from './fleet.js';
import { selectHosts } from './inventory.js';
import { sq } from './remote-host.js';

export const DEFAULT_LOG_LINES = 100;

export interface LogsOptions extends FleetOptions {
  host: string;
  follow?: boolean;
  lines?: number;
  write: (data: Buffer) => void;
  signal?: AbortSignal;
}

export async function deployLogs(options: LogsOptions): Promise<void> {
  const specs = selectHosts(options.inventory, options.host);
  if (specs.length !== 1) throw new DeployError(ErrorCodes.INVENTORY, `logs: name one host (${options.host} is ${specs.length})`);
  const host = await connectHost(specs[0]!, options, knownHostsOf(options));
  try {
    const facts = await host.probe();
    const D = facts.dir;
    const n = options.lines ?? DEFAULT_LOG_LINES;
    const files = [`${D}/log/troupe.log`, `${D}/log/troupe.out`].map(sq).join(' ');
    const command = `cd / && ls ${files} >/dev/null 2>&1 || { echo "no logs under ${D}/log: nothing deployed there" >&2; exit 3; }; exec tail -n ${n} ${options.follow ? '-F ' : ''}${files} 2>/dev/null`;
    const code = await host.session.stream(command, options.write, options.write, options.signal);
    if (code === 3) throw new DeployError(ErrorCodes.SSH_COMMAND, `${specs[0]!.name}: no logs under ${D}/log (nothing deployed there?)`);
  } finally {
    host.session.close();
  }
}
