/**
 * Certificates by signing request, so that a node's private key never leaves its machine: the node
 * makes its key and a PKCS#10 request (makeSigningRequest, run there by `troupe certificate-request`);
 * the CA's holder signs it (signRequest). The request proves possession of the key (its signature is
 * checked) and contributes only its public key: the name, role and subjectAltNames of the certificate
 * come from the signer's options, never from the request's subject, so a host cannot ask for another
 * node's name or a better role.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import forge from 'node-forge';
import { CertificateError, ErrorCodes } from '../src/errors.js';
import type { Role } from '../protocols/roles.js';
import { KEY_FILE_MODE, DIRECTORY_MODE } from './directory.js';
import { certifyPublicKey, type IssueOptions } from './node-certificate.js';
import { checkNodeName, RSA_KEY_BITS } from './settings.js';
import { distinguishedName, errorText, type Pem } from './x509.js';

export interface SigningRequestOptions {
  /** The private key file: made (RSA 2048, mode 0600) if missing or if `newKey`. */
  key: string;
  name: string;
  role: Role;
  /** Replace the key with a new one (renewal after a suspected leak). Default: false. */
  newKey?: boolean;
}

/** Makes the key if needed and returns a request (PEM) signed with it. */
export function makeSigningRequest(opts: SigningRequestOptions): { csr: string; keyCreated: boolean } {
  const name = checkNodeName('name', opts.name);
  let pem: string | undefined;
  if (!opts.newKey) {
    try {
      pem = fs.readFileSync(opts.key, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  const keyCreated = pem === undefined;
  if (pem === undefined) {
    pem = generateKeyPairSync('rsa', { modulusLength: RSA_KEY_BITS, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } }).privateKey;
    fs.mkdirSync(path.dirname(opts.key), { recursive: true, mode: DIRECTORY_MODE });
    // Written under a fresh name, then renamed over: the key file is never half-written or briefly world-readable.
    const tmp = `${opts.key}.${randomBytes(4).toString('hex')}.tmp`;
    fs.writeFileSync(tmp, pem, { mode: KEY_FILE_MODE, flag: 'wx' });
    fs.chmodSync(tmp, KEY_FILE_MODE);
    fs.renameSync(tmp, opts.key);
  }
  const key = forge.pki.privateKeyFromPem(pem) as forge.pki.rsa.PrivateKey;
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  csr.setSubject(distinguishedName(name, opts.role));
  csr.sign(key, forge.md.sha256.create());
  return { csr: forge.pki.certificationRequestToPem(csr).replace(/\r\n/g, '\n'), keyCreated };
}

/**
 * Signs a request with the CA: checks its signature (the requester holds the key), then issues a
 * certificate for its public key with the name, role and hostnames of `opts`.
 */
export function signRequest(ca: Pem, csrPem: string, opts: Omit<IssueOptions, 'key'>): string {
  let csr: forge.pki.CertificateSigningRequest;
  try {
    csr = forge.pki.certificationRequestFromPem(csrPem);
  } catch (cause) {
    throw new CertificateError(ErrorCodes.CERT_INVALID, `not a PEM certificate signing request (${errorText(cause)})`, { cause });
  }
  if (!csr.publicKey || (csr.publicKey as forge.pki.rsa.PublicKey).n === undefined) {
    throw new CertificateError(ErrorCodes.CERT_INVALID, 'the signing request does not hold an RSA public key');
  }
  let valid = false;
  try {
    valid = csr.verify();
  } catch {
    valid = false;
  }
  if (!valid) throw new CertificateError(ErrorCodes.CERT_INVALID, 'the signing request\'s signature does not verify (it was not made with the key it carries)');
  return certifyPublicKey(ca, opts, csr.publicKey as forge.pki.rsa.PublicKey);
}

/** The SHA-256 of a PEM key's or certificate's public key (SPKI DER), hex: to tell whether two belong together. */
export function publicKeyFingerprint(pem: string): string {
  const isCert = pem.includes('CERTIFICATE');
  const publicKey = isCert ? forge.pki.certificateFromPem(pem).publicKey : forge.pki.certificationRequestFromPem(pem).publicKey;
  const der = forge.asn1.toDer(forge.pki.publicKeyToAsn1(publicKey as forge.pki.PublicKey)).getBytes();
  return forge.md.sha256.create().update(der).digest().toHex();
}
