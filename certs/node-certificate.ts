/**
 * A node certificate signed by the cluster CA. Its subject names the node and its role:
 * CN=<node name>, O=troupe, OU=<manager|worker|client>; the transport reads both back from a verified
 * peer. Extensions: basicConstraints CA=false; keyUsage digitalSignature + keyEncipherment;
 * extKeyUsage serverAuth + clientAuth for a manager, clientAuth alone for a worker or client (only the
 * manager listens, and OpenSSL then refuses a stolen worker or client key set up as a fake manager,
 * whatever names its certificate carries); subjectAltName for the given hostnames, plus localhost,
 * 127.0.0.1 and ::1 for a manager; subjectKeyIdentifier and authorityKeyIdentifier. A certificate
 * never outlives its CA: notAfter is cut to the CA's.
 */
import forge from 'node-forge';
import { isRole, type Role } from '../protocols/roles.js';
import { settingError } from '../src/errors.js';
import { checkDate, checkDays, checkNodeName, DAY_MS, DEFAULT_DAYS } from './settings.js';
import { LOCAL_HOSTNAMES, subjectAltNames } from './subject-alt-name.js';
import { authorityKeyId, defaultValidity, distinguishedName, newKeyPair, parseAuthority, randomSerial, signAndEncode, type Pem } from './x509.js';

export interface IssueOptions {
  /** The node name, the subject CN: /^[a-z0-9][a-z0-9._-]{0,62}$/i. */
  name: string;
  /** The subject OU. `null` leaves the OU out: only tests want a certificate without a role. */
  role: Role | null;
  /** DNS names and IP addresses the node is reached at. Default: none (a manager always gets localhost, 127.0.0.1, ::1). */
  hostnames?: string[];
  /** Default: 365. Ignored for notAfter when notAfter is given. */
  days?: number;
  /** Default: 5 minutes ago. */
  notBefore?: Date;
  /** Default: notBefore (or now, when notBefore is not given) plus `days`. */
  notAfter?: Date;
  /**
   * An RSA private key (PEM) to certify instead of making a new key pair: renewing a certificate
   * keeps its key. Default: a new 2048-bit key.
   */
  key?: string;
}

export function issueCertificate(ca: Pem, opts: IssueOptions): Pem {
  const checked = checkIssue(ca, opts);
  const keys = opts.key === undefined ? newKeyPair() : keyPairOf(opts.key);
  return signAndEncode(certificateFor(checked, keys.publicKey), checked.signer.key, keys.privateKey);
}

/**
 * A certificate for a public key whose private key is elsewhere (a signing request's): the subject,
 * role and names come from `opts`, never from the request. Returns the certificate PEM.
 */
export function certifyPublicKey(ca: Pem, opts: Omit<IssueOptions, 'key'>, publicKey: forge.pki.rsa.PublicKey): string {
  const checked = checkIssue(ca, opts);
  const cert = certificateFor(checked, publicKey);
  cert.sign(checked.signer.key, forge.md.sha256.create());
  return forge.pki.certificateToPem(cert).replace(/\r\n/g, '\n');
}

interface CheckedIssue {
  name: string;
  role: Role | null;
  altNames: ReturnType<typeof subjectAltNames>;
  notBefore: Date;
  notAfter: Date;
  signer: ReturnType<typeof parseAuthority>;
}

function checkIssue(ca: Pem, opts: Omit<IssueOptions, 'key'>): CheckedIssue {
  const name = checkNodeName('name', opts.name);
  if (opts.role !== null && !isRole(opts.role)) {
    throw settingError('role', opts.role, 'one of "manager", "worker", "client"');
  }
  const role = opts.role;
  if (opts.hostnames !== undefined && !Array.isArray(opts.hostnames)) {
    throw settingError('hostnames', opts.hostnames, 'an array of DNS names or IP addresses');
  }
  const hostnames = [...(opts.hostnames ?? []), ...(role === 'manager' ? LOCAL_HOSTNAMES : [])];
  const altNames = subjectAltNames('hostnames', hostnames);
  const days = checkDays('days', opts.days ?? DEFAULT_DAYS);
  let { notBefore, notAfter } = defaultValidity(days);
  if (opts.notBefore !== undefined) {
    notBefore = checkDate('notBefore', opts.notBefore);
    notAfter = new Date(notBefore.getTime() + days * DAY_MS);
  }
  if (opts.notAfter !== undefined) notAfter = checkDate('notAfter', opts.notAfter);

  const signer = parseAuthority(ca);
  if (notAfter > signer.cert.validity.notAfter) notAfter = signer.cert.validity.notAfter;
  if (notAfter <= notBefore) {
    throw settingError('notAfter', notAfter.toISOString(), `a date after notBefore (${notBefore.toISOString()}) and before the CA expires (${signer.cert.validity.notAfter.toISOString()})`);
  }
  return { name, role, altNames, notBefore, notAfter, signer };
}

function certificateFor(checked: CheckedIssue, publicKey: forge.pki.rsa.PublicKey): forge.pki.Certificate {
  const { name, role, altNames, notBefore, notAfter, signer } = checked;
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = randomSerial();
  cert.validity.notBefore = notBefore;
  cert.validity.notAfter = notAfter;
  cert.setSubject(distinguishedName(name, role ?? undefined));
  cert.setIssuer(signer.cert.subject.attributes);
  const keyId = authorityKeyId(signer.cert);
  cert.setExtensions([
    { name: 'basicConstraints', critical: true, cA: false },
    { name: 'keyUsage', critical: true, digitalSignature: true, keyEncipherment: true },
    { name: 'extKeyUsage', serverAuth: role === 'manager', clientAuth: true },
    ...(altNames.length > 0 ? [{ name: 'subjectAltName', altNames }] : []),
    { name: 'subjectKeyIdentifier' },
    ...(keyId !== undefined ? [{ name: 'authorityKeyIdentifier', keyIdentifier: keyId }] : []),
  ]);
  return cert;
}

function keyPairOf(pem: string): { privateKey: forge.pki.rsa.PrivateKey; publicKey: forge.pki.rsa.PublicKey } {
  let privateKey: forge.pki.rsa.PrivateKey;
  try {
    privateKey = forge.pki.privateKeyFromPem(pem) as forge.pki.rsa.PrivateKey;
  } catch (err) {
    throw settingError('key', '(a PEM key)', `an RSA private key in PEM: ${(err as Error).message}`);
  }
  if (!privateKey || privateKey.n === undefined) throw settingError('key', '(a PEM key)', 'an RSA private key in PEM');
  return { privateKey, publicKey: forge.pki.setRsaPublicKey(privateKey.n, privateKey.e) };
}
