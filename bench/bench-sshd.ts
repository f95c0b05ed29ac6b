/**
 * An OpenSSH server for a bench's baseline, on this machine only: a config for `sshd -D -e` listening
 * on 127.0.0.1 at a free port, with a host key and a client key made here (ed25519, no passphrase)
 * under DIR/ssh, the client key authorized, no passwords, no PAM. The bench starts sshd itself
 * (`sshdArgs`) and waits for its "Server listening on" line on stderr.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export const SSHD = '/usr/sbin/sshd';

export interface BenchSshd {
  dir: string;
  port: number;
  clientKey: string;
  knownHosts: string;
  /** Arguments for `sshd`: in the foreground, logging to stderr, with this config. */
  sshdArgs: string[];
}

/** A free TCP port on loopback (for sshd, which cannot be told to pick one and say it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

/** Keys and config under DIR/ssh; `logLevel` as sshd_config's LogLevel (INFO prints the listening line). */
export async function prepareSshd(dir: string, logLevel = 'INFO'): Promise<BenchSshd> {
  const sshDir = path.join(dir, 'ssh');
  fs.mkdirSync(sshDir, { mode: 0o700 });
  const hostKey = path.join(sshDir, 'host_key');
  const clientKey = path.join(sshDir, 'client_key');
  for (const key of [hostKey, clientKey]) execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'troupe-bench', '-f', key], { stdio: 'ignore' });
  fs.copyFileSync(`${clientKey}.pub`, path.join(sshDir, 'authorized_keys'));
  const knownHosts = path.join(sshDir, 'known_hosts');
  fs.writeFileSync(knownHosts, '');
  const port = await freePort();
  const config = [
    `ListenAddress 127.0.0.1:${port}`,
    `HostKey ${hostKey}`,
    `PidFile ${path.join(sshDir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${path.join(sshDir, 'authorized_keys')}`,
    'PermitRootLogin prohibit-password',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    'StrictModes no',
    `LogLevel ${logLevel}`,
  ];
  const configFile = path.join(sshDir, 'sshd_config');
  fs.writeFileSync(configFile, `${config.join('\n')}\n`);
  // Privilege separation wants this directory when run as root.
  if (process.getuid?.() === 0) fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  return { dir: sshDir, port, clientKey, knownHosts, sshdArgs: ['-D', '-e', '-f', configFile] };
}
