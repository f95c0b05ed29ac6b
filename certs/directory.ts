/**
 * A certificates directory: `ca.crt`, `ca.key`, and `<name>.crt` + `<name>.key` per node, all PEM.
 * Keys are written mode 0600, certificates 0644, a new directory 0700. Nothing is overwritten without
 * `force`: every target is checked before any key is made, and each file is created exclusively
 * (O_EXCL, so a symlink planted at a target is not followed). `ca.crt` is written last, so a
 * directory that has it holds a complete set.
 *
 * Revocation lives here too (see revocation.ts): `revoked.crl`, the CA's revocation list, and
 * `replaced.jsonl`, one line per certificate that `--add NAME --force` replaced (its name, role,
 * serial and expiry), so that a replaced certificate can still be revoked after its file is gone.
 * A new CA removes both: they belong to the CA they were made with.
 */
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { isRole, type Role } from '../protocols/roles.js';
import { CertificateError, ErrorCodes, settingError } from '../src/errors.js';
import { createAuthority } from './authority.js';
import { issueCertificate } from './node-certificate.js';
import {
  checkCount,
  checkDays,
  checkNodeName,
  DEFAULT_CA_DAYS,
  DEFAULT_CLIENTS,
  DEFAULT_DAYS,
  DEFAULT_MANAGER_NAME,
  DEFAULT_WORKERS,
} from './settings.js';
import { checkHostname, LOCAL_HOSTNAMES } from './subject-alt-name.js';
import { parseAuthority, type Pem } from './x509.js';
import { CA_CERT_FILE, certFile, keyFile } from './file-names.js';

export { CA_CERT_FILE, certFile, keyFile };
export const CA_KEY_FILE = 'ca.key';
export const KEY_FILE_MODE = 0o600;
export const CERT_FILE_MODE = 0o644;
export const DIRECTORY_MODE = 0o700;

/** The CA's revocation list (an X.509 CRL, PEM), next to the CA. */
export const REVOKED_FILE = 'revoked.crl';
/** The certificates that were replaced by `--add NAME --force`: one JSON object per line. */
export const REPLACED_FILE = 'replaced.jsonl';

/** A certificate that another one of the same name replaced. */
export interface ReplacedCertificate {
  name: string;
  role: string;
  /** Lower-case hex, no leading zeros. */
  serial: string;
  notAfter: string;
  replacedAt: string;
}

/** A node certificate that was written, for a summary. */
export interface IssuedNode {
  name: string;
  role: Role;
  /** Its subjectAltName entries, as given plus the manager's local ones. */
  hostnames: string[];
}

export interface GenerateOptions {
  /** The directory to write into; created (mode 0700) if missing. */
  out: string;
  /** The manager's DNS names and IP addresses, beyond localhost, 127.0.0.1 and ::1. Default: none. */
  hostnames?: string[];
  /** Default: 2 (`worker-1`, `worker-2`). */
  workers?: number;
  /** Default: 1 (`client-1`). */
  clients?: number;
  /** Lifetime of the node certificates. Default: 365. The CA lives 3650 days, or `days` if longer. */
  days?: number;
  /** Overwrite existing files. Default: false. */
  force?: boolean;
  /** Default: `manager`. */
  managerName?: string;
}

export interface WriteResult {
  /** The paths written, CA first. */
  files: string[];
  nodes: IssuedNode[];
  /** With `--add NAME --force`: the certificate that was replaced (it stays valid until revoked). */
  replaced?: ReplacedCertificate;
}

/** Writes a new CA and the certificates of a whole cluster: one manager, N workers, N clients. */
export function generateCertificates(opts: GenerateOptions): WriteResult {
  const out = checkOut(opts.out);
  const managerName = checkFileName('managerName', opts.managerName ?? DEFAULT_MANAGER_NAME);
  const workers = checkCount('workers', opts.workers ?? DEFAULT_WORKERS);
  const clients = checkCount('clients', opts.clients ?? DEFAULT_CLIENTS);
  const days = checkDays('days', opts.days ?? DEFAULT_DAYS);
  const hostnames = checkHostnames(opts.hostnames);

  const nodes: IssuedNode[] = [{ name: managerName, role: 'manager', hostnames: [...hostnames, ...LOCAL_HOSTNAMES] }];
  for (let i = 1; i <= workers; i++) nodes.push({ name: `worker-${i}`, role: 'worker', hostnames: [] });
  for (let i = 1; i <= clients; i++) nodes.push({ name: `client-${i}`, role: 'client', hostnames: [] });
  const names = new Set<string>();
  for (const node of nodes) {
    if (names.has(node.name.toLowerCase())) {
      throw settingError('managerName', managerName, 'a name other than the workers\' and clients\' (worker-N, client-N)');
    }
    names.add(node.name.toLowerCase());
  }

  const targets = [CA_CERT_FILE, CA_KEY_FILE, ...nodes.flatMap((n) => [certFile(n.name), keyFile(n.name)])];
  if (!opts.force) refuseExisting(out, targets);

  const ca = createAuthority({ days: Math.max(days, DEFAULT_CA_DAYS) });
  const issued = nodes.map((node) => ({
    node,
    pem: issueCertificate(ca, { name: node.name, role: node.role, hostnames: node.role === 'manager' ? hostnames : [], days }),
  }));

  fs.mkdirSync(out, { recursive: true, mode: DIRECTORY_MODE });
  // A revocation list and a record of replaced certificates belong to the CA they were made with.
  for (const file of [REVOKED_FILE, REPLACED_FILE]) fs.rmSync(path.join(out, file), { force: true });
  for (const { node, pem } of issued) writePair(out, node.name, pem, opts.force === true);
  writePair(out, 'ca', ca, opts.force === true, CA_CERT_FILE, CA_KEY_FILE);
  return { files: targets.map((file) => path.join(out, file)), nodes: nodes.map(withDedupedHosts) };
}

export interface AddOptions {
  /** A directory holding `ca.crt` and `ca.key`. */
  out: string;
  name: string;
  role: Role;
  /** DNS names and IP addresses of the node (a manager also gets localhost, 127.0.0.1, ::1). Default: none. */
  hostnames?: string[];
  /** Default: 365 (cut to the CA's own expiry). */
  days?: number;
  /** Overwrite an existing `<name>.crt` / `<name>.key`. Default: false. */
  force?: boolean;
}

/** Issues one more node certificate from the CA already in `out`. */
export function addCertificate(opts: AddOptions): WriteResult {
  const out = checkOut(opts.out);
  const name = checkFileName('name', opts.name);
  if (!isRole(opts.role)) throw settingError('role', opts.role, 'one of "manager", "worker", "client"');
  const days = checkDays('days', opts.days ?? DEFAULT_DAYS);
  const hostnames = checkHostnames(opts.hostnames);

  const caCertPath = path.join(out, CA_CERT_FILE);
  const caKeyPath = path.join(out, CA_KEY_FILE);
  const need = `adding a certificate needs the CA made by \`troupe generate-tls-certificates --out ${out}\``;
  const ca: Pem = { cert: readCaFile(caCertPath, need), key: readCaFile(caKeyPath, need) };
  const signer = parseAuthority(ca, { cert: caCertPath, key: caKeyPath });
  if (signer.cert.validity.notAfter.getTime() <= Date.now()) {
    throw new CertificateError(
      ErrorCodes.CERT_EXPIRED,
      `${caCertPath}: the CA expired on ${signer.cert.validity.notAfter.toISOString()}; generate a new cluster set with \`troupe generate-tls-certificates --force\``,
    );
  }

  const targets = [certFile(name), keyFile(name)];
  if (!opts.force) refuseExisting(out, targets);
  const pem = issueCertificate(ca, { name, role: opts.role, hostnames, days });
  const replaced = opts.force ? recordReplaced(out, name) : undefined;
  writePair(out, name, pem, opts.force === true);
  const node = withDedupedHosts({ name, role: opts.role, hostnames: [...hostnames, ...(opts.role === 'manager' ? LOCAL_HOSTNAMES : [])] });
  return { files: targets.map((file) => path.join(out, file)), nodes: [node], ...(replaced ? { replaced } : {}) };
}

/**
 * For `npm start`: makes a local cluster set in `dir` unless it already has a `ca.crt`. Without
 * `ca.crt` any node files left there cannot be verified by anything, so they are overwritten.
 */
export function ensureDevCertificates(dir: string, opts: { workers?: number; clients?: number } = {}): { created: boolean; files: string[] } {
  const out = checkOut(dir);
  if (fs.lstatSync(path.join(out, CA_CERT_FILE), { throwIfNoEntry: false }) !== undefined) {
    return { created: false, files: [] };
  }
  const { files } = generateCertificates({ out, workers: opts.workers, clients: opts.clients, force: true });
  return { created: true, files };
}

function checkOut(value: unknown): string {
  if (typeof value !== 'string' || value === '') throw settingError('out', value, 'a directory path');
  return path.resolve(value);
}

// "ca" is a valid node name but would write over the CA's files.
function checkFileName(option: string, value: unknown): string {
  const name = checkNodeName(option, value);
  if (name.toLowerCase() === 'ca') throw settingError(option, value, 'a node name other than "ca" (ca.crt and ca.key are the CA\'s)');
  return name;
}

function refuseExisting(out: string, files: readonly string[]): void {
  const existing = files.map((file) => path.join(out, file)).filter((p) => fs.lstatSync(p, { throwIfNoEntry: false }) !== undefined);
  if (existing.length > 0) {
    throw new CertificateError(ErrorCodes.CERT_EXISTS, `refusing to overwrite ${existing.join(', ')}; pass --force to replace them`);
  }
}

/**
 * Reads a file of the CA's (ca.crt, ca.key), or says in one line that it is missing or unreadable
 * and `need`: what the caller needs it for and how to get it (TROUPE_E_CERT_MISSING).
 */
export function readCaFile(file: string, need: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (cause) {
    const missing = (cause as NodeJS.ErrnoException).code === 'ENOENT';
    throw new CertificateError(ErrorCodes.CERT_MISSING, `${file}: ${missing ? 'no such file' : 'cannot be read'}; ${need}`, { cause });
  }
}

function writePair(out: string, name: string, pem: Pem, force: boolean, crt = certFile(name), key = keyFile(name)): void {
  writeFile(path.join(out, key), pem.key, KEY_FILE_MODE, force);
  writeFile(path.join(out, crt), pem.cert, CERT_FILE_MODE, force);
}

function writeFile(file: string, data: string, mode: number, force: boolean): void {
  // Removing first (rather than truncating) means new key bytes never sit in an old file's looser mode.
  if (force) fs.rmSync(file, { force: true });
  try {
    fs.writeFileSync(file, data, { mode, flag: 'wx' });
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new CertificateError(ErrorCodes.CERT_EXISTS, `refusing to overwrite ${file}; pass --force to replace it`, { cause });
    }
    throw cause;
  }
  fs.chmodSync(file, mode); // the umask may have taken bits away from the mode given at creation
}

/** Appends the certificate now at `<out>/<name>.crt`, if there is one, to the replaced ones. */
function recordReplaced(out: string, name: string): ReplacedCertificate | undefined {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(fs.readFileSync(path.join(out, certFile(name))));
  } catch {
    return undefined; // nothing there (or nothing readable) to replace
  }
  const entry: ReplacedCertificate = {
    name,
    role: /^OU=(.*)$/m.exec(cert.subject)?.[1] ?? '',
    serial: cert.serialNumber.toLowerCase().replace(/^0+(?=.)/, ''),
    notAfter: new Date(cert.validTo).toISOString(),
    replacedAt: new Date().toISOString(),
  };
  fs.appendFileSync(path.join(out, REPLACED_FILE), `${JSON.stringify(entry)}\n`, { mode: CERT_FILE_MODE });
  return entry;
}

/** Every certificate `--add --force` replaced in `out`, oldest first (none when there is no record). */
export function replacedCertificates(out: string): ReplacedCertificate[] {
  const file = path.join(path.resolve(out), REPLACED_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new CertificateError(ErrorCodes.CERT_INVALID, `${file}: cannot be read (${(cause as NodeJS.ErrnoException).code})`, { cause });
  }
  return text.split('\n').flatMap((line, i) => {
    if (line.trim() === '') return [];
    try {
      const entry = JSON.parse(line) as ReplacedCertificate;
      if (typeof entry.name !== 'string' || typeof entry.serial !== 'string') throw new Error('no name or serial');
      return [entry];
    } catch (cause) {
      throw new CertificateError(ErrorCodes.CERT_INVALID, `${file} line ${i + 1}: not a replaced certificate (${(cause as Error).message})`, { cause });
    }
  });
}

function checkHostnames(value: unknown): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw settingError('hostnames', value, 'an array of DNS names or IP addresses');
  return value.map((host) => checkHostname('hostnames', host));
}

function withDedupedHosts(node: IssuedNode): IssuedNode {
  return { ...node, hostnames: [...new Set(node.hostnames)] };
}
