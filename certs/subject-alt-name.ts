/**
 * The subjectAltName entries of a node certificate: a DNS entry for each host name, an IP entry for
 * each IPv4 or IPv6 literal (told apart with `net.isIP`). TLS clients check the manager's hostname
 * against these, so a name that is not here cannot be dialled without a hostname error.
 */
import { isIP } from 'node:net';
import { settingError } from '../src/errors.js';

/** Always in a manager's certificate, so that the local case needs no configuration. */
export const LOCAL_HOSTNAMES = ['localhost', '127.0.0.1', '::1'] as const;

/** forge's altName: type 2 is dNSName, type 7 is iPAddress (value: the 4 or 16 address bytes). */
export interface AltName {
  type: 2 | 7;
  value: string;
}

// Labels of letters, digits, "-" and "_" (common in container host names), an optional leading "*.".
const DNS_LABEL = '[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?';
const DNS_NAME = new RegExp(`^(?:\\*\\.)?${DNS_LABEL}(?:\\.${DNS_LABEL})*$`, 'i');
const MAX_DNS_NAME_LENGTH = 253;

/** A host name in canonical form (lower case, IPv6 without brackets), or a SettingError. */
export function checkHostname(option: string, value: unknown): string {
  if (typeof value === 'string') {
    const host = value.trim().replace(/^\[(.*)\]$/, '$1').toLowerCase();
    if (isIP(host) !== 0 && !host.includes('%')) return host;
    if (host.length <= MAX_DNS_NAME_LENGTH && DNS_NAME.test(host)) return host;
  }
  throw settingError(option, value, 'a DNS name or an IPv4 / IPv6 address (no port, no zone)');
}

/** The altNames of the given hosts, checked and without duplicates, in the order given. */
export function subjectAltNames(option: string, hostnames: readonly unknown[]): AltName[] {
  const seen = new Set<string>();
  const names: AltName[] = [];
  for (const raw of hostnames) {
    const host = checkHostname(option, raw);
    const family = isIP(host);
    const value = family === 4 ? ipv4Bytes(host) : family === 6 ? ipv6Bytes(host) : host;
    const key = `${family}:${value}`;
    if (seen.has(key)) continue;
    seen.add(key);
    names.push({ type: family === 0 ? 2 : 7, value });
  }
  return names;
}

function ipv4Bytes(ip: string): string {
  return String.fromCharCode(...ip.split('.').map(Number));
}

// forge's own IPv6 parser mishandles embedded IPv4 ("::ffff:10.0.0.1"), hence this one. The input
// has passed net.isIP, so it is well formed.
function ipv6Bytes(ip: string): string {
  let text = ip;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4[1].split('.').map(Number) as [number, number, number, number];
    text = text.slice(0, v4.index) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const groups = (part: string | undefined): string[] => (part ? part.split(':') : []);
  const left = groups(head);
  const right = groups(tail);
  const middle = tail === undefined ? [] : new Array<string>(8 - left.length - right.length).fill('0');
  return [...left, ...middle, ...right]
    .map((group) => {
      const n = parseInt(group, 16);
      return String.fromCharCode(n >> 8, n & 0xff);
    })
    .join('');
}
