/**
 * `troupe revoke`, independent of yargs: takes the parsed options, signs the new revocation list,
 * and returns the summary to print (what was revoked, what already was, what happens next).
 */
import path from 'node:path';
import { revokeCertificates, type RevokedCertificate } from './revocation.js';

export interface RevokeCommandArgs {
  /** The certificates directory holding ca.crt and ca.key. */
  certs: string;
  name?: string;
  serial?: string[];
  /** With a name: only its replaced certificates. */
  replaced?: boolean;
}

export function runRevokeCommand(args: RevokeCommandArgs): string {
  const result = revokeCertificates({ out: args.certs, name: args.name, serials: args.serial, replacedOnly: args.replaced });
  const describe = (c: RevokedCertificate) => `  serial ${c.serial}${c.name === undefined ? '' : ` (${c.current ? 'the current certificate' : 'a replaced certificate'} of "${c.name}")`}`;
  const lines: string[] = [];
  if (result.revoked.length > 0) {
    lines.push(`Revoked ${result.revoked.length} certificate${result.revoked.length === 1 ? '' : 's'} in ${result.file} (list number ${result.number}, ${result.total} revoked in all):`, ...result.revoked.map(describe));
  }
  if (result.already.length > 0) lines.push(`Already revoked:`, ...result.already.map(describe));
  if (result.revoked.length === 0) lines.push(`Nothing new to revoke; ${result.file} is unchanged.`);
  else {
    lines.push(
      '',
      'A manager started with this directory reads the list at once: a node holding a revoked certificate is disconnected now and refused (TROUPE_E_REVOKED) from here on.',
      `A manager on another machine needs the new list: copy ${path.basename(result.file)} next to its ca.crt (it reloads it when it changes).`,
    );
    if (args.name !== undefined && result.revoked.some((c) => c.current)) {
      lines.push(`To admit "${args.name}" again, issue it a new certificate: troupe generate-tls-certificates --out ${path.dirname(result.file)} --add ${args.name} --role ROLE --force`);
    }
  }
  return lines.join('\n');
}
