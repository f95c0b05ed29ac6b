/**
 * The names of the files in a certificates directory (see directory.ts): what a node reads to run
 * as itself. Apart from directory.ts so that reading an identity (identity.ts) loads no certificate
 * library: a client that only connects (`troupe run`) never parses a certificate with node-forge.
 */

export const CA_CERT_FILE = 'ca.crt';

export function certFile(name: string): string {
  return `${name}.crt`;
}

export function keyFile(name: string): string {
  return `${name}.key`;
}
