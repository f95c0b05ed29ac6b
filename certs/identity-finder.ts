/**
 * Which certificate a node runs as: three files given by path, or one certificate of its role in a
 * certificates directory (by name, or the only one of that role there). Only reads the directory;
 * every refusal names what was given and what was expected.
 */
import fs from 'node:fs';
import path from 'node:path';
import { X509Certificate } from 'node:crypto';
import type { Role } from '../protocols/roles.js';
import { CertificateError, ErrorCodes, settingError } from '../src/errors.js';
import { CA_CERT_FILE } from './file-names.js';
import { loadIdentity, type Identity } from './identity.js';

/** Local state of a node lives under the working directory (docs: DESIGN "Layers and folders"). */
export const STATE_DIR = '.troupe';
export const DEFAULT_CERTS_DIR = path.join(STATE_DIR, 'certs');

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
