/**
 * What every node command shares: where the certificates are, which identity to use, where the
 * manager is. Parsing here, so that each command file is about its job.
 */
import fs from 'node:fs';
import path from 'node:path';
import { X509Certificate } from 'node:crypto';
import { CA_CERT_FILE } from '../../certs/directory.js';
import { loadIdentity, type Identity } from '../../certs/index.js';
import type { Role } from '../../protocols/roles.js';
import { CertificateError, ErrorCodes, settingError } from '../errors.js';
import { DEFAULT_PORT } from '../transport/settings.js';

/** Local state of a node lives under the working directory (docs: DESIGN "Layers and folders"). */
export const STATE_DIR = '.troupe';
export const DEFAULT_CERTS_DIR = path.join(STATE_DIR, 'certs');

export interface HostPort {
  host: string;
  port: number;
}

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

/** Where a command finds its certificate: a directory (and a name), or three files. */
export interface CertificateOptions {
  certs: string;
  name?: string;
  cert?: string;
  key?: string;
  ca?: string;
}

/**
 * The identity for a command that runs as `role`: from `--cert --key --ca` when given (all three,
 * and a `--name` must then be the certificate's), else from `--certs` (see resolveIdentity).
 */
export function identityFrom(options: CertificateOptions, role: Role, command: string = `troupe ${role}`): Identity {
  const files = { cert: options.cert, key: options.key, ca: options.ca };
  const given = Object.entries(files).filter(([, v]) => v !== undefined);
  if (given.length === 0) return resolveIdentity(options.certs, role, options.name, command);
  if (given.length < 3) {
    const missing = Object.keys(files).filter((k) => files[k as keyof typeof files] === undefined);
    throw settingError(missing.map((m) => `--${m}`).join(', '), undefined, `a path: --cert, --key and --ca go together (given: ${given.map(([k]) => `--${k}`).join(', ')})`);
  }
  const identity = loadIdentity({ cert: options.cert!, key: options.key!, ca: options.ca! });
  if (options.name !== undefined && options.name !== identity.name) {
    throw settingError('name', options.name, `the name in ${options.cert} ("${identity.name}"), or no --name`);
  }
  if (identity.role !== role) throw roleMismatch(options.cert!, identity.role, role, command);
  return identity;
}

function roleMismatch(file: string, actual: Role, role: Role, command: string): CertificateError {
  const hint = role === 'client' ? ' (each `troupe generate-tls-certificates` set has client-1; or `--add NAME --role client`)' : '';
  return new CertificateError(ErrorCodes.ROLE_MISMATCH, `${file} is a ${actual} certificate; ${command} needs a ${role} certificate${hint}`);
}

/**
 * The identity a node runs as: `<certs>/<name>.crt` when a name is given, otherwise the one
 * certificate of that role in the directory (so a worker machine holding one pair needs no --name).
 */
export function resolveIdentity(certs: string, role: Role, name?: string, command: string = `troupe ${role}`): Identity {
  if (name !== undefined) {
    const identity = loadIdentity({ dir: certs, name });
    if (identity.role !== role) throw roleMismatch(path.join(certs, `${name}.crt`), identity.role, role, command);
    return identity;
  }
  const candidates = certificatesOfRole(certs, role);
  if (candidates.length === 1) return loadIdentity({ dir: certs, name: candidates[0]! });
  if (candidates.length === 0) {
    throw new CertificateError(
      ErrorCodes.CERT_MISSING,
      `no ${role} certificate in ${certs}; create one with \`troupe generate-tls-certificates --out ${certs}\` (or --add NAME --role ${role}), or point --certs at the right directory`,
    );
  }
  throw settingError('name', undefined, `one of ${candidates.join(', ')} (${certs} holds several ${role} certificates)`);
}

/** Node names of the certificates of one role in a directory, sorted naturally (worker-2 before worker-10). */
export function certificatesOfRole(certs: string, role: Role): string[] {
  let files: string[];
  try {
    files = fs.readdirSync(certs);
  } catch (err) {
    throw new CertificateError(
      ErrorCodes.CERT_MISSING,
      `cannot read the certificates directory ${certs} (${(err as NodeJS.ErrnoException).code}); create it with \`troupe generate-tls-certificates --out ${certs}\``,
    );
  }
  const names: string[] = [];
  for (const file of files) {
    if (!file.endsWith('.crt') || file === CA_CERT_FILE) continue;
    try {
      const subject = new X509Certificate(fs.readFileSync(path.join(certs, file))).subject;
      if (/^OU=(.*)$/m.exec(subject)?.[1] === role) names.push(file.slice(0, -'.crt'.length));
    } catch {
      // Not a certificate we can read: loadIdentity reports it if someone asks for it by name.
    }
  }
  return names.sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
}
