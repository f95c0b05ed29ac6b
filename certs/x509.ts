/**
 * The node-forge plumbing shared by the CA and node certificates: RSA keys, serial numbers, names,
 * validity, signing, and reading a CA back from PEM. Keys are RSA 2048, signatures SHA-256, serial
 * numbers 128 random bits made positive, private keys PEM PKCS#8.
 */
import { randomBytes } from 'node:crypto';
import forge from 'node-forge';
import { CertificateError, ErrorCodes } from '../src/errors.js';
import { CLOCK_SKEW_MS, DAY_MS, ORGANIZATION, RSA_KEY_BITS } from './settings.js';

const { pki } = forge;

/** A certificate and its private key, both PEM. */
export interface Pem {
  cert: string;
  key: string;
}

/** A CA read back from PEM, ready to sign. */
export interface Signer {
  cert: forge.pki.Certificate;
  key: forge.pki.rsa.PrivateKey;
}

/** forge hands this to Node's native generateKeyPairSync where it exists: about 0.2 s for 2048 bits. */
export function newKeyPair(): forge.pki.rsa.KeyPair {
  return pki.rsa.generateKeyPair({ bits: RSA_KEY_BITS, e: 0x10001 });
}

/** 16 random bytes, as hex; the top bit cleared (DER INTEGERs are signed) and the next one set (minimal encoding). */
export function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] & 0x7f) | 0x40;
  return bytes.toString('hex');
}

/** CN=<commonName>, O=troupe and, when given, OU=<unit>. */
export function distinguishedName(commonName: string, unit?: string): forge.pki.CertificateField[] {
  const fields: forge.pki.CertificateField[] = [
    { name: 'commonName', value: commonName },
    { name: 'organizationName', value: ORGANIZATION },
  ];
  if (unit !== undefined) fields.push({ name: 'organizationalUnitName', value: unit });
  return fields;
}

/** From a little before now (clock skew) until `days` from now. */
export function defaultValidity(days: number, now = new Date()): { notBefore: Date; notAfter: Date } {
  return {
    notBefore: new Date(now.getTime() - CLOCK_SKEW_MS),
    notAfter: new Date(now.getTime() + days * DAY_MS),
  };
}

export function signAndEncode(cert: forge.pki.Certificate, signingKey: forge.pki.rsa.PrivateKey, key: forge.pki.rsa.PrivateKey): Pem {
  cert.sign(signingKey, forge.md.sha256.create());
  return { cert: unixLines(pki.certificateToPem(cert)), key: unixLines(privateKeyToPem(key)) };
}

function privateKeyToPem(key: forge.pki.rsa.PrivateKey): string {
  return pki.privateKeyInfoToPem(pki.wrapRsaPrivateKey(pki.privateKeyToAsn1(key)));
}

// forge ends PEM lines with CRLF; files for Unix tools read better with LF, and OpenSSL takes either.
function unixLines(pem: string): string {
  return pem.replace(/\r\n/g, '\n');
}

/**
 * The CA's certificate and key, checked: both parse, the certificate is a CA, the key is its key.
 * `where` names the source in error messages (a file path, or "the CA" for PEM in memory).
 */
export function parseAuthority(ca: Pem, where: { cert: string; key: string } = { cert: 'the CA certificate', key: 'the CA key' }): Signer {
  let cert: forge.pki.Certificate;
  let key: forge.pki.rsa.PrivateKey;
  try {
    cert = pki.certificateFromPem(ca.cert);
  } catch (cause) {
    throw new CertificateError(ErrorCodes.CERT_INVALID, `${where.cert}: not a PEM RSA certificate (${errorText(cause)})`, { cause });
  }
  try {
    key = pki.privateKeyFromPem(ca.key);
  } catch (cause) {
    throw new CertificateError(ErrorCodes.CERT_INVALID, `${where.key}: not an unencrypted PEM RSA private key (${errorText(cause)})`, { cause });
  }
  const constraints = cert.getExtension('basicConstraints') as { cA?: boolean } | undefined;
  if (constraints?.cA !== true) {
    throw new CertificateError(ErrorCodes.CERT_INVALID, `${where.cert}: not a CA certificate (basicConstraints CA is not true)`);
  }
  const publicKey = cert.publicKey as forge.pki.rsa.PublicKey;
  if (publicKey.n.compareTo(key.n) !== 0 || publicKey.e.compareTo(key.e) !== 0) {
    throw new CertificateError(ErrorCodes.CERT_KEY_MISMATCH, `${where.key}: is not the private key of ${where.cert}`);
  }
  return { cert, key };
}

/**
 * The CA's subjectKeyIdentifier as bytes, for the authorityKeyIdentifier of what it signs; undefined
 * if the CA has none. Read from the extension, never recomputed: OpenSSL matches the two exactly.
 */
export function authorityKeyId(ca: forge.pki.Certificate): string | undefined {
  const ext = ca.getExtension('subjectKeyIdentifier') as { subjectKeyIdentifier?: string } | undefined;
  return ext?.subjectKeyIdentifier === undefined ? undefined : forge.util.hexToBytes(ext.subjectKeyIdentifier);
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
