/**
 * What every node command shares: where the certificates are, which identity to use, where the
 * manager is. Parsing here, so that each command file is about its job.
 */
import type { HostPort } from '../cluster/cluster-options.js';
import { settingError } from '../errors.js';
import { DEFAULT_PORT } from '../transport/settings.js';

// Which certificate a node runs as is certs/' business (it only reads the directory); the CLI's too.
export { certificatesOfRole, DEFAULT_CERTS_DIR, identityFrom, resolveIdentity, STATE_DIR, type CertificateOptions } from '../../certs/identity-finder.js';
export type { HostPort } from '../cluster/cluster-options.js';


/** `host`, `host:port`, `[v6]`, `[v6]:port`; the port defaults to troupe's. */
export function parseHostPort(option: string, value: unknown, defaultPort = DEFAULT_PORT): HostPort {
  if (typeof value !== 'string' || value.trim() === '') throw settingError(option, value, 'HOST or HOST:PORT, e.g. 10.0.0.5:7400');
  const text = value.trim();
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  const [host, portText] = v6 ? [v6[1]!, v6[2]] : text.split(':').length === 2 ? text.split(':') : [text, undefined];
  if (!host || /[\s/]/.test(host) || (!v6 && host.includes(':'))) throw settingError(option, value, 'HOST or HOST:PORT (an IPv6 address in brackets: [::1]:7400)');
  const port = portText === undefined ? defaultPort : Number(portText);
  checkPort(option, port, value);
  return { host, port };
}

export function checkPort(option: string, port: unknown, shown: unknown = port): number {
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw settingError(option, shown, 'a port number from 0 to 65535');
  }
  return port;
}
