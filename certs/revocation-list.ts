/**
 * The cluster's revocation list: a real X.509 v2 CRL (RFC 5280 §5), DER in a PEM `X509 CRL` block,
 * signed by the cluster CA with SHA-256 / RSA, so `openssl crl -CAfile ca.crt -verify` accepts it.
 * node-forge has no CRL support, so it is built here from forge's ASN.1 (and read back with it);
 * the signature is checked with Node's crypto over the exact bytes signed, never a re-encoding.
 *
 * It carries: the CA as issuer, thisUpdate (when it was signed), nextUpdate (the CA's own expiry:
 * the list holds until a newer one replaces it), one entry per revoked serial number with its
 * revocation date, and the extensions RFC 5280 requires of a CRL issuer: authorityKeyIdentifier
 * (the CA's subjectKeyIdentifier) and cRLNumber, which only grows, so that an older list can be
 * told from a newer one. Reading a list checks all of that against the CA certificate: a list that
 * does not parse, names another issuer, or whose signature does not verify is a CertificateError
 * TROUPE_E_CRL_INVALID, never a partial list.
 */
import { verify as verifySignature, X509Certificate } from 'node:crypto';
import forge from 'node-forge';
import { CertificateError, ErrorCodes } from '../src/errors.js';
import { authorityKeyId, errorText, type Signer } from './x509.js';

const { asn1, pki } = forge;
const U = asn1.Class.UNIVERSAL;
const T = asn1.Type;

const OID_SHA256_WITH_RSA = '1.2.840.113549.1.1.11';
const OID_AUTHORITY_KEY_ID = '2.5.29.35';
const OID_CRL_NUMBER = '2.5.29.20';
export const CRL_PEM_TYPE = 'X509 CRL';

/** One revoked certificate. */
export interface RevokedEntry {
  /** The certificate's serial number: lower-case hex without leading zeros (see normalizeSerial). */
  serial: string;
  revokedAt: Date;
}

export interface RevocationList {
  /** The cRLNumber: 1 for the first list, one more for each list after it. */
  number: number;
  thisUpdate: Date;
  nextUpdate: Date | undefined;
  entries: RevokedEntry[];
}

/** A serial number as hex the way every part of troupe compares them: lower case, no leading zeros. */
export function normalizeSerial(hex: string): string {
  const digits = hex.trim().toLowerCase().replace(/^0x/, '').replace(/:/g, '');
  if (!/^[0-9a-f]+$/.test(digits)) throw new CertificateError(ErrorCodes.CRL_INVALID, `"${hex}" is not a serial number in hex`);
  return digits.replace(/^0+(?=.)/, '');
}

/** Builds and signs a CRL; returns its PEM (LF line ends). */
export function buildRevocationList(ca: Signer, list: { number: number; thisUpdate: Date; nextUpdate?: Date; entries: readonly RevokedEntry[] }): string {
  if (!Number.isSafeInteger(list.number) || list.number < 1) throw new RangeError(`a CRL number is a whole number from 1, got ${list.number}`);
  const algorithm = seq(oid(OID_SHA256_WITH_RSA), asn1.create(U, T.NULL, false, ''));
  const extensions: forge.asn1.Asn1[] = [];
  const keyId = authorityKeyId(ca.cert);
  if (keyId !== undefined) {
    extensions.push(extension(OID_AUTHORITY_KEY_ID, seq(asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, false, keyId))));
  }
  extensions.push(extension(OID_CRL_NUMBER, integer(BigInt(list.number))));
  const tbs = seq(
    integer(1n), // v2
    algorithm,
    pki.distinguishedNameToAsn1(ca.cert.subject),
    time(list.thisUpdate),
    ...(list.nextUpdate ? [time(list.nextUpdate)] : []),
    ...(list.entries.length > 0 ? [seq(...list.entries.map((e) => seq(integer(BigInt(`0x${normalizeSerial(e.serial)}`)), time(e.revokedAt))))] : []),
    asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, [seq(...extensions)]),
  );
  const md = forge.md.sha256.create();
  md.update(asn1.toDer(tbs).getBytes());
  const signature = ca.key.sign(md);
  const crl = seq(tbs, algorithm, asn1.create(U, T.BITSTRING, false, String.fromCharCode(0) + signature));
  return forge.pem.encode({ type: CRL_PEM_TYPE, body: asn1.toDer(crl).getBytes() }).replace(/\r\n/g, '\n');
}

/**
 * Reads a CRL (PEM) and checks it against the CA certificate (PEM): its structure, its issuer, its
 * signature. `where` names the source in error messages.
 */
export function readRevocationList(pem: string, caPem: string, where = 'the revocation list'): RevocationList {
  const invalid = (why: string, cause?: unknown) => new CertificateError(ErrorCodes.CRL_INVALID, `${where}: ${why}`, cause === undefined ? undefined : { cause });
  let der: Buffer;
  try {
    const blocks = forge.pem.decode(pem).filter((b) => b.type === CRL_PEM_TYPE);
    if (blocks.length !== 1) throw new Error(`expected one "BEGIN ${CRL_PEM_TYPE}" block, found ${blocks.length}`);
    der = Buffer.from(blocks[0]!.body, 'binary');
  } catch (cause) {
    throw invalid(`not a PEM X.509 CRL (${errorText(cause)})`, cause);
  }
  let parts: { tbs: Buffer; algorithm: forge.asn1.Asn1; signature: Buffer };
  let tbs: forge.asn1.Asn1[];
  try {
    parts = splitSigned(der);
    tbs = children(fromDer(parts.tbs));
  } catch (cause) {
    throw invalid(`not a DER X.509 CRL (${errorText(cause)})`, cause);
  }
  const outerAlgorithm = oidOf(children(parts.algorithm)[0]);
  if (outerAlgorithm !== OID_SHA256_WITH_RSA) throw invalid(`signed with ${outerAlgorithm ?? 'an unreadable algorithm'}; troupe signs and accepts sha256WithRSAEncryption only`);

  let ca: forge.pki.Certificate;
  try {
    ca = pki.certificateFromPem(caPem);
  } catch (cause) {
    throw invalid(`the CA certificate does not parse (${errorText(cause)})`, cause);
  }
  let i = 0;
  if (tbs[i]?.type === T.INTEGER && tbs[i]?.tagClass === U) {
    const version = bigIntOf(tbs[i++]!);
    if (version !== 1n) throw invalid(`version ${Number(version) + 1}; expected a v2 CRL`);
  }
  const innerAlgorithm = oidOf(children(tbs[i++])[0]);
  if (innerAlgorithm !== outerAlgorithm) throw invalid('its two signature algorithms differ');
  const issuer = tbs[i++];
  if (!issuer || asn1.toDer(issuer).getBytes() !== asn1.toDer(pki.distinguishedNameToAsn1(ca.subject)).getBytes()) {
    throw invalid('not issued by the cluster CA (the issuer is another name)');
  }
  const thisUpdate = dateOf(tbs[i++]);
  if (thisUpdate === undefined) throw invalid('no readable thisUpdate');
  let nextUpdate: Date | undefined;
  if (isTime(tbs[i])) nextUpdate = dateOf(tbs[i++]);
  const entries: RevokedEntry[] = [];
  if (tbs[i]?.tagClass === U && tbs[i]?.type === T.SEQUENCE) {
    for (const entry of children(tbs[i++])) {
      const [serial, revokedAt] = children(entry);
      const at = dateOf(revokedAt);
      if (serial?.type !== T.INTEGER || at === undefined) throw invalid('an entry is not a serial number and a date');
      entries.push({ serial: bigIntOf(serial).toString(16), revokedAt: at });
    }
  }
  let number: number | undefined;
  if (tbs[i]?.tagClass === asn1.Class.CONTEXT_SPECIFIC && tbs[i]?.type === 0) {
    for (const ext of children(children(tbs[i++])[0])) {
      const [id, ...rest] = children(ext);
      if (oidOf(id) !== OID_CRL_NUMBER) continue;
      const value = rest[rest.length - 1];
      const n = typeof value?.value === 'string' ? bigIntOf(fromDer(Buffer.from(value.value, 'binary'))) : -1n;
      if (n < 1n || n > BigInt(Number.MAX_SAFE_INTEGER)) throw invalid('its cRLNumber is out of range');
      number = Number(n);
    }
  }
  if (i !== tbs.length) throw invalid('unexpected fields after the extensions');
  if (number === undefined) throw invalid('no cRLNumber extension');

  let verified = false;
  try {
    verified = verifySignature('sha256', parts.tbs, new X509Certificate(caPem).publicKey, parts.signature);
  } catch (cause) {
    throw invalid(`its signature cannot be checked (${errorText(cause)})`, cause);
  }
  if (!verified) throw invalid('its signature does not verify against the cluster CA (signed by another key, or altered)');
  return { number, thisUpdate, nextUpdate, entries };
}

// ── DER plumbing ─────────────────────────────────────────────────────────────────────────────────

/**
 * The three parts of a signed structure, `SEQUENCE { tbs, algorithm, BIT STRING }`, with the tbs as
 * the exact bytes that were signed (a re-encoding could differ from them and fail to verify).
 */
function splitSigned(der: Buffer): { tbs: Buffer; algorithm: forge.asn1.Asn1; signature: Buffer } {
  const outer = readTlv(der, 0);
  if (outer.tag !== 0x30 || outer.end !== der.length) throw new Error('not one DER SEQUENCE');
  const tbs = readTlv(der, outer.contentStart);
  if (tbs.tag !== 0x30) throw new Error('the signed part is not a SEQUENCE');
  const algorithm = readTlv(der, tbs.end);
  const signature = readTlv(der, algorithm.end);
  if (algorithm.tag !== 0x30 || signature.tag !== 0x03 || signature.end !== outer.end) throw new Error('not SEQUENCE { tbs, algorithm, signature }');
  const bits = der.subarray(signature.contentStart, signature.end);
  if (bits.length < 1 || bits[0] !== 0) throw new Error('the signature is not a whole number of bytes');
  return {
    tbs: der.subarray(tbs.start, tbs.end),
    algorithm: fromDer(der.subarray(algorithm.start, algorithm.end)),
    signature: bits.subarray(1),
  };
}

/** One DER tag-length-value at `at` (single-byte tags, definite lengths: what DER allows here). */
function readTlv(der: Buffer, at: number): { tag: number; start: number; contentStart: number; end: number } {
  if (at + 2 > der.length) throw new Error('truncated');
  const tag = der[at]!;
  let length = der[at + 1]!;
  let contentStart = at + 2;
  if (length & 0x80) {
    const bytes = length & 0x7f;
    if (bytes === 0 || bytes > 4 || contentStart + bytes > der.length) throw new Error('a length DER does not allow');
    length = 0;
    for (let k = 0; k < bytes; k++) length = length * 256 + der[contentStart + k]!;
    contentStart += bytes;
  }
  const end = contentStart + length;
  if (end > der.length) throw new Error('truncated');
  return { tag, start: at, contentStart, end };
}

/** Strict DER, every byte used, BIT STRINGs left as bytes (forge's options; its types know only `strict`). */
function fromDer(bytes: Buffer): forge.asn1.Asn1 {
  const parse = asn1.fromDer as unknown as (der: forge.util.ByteStringBuffer, options: object) => forge.asn1.Asn1;
  return parse(forge.util.createBuffer(bytes.toString('binary')), { strict: true, parseAllBytes: true, decodeBitStrings: false });
}

function children(node: forge.asn1.Asn1 | undefined): forge.asn1.Asn1[] {
  if (!node || !Array.isArray(node.value)) throw new Error('expected a constructed value');
  return node.value;
}

function seq(...values: forge.asn1.Asn1[]): forge.asn1.Asn1 {
  return asn1.create(U, T.SEQUENCE, true, values);
}

function oid(id: string): forge.asn1.Asn1 {
  return asn1.create(U, T.OID, false, asn1.oidToDer(id).getBytes());
}

function oidOf(node: forge.asn1.Asn1 | undefined): string | undefined {
  return node?.type === T.OID && typeof node.value === 'string' ? asn1.derToOid(node.value) : undefined;
}

/** A DER INTEGER of a non-negative value: big-endian, a leading zero byte when the top bit is set. */
function integer(value: bigint): forge.asn1.Asn1 {
  let hex = value.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  if (parseInt(hex.slice(0, 2), 16) & 0x80) hex = `00${hex}`;
  return asn1.create(U, T.INTEGER, false, forge.util.hexToBytes(hex));
}

function bigIntOf(node: forge.asn1.Asn1): bigint {
  if (node.type !== T.INTEGER || typeof node.value !== 'string' || node.value.length === 0) throw new Error('expected an INTEGER');
  const hex = forge.util.bytesToHex(node.value);
  if (parseInt(hex.slice(0, 2), 16) & 0x80) throw new Error('a negative INTEGER');
  return BigInt(`0x${hex}`);
}

function extension(id: string, value: forge.asn1.Asn1): forge.asn1.Asn1 {
  return seq(oid(id), asn1.create(U, T.OCTETSTRING, false, asn1.toDer(value).getBytes()));
}

/** UTCTime up to 2049, GeneralizedTime from 2050, as RFC 5280 §4.1.2.5 says. */
function time(date: Date): forge.asn1.Asn1 {
  return date.getUTCFullYear() < 2050 ? asn1.create(U, T.UTCTIME, false, asn1.dateToUtcTime(date)) : asn1.create(U, T.GENERALIZEDTIME, false, asn1.dateToGeneralizedTime(date));
}

function isTime(node: forge.asn1.Asn1 | undefined): boolean {
  return node?.tagClass === U && (node.type === T.UTCTIME || node.type === T.GENERALIZEDTIME);
}

function dateOf(node: forge.asn1.Asn1 | undefined): Date | undefined {
  if (!isTime(node) || typeof node!.value !== 'string') return undefined;
  const date = node!.type === T.UTCTIME ? asn1.utcTimeToDate(node!.value) : asn1.generalizedTimeToDate(node!.value);
  return Number.isNaN(date.getTime()) ? undefined : date;
}
