/**
 * A node's identity for mutual TLS, loaded from PEM files and checked before any socket opens, so a
 * bad file is one clear error at startup instead of a TLS alert on the other machine. The checks, in
 * order: the three files exist and parse; the CA certificate is a CA; the key is the certificate's;
 * the certificate is signed by the CA; the CA and then the certificate are valid at `now`; the subject
 * names a node (CN) and a role (OU). Parsing and signature checks use Node's X509Certificate, i.e.
 * the same OpenSSL that TLS will use. Intermediate CAs are not supported: the node certificate must
 * be signed by `ca.crt` itself.
 */
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { PeerCertificate } from 'node:tls';
import { isRole, type Role } from '../protocols/roles.js';
import { CertificateError, ErrorCodes, messageOf as errorText } from '../src/errors.js';
import { CA_CERT_FILE, certFile, keyFile } from './file-names.js';
import { checkNodeName, isNodeName } from './settings.js';

export interface Identity {
  /** The subject CN. */
  name: string;
  /** The subject OU. */
  role: Role;
  /** PEM, ready for `tls.createServer` / `tls.connect`. */
  cert: string;
  key: string;
  ca: string;
  notBefore: Date;
  notAfter: Date;
  certPath?: string;
  keyPath?: string;
  caPath?: string;
}

/** Either a certificates directory and a node name (`<dir>/<name>.crt`, `<name>.key`, `ca.crt`), or three paths. */
export type IdentitySource = { dir: string; name: string } | { cert: string; key: string; ca: string };

/** A node named by a certificate subject. */
export interface NodeIdentity {
  name: string;
  role: Role;
}

const GENERATE_HINT = 'create certificates with `troupe generate-tls-certificates`';

export function loadIdentity(source: IdentitySource, now: Date = new Date()): Identity {
  const paths = identityPaths(source);

  const certPem = readPem(paths.cert);
  const keyPem = readPem(paths.key);
  const caPem = readPem(paths.ca);
  const cert = parseCertificate(paths.cert, certPem);
  const key = parseKey(paths.key, keyPem);
  const ca = parseCertificate(paths.ca, caPem);

  if (!ca.ca) {
    throw new CertificateError(ErrorCodes.CERT_INVALID, `${paths.ca}: not a CA certificate (basicConstraints CA is not true)`);
  }
  if (!cert.checkPrivateKey(key)) {
    throw new CertificateError(ErrorCodes.CERT_KEY_MISMATCH, `${paths.key}: is not the private key of ${paths.cert}`);
  }
  if (!isSignedBy(cert, ca)) {
    const issuer = cert.issuer.replace(/\n/g, ', ');
    throw new CertificateError(
      ErrorCodes.CERT_UNTRUSTED,
      `${paths.cert}: not signed by the CA in ${paths.ca} (it names ${issuer} as issuer; another CA may share that name); use the ca.crt it was generated with`,
    );
  }
  const subject = readSubject(parseSubject(cert.subject));
  checkValidity(paths.ca, ca, now, 'generate a new cluster set with `troupe generate-tls-certificates --force`');
  const renew = `--out ${path.dirname(paths.cert)} --add ${subject.name ?? 'NAME'} --role ${subject.role ?? 'ROLE'} --force`;
  const { notBefore, notAfter } = checkValidity(paths.cert, cert, now, `issue a new one with \`troupe generate-tls-certificates ${renew}\``);

  if (subject.name === null) {
    throw new CertificateError(ErrorCodes.CERT_INVALID, `${paths.cert}: the subject CN is not a node name (${cert.subject.replace(/\n/g, ', ')})`);
  }
  if (subject.role === null) {
    throw new CertificateError(
      ErrorCodes.CERT_NO_ROLE,
      `${paths.cert}: the subject has no role (expected exactly one OU of manager, worker, client; got ${cert.subject.replace(/\n/g, ', ')})`,
    );
  }
  return {
    name: subject.name,
    role: subject.role,
    cert: certPem,
    key: keyPem,
    ca: caPem,
    notBefore,
    notAfter,
    certPath: paths.cert,
    keyPath: paths.key,
    caPath: paths.ca,
  };
}

function identityPaths(source: IdentitySource): { cert: string; key: string; ca: string } {
  if ('dir' in source) {
    const name = checkNodeName('name', source.name); // also keeps "../" out of the paths
    return { cert: path.join(source.dir, certFile(name)), key: path.join(source.dir, keyFile(name)), ca: path.join(source.dir, CA_CERT_FILE) };
  }
  return { cert: source.cert, key: source.key, ca: source.ca };
}

/**
 * The node name (CN) and role (OU) of a peer certificate, or null when the subject does not carry
 * exactly one valid node name and exactly one role (missing, repeated, or anything else). It does not
 * verify anything: call it only on a socket whose `authorized` is true.
 */
export function peerIdentity(peer: PeerCertificate | null | undefined): NodeIdentity | null {
  const subject: unknown = peer?.subject;
  if (typeof subject !== 'object' || subject === null) return null;
  const { name, role } = readSubject(subject as Record<string, unknown>);
  return name !== null && role !== null ? { name, role } : null;
}

function readSubject(fields: Record<string, unknown>): { name: string | null; role: Role | null } {
  const cn = fields['CN'];
  const ou = fields['OU'];
  return { name: isNodeName(cn) ? cn : null, role: isRole(ou) ? ou : null };
}

/**
 * X509Certificate.subject is one `KEY=value` per line, values escaped as in RFC 2253. Repeated keys
 * become arrays, as in a TLS PeerCertificate, so both are read by the same rules. A value needing
 * escapes is never a node name or a role, so escapes are left as they are.
 */
function parseSubject(text: string): Record<string, unknown> {
  const fields: Record<string, string | string[]> = {};
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    const previous = fields[key];
    fields[key] = previous === undefined ? value : [...(Array.isArray(previous) ? previous : [previous]), value];
  }
  return fields;
}

function readPem(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    const what = code === 'ENOENT' ? 'no such file' : `cannot be read (${code ?? errorText(cause)})`;
    throw new CertificateError(ErrorCodes.CERT_MISSING, `${file}: ${what}; ${GENERATE_HINT}`, { cause });
  }
}

function parseCertificate(file: string, pem: string): X509Certificate {
  try {
    if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error('no BEGIN CERTIFICATE line');
    return new X509Certificate(pem);
  } catch (cause) {
    throw new CertificateError(ErrorCodes.CERT_INVALID, `${file}: not a PEM certificate (${errorText(cause)})`, { cause });
  }
}

function parseKey(file: string, pem: string): KeyObject {
  try {
    if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) throw new Error('no BEGIN PRIVATE KEY line');
    return createPrivateKey(pem);
  } catch (cause) {
    throw new CertificateError(ErrorCodes.CERT_INVALID, `${file}: not an unencrypted PEM private key (${errorText(cause)})`, { cause });
  }
}

function isSignedBy(cert: X509Certificate, ca: X509Certificate): boolean {
  try {
    return cert.checkIssued(ca) && cert.verify(ca.publicKey);
  } catch {
    return false;
  }
}

function checkValidity(file: string, cert: X509Certificate, now: Date, renew: string): { notBefore: Date; notAfter: Date } {
  const notBefore = new Date(cert.validFrom);
  const notAfter = new Date(cert.validTo);
  if (Number.isNaN(notBefore.getTime()) || Number.isNaN(notAfter.getTime())) {
    throw new CertificateError(ErrorCodes.CERT_INVALID, `${file}: unreadable validity dates (${cert.validFrom} to ${cert.validTo})`);
  }
  if (now < notBefore) {
    throw new CertificateError(ErrorCodes.CERT_NOT_YET_VALID, `${file}: not valid before ${notBefore.toISOString()} (now ${now.toISOString()}); check this machine's clock`);
  }
  if (now > notAfter) {
    throw new CertificateError(ErrorCodes.CERT_EXPIRED, `${file}: expired on ${notAfter.toISOString()}; ${renew}`);
  }
  return { notBefore, notAfter };
}
