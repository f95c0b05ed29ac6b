/**
 * The PKI of a troupe cluster (see docs/security.md): a CA, node certificates that carry a node name
 * (CN) and a role (OU), a certificates directory, and loading and checking a node's identity.
 */
export { createAuthority, type AuthorityOptions } from './authority.js';
export { issueCertificate, type IssueOptions } from './node-certificate.js';
export {
  addCertificate,
  ensureDevCertificates,
  generateCertificates,
  CA_CERT_FILE,
  CA_KEY_FILE,
  type AddOptions,
  type GenerateOptions,
  type IssuedNode,
  type WriteResult,
} from './directory.js';
export { loadIdentity, peerIdentity, type Identity, type IdentitySource, type NodeIdentity } from './identity.js';
export { runGenerateCommand, type GenerateCommandArgs } from './command.js';
export { LOCAL_HOSTNAMES } from './subject-alt-name.js';
export { DEFAULT_CA_DAYS, DEFAULT_CLIENTS, DEFAULT_DAYS, DEFAULT_MANAGER_NAME, DEFAULT_WORKERS, NODE_NAME_PATTERN } from './settings.js';
export type { Pem } from './x509.js';
export { REVOKED_FILE, REPLACED_FILE, replacedCertificates, type ReplacedCertificate } from './directory.js';
export { buildRevocationList, readRevocationList, normalizeSerial, type RevocationList, type RevokedEntry } from './revocation-list.js';
export { revokeCertificates, type RevokeOptions, type RevokeResult, type RevokedCertificate } from './revocation.js';
export { RevocationWatcher, DEFAULT_REVOCATION_POLL_MS, type RevocationWatcherOptions } from './revocation-watcher.js';
export { runRevokeCommand, type RevokeCommandArgs } from './revoke-command.js';
export { makeSigningRequest, signRequest, publicKeyFingerprint, type SigningRequestOptions } from './signing-request.js';
