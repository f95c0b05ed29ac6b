/**
 * Host keys checked as OpenSSH checks them, against a known_hosts file in OpenSSH's format: one
 * entry per line, `[marker] patterns keytype base64 [comment]`; patterns comma-separated, `*` and
 * `?` wildcards, `!` negation, `[host]:port` for a port other than 22, and hashed entries
 * (`|1|salt|hmac`, HMAC-SHA1 of the name as written, as `HashKnownHosts yes` makes them).
 *
 * - The presented key equals a known key of the host: trusted.
 * - The host has known keys and this is none of them: a changed key, always refused
 *   (TROUPE_E_SSH_HOST_KEY), whatever `acceptNew` says: that is what a man in the middle looks like.
 * - A key marked `@revoked`: refused. `@cert-authority` lines are skipped (no host certificates here).
 * - The host is unknown: refused, unless `acceptNew`, which appends a hashed entry as OpenSSH's
 *   `StrictHostKeyChecking accept-new` (with Debian's `HashKnownHosts yes`) does.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { DeployError, ErrorCodes } from '../errors.js';

export interface KnownKey {
  type: string;
  /** The key blob, base64, as in the file. */
  key: string;
  revoked: boolean;
  line: number;
}

interface Entry extends KnownKey {
  patterns: string;
}

/** The name a host is recorded under: `host` on port 22, else `[host]:port`. */
export function knownHostName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

export class KnownHosts {
  readonly #entries: Entry[];

  private constructor(
    readonly file: string,
    entries: Entry[],
  ) {
    this.#entries = entries;
  }

  /** Reads the file; a missing file is an empty one (OpenSSH creates it on the first accepted key). */
  static load(file: string): KnownHosts {
    let text = '';
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new DeployError(ErrorCodes.SSH_HOST_KEY, `${file}: cannot read the known hosts file (${(err as NodeJS.ErrnoException).code})`, { cause: err });
      }
    }
    const entries: Entry[] = [];
    text.split('\n').forEach((raw, i) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) return;
      const fields = line.split(/\s+/);
      let marker: string | undefined;
      if (fields[0]!.startsWith('@')) marker = fields.shift();
      if (fields.length < 3 || marker === '@cert-authority') return;
      entries.push({ patterns: fields[0]!, type: fields[1]!, key: fields[2]!, revoked: marker === '@revoked', line: i + 1 });
    });
    return new KnownHosts(file, entries);
  }

  /** The keys recorded for a host (revoked ones included, marked). */
  keysFor(host: string, port: number): KnownKey[] {
    const name = knownHostName(host, port);
    return this.#entries.filter((e) => matches(e.patterns, name)).map(({ type, key, revoked, line }) => ({ type, key, revoked, line }));
  }

  /**
   * Checks the key a host presented (the raw blob). Resolves quietly when it is trusted (recording
   * it first when it is new and `acceptNew`), else throws TROUPE_E_SSH_HOST_KEY saying why.
   */
  verify(host: string, port: number, blob: Buffer, acceptNew: boolean): 'known' | 'added' {
    const name = knownHostName(host, port);
    const presented = blob.toString('base64');
    const type = keyType(blob);
    const known = this.keysFor(host, port);
    if (known.some((k) => k.revoked && k.key === presented)) {
      throw new DeployError(ErrorCodes.SSH_HOST_KEY, `${name}: its ${type} host key is marked @revoked in ${this.file}`);
    }
    const valid = known.filter((k) => !k.revoked);
    if (valid.some((k) => k.key === presented)) return 'known';
    if (valid.length > 0) {
      const lines = valid.map((k) => k.line).join(', ');
      throw new DeployError(
        ErrorCodes.SSH_HOST_KEY,
        `${name}: the host key has CHANGED (${type} SHA256:${fingerprint(blob)}, not the one on line ${lines} of ${this.file}); someone may be intercepting the connection, or the host was reinstalled: check, then remove the old entry (ssh-keygen -R '${name}' -f ${this.file})`,
      );
    }
    if (!acceptNew) {
      throw new DeployError(
        ErrorCodes.SSH_HOST_KEY,
        `${name}: unknown host (${type} SHA256:${fingerprint(blob)} is not in ${this.file}); check the fingerprint and add it (ssh-keyscan), or pass --accept-new-host-keys to record keys of new hosts`,
      );
    }
    const salt = randomBytes(20);
    const hash = createHmac('sha1', salt).update(name).digest();
    const entry = `|1|${salt.toString('base64')}|${hash.toString('base64')} ${type} ${presented}\n`;
    fs.mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
    fs.appendFileSync(this.file, entry, { mode: 0o600 });
    this.#entries.push({ patterns: entry.split(' ')[0]!, type, key: presented, revoked: false, line: -1 });
    return 'added';
  }

  /** Key types known for a host, so that SSH asks the host for one of those first. */
  typesFor(host: string, port: number): string[] {
    return [...new Set(this.keysFor(host, port).filter((k) => !k.revoked).map((k) => k.type))];
  }
}

/** The key type inside an SSH public key blob (its first string). */
export function keyType(blob: Buffer): string {
  if (blob.length < 4) return 'unknown';
  const n = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + n).toString('latin1');
}

/** OpenSSH's SHA256 fingerprint: base64 without padding. */
export function fingerprint(blob: Buffer): string {
  return createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

/** Does a comma-separated pattern list (or a hashed name) match? A matching negation wins. */
function matches(patterns: string, name: string): boolean {
  if (patterns.startsWith('|1|')) {
    const [, , salt, hash] = patterns.split('|');
    if (!salt || !hash) return false;
    return createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash;
  }
  let hit = false;
  for (const pattern of patterns.split(',')) {
    const negated = pattern.startsWith('!');
    if (glob(negated ? pattern.slice(1) : pattern, name)) {
      if (negated) return false;
      hit = true;
    }
  }
  return hit;
}

function glob(pattern: string, name: string): boolean {
  // "[host]:port" holds brackets: literal here, not a character class
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i');
  return re.test(name);
}
