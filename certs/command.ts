/**
 * `troupe generate-tls-certificates`, independent of yargs: takes the parsed options, writes the
 * files, and returns the summary to print (what was written, which key is which, what to copy where).
 */
import path from 'node:path';
import { isRole, type Role } from '../protocols/roles.js';
import { settingError } from '../src/errors.js';
import { addCertificate, CA_CERT_FILE, CA_KEY_FILE, certFile, generateCertificates, keyFile, type WriteResult } from './directory.js';
import { LOCAL_HOSTNAMES } from './subject-alt-name.js';

export interface GenerateCommandArgs {
  /** The certificates directory. */
  out: string;
  /** The manager's DNS names and IP addresses (or, with `add`, the added node's). */
  hostname?: string[];
  workers?: number;
  clients?: number;
  days?: number;
  force?: boolean;
  /** Issue one more certificate, with this node name, from the CA already in `out`. */
  add?: string;
  /** The role of the `add`ed node; required with `add`. */
  role?: Role;
}

export function runGenerateCommand(args: GenerateCommandArgs): string {
  if (args.add !== undefined) {
    if (!isRole(args.role)) throw settingError('role', args.role, 'one of "manager", "worker", "client" (required with --add)');
    const result = addCertificate({ out: args.out, name: args.add, role: args.role, hostnames: args.hostname, days: args.days, force: args.force });
    return summarizeAdd(result);
  }
  const result = generateCertificates({
    out: args.out,
    hostnames: args.hostname,
    workers: args.workers,
    clients: args.clients,
    days: args.days,
    force: args.force,
  });
  return summarizeGenerate(result, args.hostname ?? []);
}

function summarizeGenerate(result: WriteResult, hostnames: readonly string[]): string {
  const dir = path.dirname(result.files[0]!);
  const rows: [string, string][] = [
    [CA_CERT_FILE, 'the CA certificate: every node needs it, to trust the others'],
    [CA_KEY_FILE, 'the CA private key (0600): signs new certificates; keep it here, never copy it to a worker'],
  ];
  for (const node of result.nodes) {
    const hosts = node.hostnames.length > 0 ? `, valid for ${node.hostnames.join(', ')}` : '';
    rows.push([certFile(node.name), `certificate of node "${node.name}" (role ${node.role}${hosts})`]);
    rows.push([keyFile(node.name), `private key of "${node.name}" (0600)`]);
  }
  const worker = result.nodes.find((n) => n.role === 'worker');
  const client = result.nodes.find((n) => n.role === 'client');
  const manager = result.nodes.find((n) => n.role === 'manager')!;
  const lines = [`Wrote a new CA and ${result.nodes.length} node certificates to ${dir}:`, ...table(rows), '', 'Next steps:'];
  lines.push(`  - The manager uses ${CA_CERT_FILE}, ${certFile(manager.name)} and ${keyFile(manager.name)} from this directory.`);
  if (worker) {
    lines.push(
      `  - On each worker machine put ${CA_CERT_FILE} and that worker's pair only, e.g. for ${worker.name}:`,
      `      scp ${pathIn(dir, CA_CERT_FILE)} ${pathIn(dir, certFile(worker.name))} ${pathIn(dir, keyFile(worker.name))} HOST:.troupe/certs/`,
      '    and keep the key mode 0600 there. Each worker has its own certificate: do not share one between machines.',
    );
  }
  if (client) lines.push(`  - Whoever runs \`troupe attach\` from another machine gets ${CA_CERT_FILE} and a client pair (${certFile(client.name)}, ${keyFile(client.name)}).`);
  if (hostnames.length === 0) {
    lines.push(`  - The manager certificate is valid only for ${LOCAL_HOSTNAMES.join(', ')}. For workers on other machines, run again with --force and --hostname NAME_OR_IP for each name they dial.`);
  }
  lines.push(`  - To add a node later: troupe generate-tls-certificates --out ${dir} --add worker-${countOf(result, 'worker') + 1} --role worker`);
  lines.push('  - Anyone holding a client or manager certificate can run any command on the workers: see docs/security.md.');
  return lines.join('\n');
}

function summarizeAdd(result: WriteResult): string {
  const node = result.nodes[0]!;
  const dir = path.dirname(result.files[0]!);
  const hosts = node.hostnames.length > 0 ? `, valid for ${node.hostnames.join(', ')}` : '';
  const lines = [
    `Issued a certificate for node "${node.name}" (role ${node.role}${hosts}) from the CA in ${dir}:`,
    ...table([
      [certFile(node.name), `certificate of "${node.name}"`],
      [keyFile(node.name), `private key of "${node.name}" (0600)`],
    ]),
    '',
    'Next steps:',
    `  - Copy ${CA_CERT_FILE}, ${certFile(node.name)} and ${keyFile(node.name)} to that node's machine (never ${CA_KEY_FILE}):`,
    `      scp ${pathIn(dir, CA_CERT_FILE)} ${pathIn(dir, certFile(node.name))} ${pathIn(dir, keyFile(node.name))} HOST:.troupe/certs/`,
  ];
  if (result.replaced) {
    lines.push(`  - The certificate it replaced (serial ${result.replaced.serial}) is still accepted; once the node runs with the new one, shut the old one out: troupe revoke ${node.name} --replaced --certs ${dir}`);
  }
  return lines.join('\n');
}

function table(rows: readonly [string, string][]): string[] {
  const width = Math.max(...rows.map(([file]) => file.length));
  return rows.map(([file, what]) => `  ${file.padEnd(width)}  ${what}`);
}

function pathIn(dir: string, file: string): string {
  return path.join(dir, file);
}

function countOf(result: WriteResult, role: Role): number {
  return result.nodes.filter((n) => n.role === role).length;
}
