/**
 * Revoking certificates in a certificates directory: `revoked.crl` (see revocation-list.ts) is
 * signed again by the CA in the directory with the new serial numbers added, its cRLNumber one
 * more than before, and written atomically (a temporary file renamed over it), so a manager that
 * watches it never reads half a list. Revocation is for good: a serial is never taken off the list.
 *
 * What a name revokes: every certificate issued under that name that the directory knows of, i.e.
 * the current `<name>.crt` and each one `--add <name> --force` replaced (`replaced.jsonl`). With
 * `replacedOnly`, the replaced ones alone: the node keeps working with its new certificate. A name
 * is admitted again only by issuing it a new certificate (`--add NAME --force`): a new serial.
 */
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { CertificateError, ErrorCodes, settingError } from '../src/errors.js';
import { CA_CERT_FILE, CA_KEY_FILE, CERT_FILE_MODE, certFile, readCaFile, replacedCertificates, REVOKED_FILE } from './directory.js';
import { buildRevocationList, normalizeSerial, readRevocationList, type RevocationList } from './revocation-list.js';
import { checkNodeName } from './settings.js';
import { errorText, parseAuthority } from './x509.js';

export interface RevokeOptions {
  /** The certificates directory: holds ca.crt, ca.key, and revoked.crl once anything is revoked. */
  out: string;
  /** Revoke the certificates issued under this node name. */
  name?: string;
  /** Revoke these serial numbers (hex, as `openssl x509 -serial` prints them). */
  serials?: string[];
  /** With `name`: only the certificates of that name that were replaced, not the current one. */
  replacedOnly?: boolean;
  /** Default: now. */
  now?: Date;
}

export interface RevokedCertificate {
  serial: string;
  /** The node name, when the directory knows it. */
  name?: string;
  /** True for the name's current certificate, false for a replaced one. */
  current?: boolean;
}

export interface RevokeResult {
  /** The revocation list's path. */
  file: string;
  /** Its cRLNumber after this call (unchanged when nothing was new). */
  number: number;
  /** Newly revoked by this call. */
  revoked: RevokedCertificate[];
  /** Asked for, but on the list already. */
  already: RevokedCertificate[];
  /** Serials on the list now. */
  total: number;
}

export function revokeCertificates(opts: RevokeOptions): RevokeResult {
  if (typeof opts.out !== 'string' || opts.out === '') throw settingError('out', opts.out, 'a directory path');
  const out = path.resolve(opts.out);
  if ((opts.name === undefined) === (opts.serials === undefined || opts.serials.length === 0)) {
    throw settingError('name', opts.name, 'either a node name or serial numbers to revoke (not both, not neither)');
  }
  if (opts.replacedOnly && opts.name === undefined) throw settingError('replaced', true, 'a node name to go with it');
  const now = opts.now ?? new Date();
  const need = `revoking needs the CA that issued the certificates (\`troupe revoke\` runs where ca.key is, --certs ${out})`;
  const caPem = { cert: readCaFile(path.join(out, CA_CERT_FILE), need), key: readCaFile(path.join(out, CA_KEY_FILE), need) };
  const signer = parseAuthority(caPem, { cert: path.join(out, CA_CERT_FILE), key: path.join(out, CA_KEY_FILE) });

  const wanted: RevokedCertificate[] = opts.name !== undefined ? certificatesNamed(out, checkNodeName('name', opts.name), opts.replacedOnly === true) : opts.serials!.map((s) => ({ serial: normalizeSerial(s) }));

  const file = path.join(out, REVOKED_FILE);
  const existing = readExisting(file, caPem.cert);
  const listed = new Set(existing?.entries.map((e) => e.serial));
  const revoked: RevokedCertificate[] = [];
  const already: RevokedCertificate[] = [];
  for (const cert of wanted) {
    if (listed.has(cert.serial)) already.push(cert);
    else {
      listed.add(cert.serial);
      revoked.push(cert);
    }
  }
  const number = (existing?.number ?? 0) + (revoked.length > 0 ? 1 : 0);
  if (revoked.length > 0) {
    const entries = [...(existing?.entries ?? []), ...revoked.map((r) => ({ serial: r.serial, revokedAt: now }))];
    const pem = buildRevocationList(signer, { number, thisUpdate: now, nextUpdate: signer.cert.validity.notAfter, entries });
    const temporary = path.join(out, `.${REVOKED_FILE}.${process.pid}.tmp`);
    fs.writeFileSync(temporary, pem, { mode: CERT_FILE_MODE });
    fs.renameSync(temporary, file);
  }
  return { file, number, revoked, already, total: listed.size };
}

/** The certificates issued under `name` that the directory knows of: the current one first. */
function certificatesNamed(out: string, name: string, replacedOnly: boolean): RevokedCertificate[] {
  const found: RevokedCertificate[] = [];
  const currentPath = path.join(out, certFile(name));
  if (!replacedOnly && fs.existsSync(currentPath)) {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(fs.readFileSync(currentPath));
    } catch (cause) {
      throw new CertificateError(ErrorCodes.CERT_INVALID, `${currentPath}: not a PEM certificate (${errorText(cause)})`, { cause });
    }
    found.push({ serial: normalizeSerial(cert.serialNumber), name, current: true });
  }
  for (const old of replacedCertificates(out)) {
    if (old.name === name && !found.some((f) => f.serial === old.serial)) found.push({ serial: normalizeSerial(old.serial), name, current: false });
  }
  if (found.length === 0) {
    throw new CertificateError(
      ErrorCodes.CERT_MISSING,
      replacedOnly
        ? `${out} has no record of a replaced certificate named "${name}" (only \`--add ${name} --force\` makes one); revoke by --serial instead`
        : `${out} has no certificate named "${name}" (${certFile(name)}), nor a record of one replaced; revoke by --serial instead`,
    );
  }
  return found;
}

function readExisting(file: string, caCert: string): RevocationList | undefined {
  let pem: string;
  try {
    pem = fs.readFileSync(file, 'utf8');
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CertificateError(ErrorCodes.CRL_INVALID, `${file}: cannot be read (${(cause as NodeJS.ErrnoException).code})`, { cause });
  }
  try {
    return readRevocationList(pem, caCert, file);
  } catch (err) {
    throw new CertificateError(ErrorCodes.CRL_INVALID, `${(err as Error).message}; refusing to extend it (move it away to start a new list: what it revoked would be admitted again)`, { cause: err });
  }
}

