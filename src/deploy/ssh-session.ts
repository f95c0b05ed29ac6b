/**
 * One SSH connection to a host (ssh2): connect with the host key checked against known_hosts
 * (known-hosts.ts) before any authentication, commands run through `exec`, files moved over SFTP.
 *
 * Connecting: a refused or reset connection is retried with exponential backoff (DEFAULT_CONNECT_RETRIES
 * more tries); a timeout, a bad host key or a failed authentication is not (trying again cannot fix
 * them). Failures become TROUPE_E_SSH_CONNECT, TROUPE_E_SSH_HOST_KEY or TROUPE_E_SSH_AUTH, with the
 * low-level error as `cause`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, type ConnectConfig, type SFTPWrapper } from 'ssh2';
import { DeployError, ErrorCodes, TroupeError } from '../errors.js';
import { KnownHosts, knownHostName } from './known-hosts.js';

/** How long a connection may take, TCP and SSH handshake together. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** Further tries after a refused or reset connection. */
export const DEFAULT_CONNECT_RETRIES = 3;
/** The first wait before a retry; doubled each time. */
export const DEFAULT_RETRY_DELAY_MS = 250;
/** Keys tried, in order, when neither an identity file nor an agent is given (OpenSSH's defaults). */
export const DEFAULT_IDENTITIES = ['id_ed25519', 'id_ecdsa', 'id_rsa'].map((f) => path.join(os.homedir(), '.ssh', f));

export interface SshTarget {
  host: string;
  port: number;
  user: string;
  /** A private key file; else the agent at `agent` (default SSH_AUTH_SOCK), else DEFAULT_IDENTITIES. */
  identity?: string;
  agent?: string;
  knownHosts: KnownHosts;
  acceptNewHostKeys: boolean;
  connectTimeoutMs?: number;
  retries?: number;
  retryDelayMs?: number;
}

export interface ExecResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

const RETRIED = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE']);

export class SshSession {
  #sftp: Promise<SFTPWrapper> | undefined;

  /** Made by connect(). */
  constructor(
    readonly target: SshTarget,
    readonly client: Client,
  ) {}

  /** The host's name as known_hosts and messages write it. */
  get name(): string {
    return knownHostName(this.target.host, this.target.port);
  }

  static async connect(target: SshTarget): Promise<SshSession> {
    const retries = target.retries ?? DEFAULT_CONNECT_RETRIES;
    let delay = target.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS;
    for (let attempt = 0; ; attempt++) {
      try {
        return await connectOnce(target);
      } catch (err) {
        const code = ((err as TroupeError).cause as NodeJS.ErrnoException | undefined)?.code;
        if (attempt >= retries || !(err instanceof DeployError) || err.code !== ErrorCodes.SSH_CONNECT || !RETRIED.has(code ?? '')) throw err;
        await new Promise((resolve) => setTimeout(resolve, delay * (0.75 + Math.random() / 2)));
        delay *= 2;
      }
    }
  }

  exec(command: string, stdin?: string | Buffer): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      this.client.exec(command, (err, stream) => {
        if (err) return reject(new DeployError(ErrorCodes.SSH_COMMAND, `${this.name}: cannot run a command: ${err.message}`, { cause: err }));
        const out: Buffer[] = [];
        const errs: Buffer[] = [];
        stream.on('data', (d: Buffer) => out.push(d));
        stream.stderr.on('data', (d: Buffer) => errs.push(d));
        stream.on('close', (code: number | null, signal: string | null) => {
          resolve({ code: code ?? null, signal: signal ?? null, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(errs).toString('utf8') });
        });
        if (stdin !== undefined) stream.end(stdin);
        else stream.end();
      });
    });
  }

  /** Runs a command; resolves with its stdout, or throws TROUPE_E_SSH_COMMAND with its stderr when it fails. */
  async run(what: string, command: string, stdin?: string | Buffer): Promise<string> {
    const result = await this.exec(command, stdin);
    if (result.code !== 0) {
      const detail = (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-3).join(' / ');
      throw new DeployError(ErrorCodes.SSH_COMMAND, `${this.name}: ${what} failed (${result.code === null ? `signal ${result.signal}` : `exit ${result.code}`})${detail ? `: ${detail}` : ''}`);
    }
    return result.stdout;
  }

  /** Streams a command's output to callbacks until it ends or `signal` aborts; resolves with its exit code. */
  stream(command: string, onOut: (data: Buffer) => void, onErr: (data: Buffer) => void, signal?: AbortSignal): Promise<number | null> {
    return new Promise((resolve, reject) => {
      this.client.exec(command, (err, stream) => {
        if (err) return reject(new DeployError(ErrorCodes.SSH_COMMAND, `${this.name}: cannot run a command: ${err.message}`, { cause: err }));
        stream.on('data', onOut);
        stream.stderr.on('data', onErr);
        const abort = () => stream.close();
        signal?.addEventListener('abort', abort, { once: true });
        stream.on('close', (code: number | null) => {
          signal?.removeEventListener('abort', abort);
          resolve(code ?? null);
        });
        stream.end();
      });
    });
  }

  sftp(): Promise<SFTPWrapper> {
    this.#sftp ??= new Promise((resolve, reject) => {
      this.client.sftp((err, sftp) => (err ? reject(new DeployError(ErrorCodes.SSH_COMMAND, `${this.name}: no SFTP: ${err.message}`, { cause: err })) : resolve(sftp)));
    });
    return this.#sftp;
  }

  /** Uploads a local file over SFTP to a remote path (which the caller makes unique: a temporary name). */
  async upload(local: string, remote: string): Promise<void> {
    const sftp = await this.sftp();
    await new Promise<void>((resolve, reject) => {
      sftp.fastPut(local, remote, { mode: 0o600 }, (err) => (err ? reject(new DeployError(ErrorCodes.SSH_COMMAND, `${this.name}: uploading to ${remote} failed: ${err.message}`, { cause: err })) : resolve()));
    });
  }

  /** Writes a small file over SFTP, created with `mode`. */
  async writeFile(remote: string, data: string | Buffer, mode: number): Promise<void> {
    const sftp = await this.sftp();
    await new Promise<void>((resolve, reject) => {
      sftp.writeFile(remote, data, { mode }, (err) => (err ? reject(new DeployError(ErrorCodes.SSH_COMMAND, `${this.name}: writing ${remote} failed: ${err.message}`, { cause: err })) : resolve()));
    });
  }

  close(): void {
    this.client.end();
  }
}

function connectOnce(target: SshTarget): Promise<SshSession> {
  const name = knownHostName(target.host, target.port);
  const client = new Client();
  let hostKeyError: DeployError | undefined;
  const config: ConnectConfig = {
    host: target.host,
    port: target.port,
    username: target.user,
    readyTimeout: target.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    keepaliveInterval: 15_000,
    hostVerifier: (key: Buffer) => {
      try {
        target.knownHosts.verify(target.host, target.port, key, target.acceptNewHostKeys);
        return true;
      } catch (err) {
        hostKeyError = err as DeployError;
        return false;
      }
    },
    ...authentication(target, name),
  };
  // Ask for the key types we know this host by, so that a host with several keys is not taken for a changed one.
  const known = target.knownHosts.typesFor(target.host, target.port).filter((t) => SUPPORTED_HOST_KEYS.includes(t));
  if (known.length > 0) config.algorithms = { serverHostKey: [...known, ...SUPPORTED_HOST_KEYS.filter((t) => !known.includes(t))] as never };
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (err: Error & { level?: string; code?: string }) => {
      if (settled) return;
      settled = true;
      client.end();
      if (hostKeyError) return reject(hostKeyError);
      if (err.level === 'client-authentication') {
        return reject(new DeployError(ErrorCodes.SSH_AUTH, `${target.user}@${name}: authentication failed (${describeAuth(target)}); is the public key in the user's authorized_keys?`, { cause: err }));
      }
      if (err.level === 'client-timeout') {
        return reject(new DeployError(ErrorCodes.SSH_CONNECT, `${name}: no SSH handshake within ${(config.readyTimeout ?? 0) / 1000} s (--connect-timeout)`, { cause: err }));
      }
      const code = err.code ? `${err.code}: ` : '';
      reject(new DeployError(ErrorCodes.SSH_CONNECT, `${name}: cannot connect (${code}${err.message})`, { cause: err }));
    };
    client.once('ready', () => {
      settled = true;
      client.on('error', () => {}); // later errors end the session's commands with their own errors
      resolve(new SshSession(target, client));
    });
    client.on('error', fail);
    client.once('close', () => fail(new Error('connection closed during the handshake')));
    try {
      client.connect(config);
    } catch (err) {
      fail(err as Error);
    }
  });
}

const SUPPORTED_HOST_KEYS = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];

function authentication(target: SshTarget, name: string): Partial<ConnectConfig> {
  if (target.identity !== undefined) return { privateKey: readKey(target.identity, name) };
  const agent = target.agent ?? process.env.SSH_AUTH_SOCK;
  if (agent) return { agent };
  const file = DEFAULT_IDENTITIES.find((f) => fs.existsSync(f));
  if (!file) throw new DeployError(ErrorCodes.SSH_AUTH, `${name}: no SSH key: no identity in the inventory, no agent (SSH_AUTH_SOCK), none of ${DEFAULT_IDENTITIES.join(', ')}`);
  return { privateKey: readKey(file, name) };
}

function readKey(file: string, name: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (cause) {
    throw new DeployError(ErrorCodes.SSH_AUTH, `${name}: cannot read the identity file ${file} (${(cause as NodeJS.ErrnoException).code})`, { cause });
  }
}

function describeAuth(target: SshTarget): string {
  if (target.identity !== undefined) return `key ${target.identity}`;
  if (target.agent ?? process.env.SSH_AUTH_SOCK) return 'keys of the SSH agent';
  return `default keys in ~/.ssh`;
}
