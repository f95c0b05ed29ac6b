/**
 * The cluster's certificate authority: a self-signed RSA 2048 / SHA-256 certificate, CN=<name>, O=troupe,
 * basicConstraints CA=true with pathLen 0 (it signs node certificates, never another CA), keyUsage
 * keyCertSign + cRLSign. Whoever holds its key can make certificates of any role: keep it off workers.
 */
import forge from 'node-forge';
import { checkCommonName, checkDays, DEFAULT_CA_COMMON_NAME, DEFAULT_CA_DAYS } from './settings.js';
import { defaultValidity, distinguishedName, newKeyPair, randomSerial, signAndEncode, type Pem } from './x509.js';

export interface AuthorityOptions {
  /** Default: `troupe CA`. */
  commonName?: string;
  /** Default: 3650 (10 years). */
  days?: number;
}

export function createAuthority(opts: AuthorityOptions = {}): Pem {
  const commonName = checkCommonName('commonName', opts.commonName ?? DEFAULT_CA_COMMON_NAME);
  const days = checkDays('days', opts.days ?? DEFAULT_CA_DAYS);

  const keys = newKeyPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = randomSerial();
  const { notBefore, notAfter } = defaultValidity(days);
  cert.validity.notBefore = notBefore;
  cert.validity.notAfter = notAfter;
  const name = distinguishedName(commonName);
  cert.setSubject(name);
  cert.setIssuer(name);
  cert.setExtensions([
    { name: 'basicConstraints', critical: true, cA: true, pathLenConstraint: 0 },
    { name: 'keyUsage', critical: true, keyCertSign: true, cRLSign: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  return signAndEncode(cert, keys.privateKey, keys.privateKey);
}
