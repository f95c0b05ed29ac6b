/**
 * Turns the low-level errors of a failed dial (OpenSSL alerts, verification failures, socket errors)
 * into one troupe error with a stable code and a sentence a person can act on. The original error
 * stays as `cause`.
 */
import { ConnectionError, ErrorCodes, TlsError, type TroupeError } from '../errors.js';

const UNTRUSTED_SERVER = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  // The server's certificate is not for TLS servers (e.g. a worker's certificate used to listen).
  'INVALID_PURPOSE',
]);

/** OpenSSL alerts the server sends when it refuses our certificate, and what they mean. */
const REJECTED_BY_PEER: Record<string, string> = {
  ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED: 'no client certificate was presented',
  ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE: 'no client certificate was presented',
  ERR_SSL_TLSV1_ALERT_UNKNOWN_CA: 'our certificate is not signed by its CA',
  ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE: 'our certificate was refused',
  ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED: 'our certificate has expired (or is not yet valid)',
  ERR_SSL_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE: 'our certificate is not usable for TLS client authentication',
  ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN: 'our certificate was refused',
  ERR_SSL_TLSV1_ALERT_DECRYPT_ERROR: 'our certificate signature did not verify',
};

export function describeDialError(err: Error & { code?: string }, target: string): TroupeError {
  const code = err.code ?? '';
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return new TlsError(ErrorCodes.TLS_HOSTNAME, `${target}: the server's certificate is not valid for this hostname (${err.message})`, { cause: err });
  }
  if (UNTRUSTED_SERVER.has(code)) {
    return new TlsError(ErrorCodes.TLS_UNTRUSTED, `${target}: the server's certificate is not trusted by our CA (${code})`, { cause: err });
  }
  const refused = REJECTED_BY_PEER[code];
  if (refused) return new TlsError(ErrorCodes.TLS_REJECTED, `${target} refused the TLS handshake: ${refused}`, { cause: err });
  if (code.startsWith('ERR_SSL_')) {
    return new TlsError(ErrorCodes.TLS_REJECTED, `${target}: TLS handshake failed (${code})`, { cause: err });
  }
  const what =
    code === 'ECONNREFUSED' ? 'connection refused (is the manager running?)'
    : code === 'ENOTFOUND' || code === 'EAI_AGAIN' ? 'host not found'
    : code === 'ETIMEDOUT' ? 'connection timed out'
    : code === 'ECONNRESET' ? 'connection reset by peer'
    : err.message;
  return new ConnectionError(ErrorCodes.CONNECTION, `${target}: ${what}`, { cause: err });
}

/** What a manager logs when a TLS handshake from a would-be peer fails. */
export function describeAcceptError(err: Error & { code?: string; reason?: string }): string {
  return err.code ? `${err.code}${err.reason ? `: ${err.reason}` : ''}` : err.message;
}
