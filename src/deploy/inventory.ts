/**
 * The inventory of `troupe deploy`: a YAML file (default `troupe-hosts.yaml`) naming the hosts, how to
 * reach them over SSH, and what each runs. docs/deploy.md lists every key and its default.
 *
 * Everything is checked before anything is touched: an unknown key, a value of the wrong type, a
 * duplicate name, a bad host range or group fails with TROUPE_E_INVENTORY naming the file, the line
 * and the key (`troupe-hosts.yaml:12: workers[1].slots: expected …, got …`). Local paths (identity,
 * certs, knownHosts) are relative to the inventory's folder, `~` is this user's home; a remote `dir`
 * is relative to the remote user's home, and `{name}` in it becomes the host's node name.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node as YamlNode } from 'yaml';
import { NODE_NAME_PATTERN } from '../../certs/settings.js';
import { DeployError, ErrorCodes } from '../errors.js';
import { DEFAULT_PORT } from '../transport/settings.js';
import { expandHostRange, RangeSyntaxError } from './host-range.js';

export const DEFAULT_INVENTORY_FILE = 'troupe-hosts.yaml';
export const DEFAULT_SSH_PORT = 22;
/** The remote directory, relative to the remote user's home: versions, certificates, pid and log files. */
export const DEFAULT_REMOTE_DIR = '.troupe';
/** The `node` a host runs troupe with: the first on the remote PATH. */
export const DEFAULT_NODE = 'node';
export const DEFAULT_KNOWN_HOSTS = path.join(os.homedir(), '.ssh', 'known_hosts');
/** The local certificates directory (ca.crt and ca.key), relative to the working directory. */
export const DEFAULT_LOCAL_CERTS = path.join('.troupe', 'certs');
export const DEFAULT_MANAGER_NAME = 'manager';
export const SERVICE_KINDS = ['auto', 'systemd', 'process'] as const;
export type ServiceKind = (typeof SERVICE_KINDS)[number];
export const MAX_SLOTS = 10_000;

const TAG = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** One host deploy works on: how to reach it and what it runs. */
export interface HostSpec {
  /** The node name: its certificate's CN, its name in the cluster, its name in `--hosts`. */
  name: string;
  role: 'worker' | 'manager';
  /** What SSH dials: a DNS name or an IP address. */
  address: string;
  sshPort: number;
  user: string;
  /** A private key file; undefined: the SSH agent, else ~/.ssh/id_ed25519, id_ecdsa, id_rsa. */
  identity?: string;
  /** The remote directory (relative: to the remote home). */
  dir: string;
  node: string;
  tags: string[];
  /** Default: the host's cpus. */
  slots?: number;
  service: ServiceKind;
  /** Extra subjectAltNames of a manager's certificate (its address is always one). */
  hostnames: string[];
  /** The inventory line that made this host, for messages. */
  line: number;
}

export interface ManagerSpec {
  name: string;
  /** Where workers dial it. */
  address: string;
  port: number;
  /** The host deploy installs it on; undefined: it runs elsewhere (this machine), started by someone else. */
  host?: HostSpec;
}

export interface Inventory {
  file: string;
  knownHosts: string;
  certs: string;
  manager: ManagerSpec;
  /** Every host deploy works on, the manager's first when deploy runs it, then the workers in file order. */
  hosts: HostSpec[];
  /** Named groups (`groups:`) and one per tag, for `--hosts @NAME`. */
  groups: Map<string, string[]>;
}

const TOP_KEYS = ['defaults', 'manager', 'workers', 'groups', 'certs', 'knownHosts'];
const HOST_KEYS = ['user', 'sshPort', 'identity', 'dir', 'node', 'tags', 'slots', 'service'];
const WORKER_KEYS = ['name', 'address', ...HOST_KEYS];
const MANAGER_KEYS = ['name', 'address', 'port', 'local', 'hostnames', ...HOST_KEYS.filter((k) => k !== 'slots' && k !== 'tags')];

type Path = (string | number)[];

/** Reads and checks an inventory file. */
export function loadInventory(file: string): Inventory {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    const hint = code === 'ENOENT' ? `no such file (write one like examples/${DEFAULT_INVENTORY_FILE}, or pass --inventory FILE)` : `cannot be read (${code})`;
    throw new DeployError(ErrorCodes.INVENTORY, `${file}: ${hint}`, { cause });
  }
  return parseInventory(text, file);
}

/** Checks inventory text; `file` names it in messages and anchors its relative paths. */
export function parseInventory(text: string, file: string, env: { home?: string; user?: string } = {}): Inventory {
  return new InventoryReader(text, file, env.home ?? os.homedir(), env.user ?? localUser()).read();
}

class InventoryReader {
  readonly #lines = new LineCounter();
  readonly #doc: Document;
  readonly #base: string;

  constructor(
    text: string,
    readonly file: string,
    readonly home: string,
    readonly user: string,
  ) {
    this.#doc = parseDocument(text, { lineCounter: this.#lines, prettyErrors: false, uniqueKeys: true });
    this.#base = path.dirname(path.resolve(file));
  }

  read(): Inventory {
    const syntax = this.#doc.errors[0];
    if (syntax) {
      const line = syntax.linePos?.[0].line ?? 1;
      throw this.#error(line, '', `not valid YAML: ${syntax.message.split('\n')[0]}`);
    }
    const top = this.#doc.toJS() as unknown;
    if (!isObject(top)) throw this.#fail([], 'a mapping with "workers" (and "manager", "defaults", "groups")', top);
    this.#keys([], top, TOP_KEYS);
    const defaults = top.defaults === undefined ? {} : top.defaults;
    if (!isObject(defaults)) throw this.#fail(['defaults'], 'a mapping of host settings', defaults);
    this.#keys(['defaults'], defaults, HOST_KEYS);

    const knownHosts = top.knownHosts === undefined ? DEFAULT_KNOWN_HOSTS : this.#localPath(['knownHosts'], top.knownHosts);
    const certs = top.certs === undefined ? path.resolve(DEFAULT_LOCAL_CERTS) : this.#localPath(['certs'], top.certs);

    const hosts: HostSpec[] = [];
    const manager = this.#manager(top.manager, defaults);
    if (manager.host) hosts.push(manager.host);

    if (!Array.isArray(top.workers)) throw this.#fail(['workers'], 'a list of workers (each with at least a name)', top.workers);
    top.workers.forEach((entry: unknown, i: number) => {
      const at: Path = ['workers', i];
      if (!isObject(entry)) throw this.#fail(at, 'a mapping with a name (and address, tags, slots…)', entry);
      this.#keys(at, entry, WORKER_KEYS);
      if (entry.name === undefined) throw this.#fail(at, 'a "name" key', undefined);
      const names = this.#range([...at, 'name'], entry.name);
      const addresses = entry.address === undefined ? names : this.#range([...at, 'address'], entry.address);
      if (addresses.length !== names.length && addresses.length !== 1) {
        throw this.#fail([...at, 'address'], `one address or as many as the names (${names.length})`, `${addresses.length} addresses`);
      }
      names.forEach((name, j) => {
        this.#nodeName([...at, 'name'], name);
        hosts.push(this.#host(at, { ...defaults, ...entry }, name, addresses.length === 1 ? addresses[0]! : addresses[j]!, 'worker'));
      });
    });

    const seen = new Map<string, HostSpec>();
    for (const host of hosts) {
      const other = seen.get(host.name.toLowerCase());
      if (other) throw this.#error(host.line, 'name', `"${host.name}" is defined twice (also on line ${other.line}); node names must be unique`);
      seen.set(host.name.toLowerCase(), host);
    }
    if (!manager.host && seen.has(manager.name.toLowerCase())) {
      throw this.#fail(['manager', 'name'], 'a name no worker has', manager.name);
    }
    const groups = this.#groups(top.groups, hosts);
    return { file: this.file, knownHosts, certs, manager, hosts, groups };
  }

  #manager(value: unknown, defaults: Record<string, unknown>): ManagerSpec {
    const at: Path = ['manager'];
    if (!isObject(value)) throw this.#fail(at, 'a mapping with the manager\'s address (and local: true when it is not deployed)', value);
    this.#keys(at, value, MANAGER_KEYS);
    const name = value.name === undefined ? DEFAULT_MANAGER_NAME : this.#nodeName([...at, 'name'], value.name);
    if (value.address === undefined) throw this.#fail(at, 'an "address" key: where the workers dial the manager', undefined);
    const address = this.#address([...at, 'address'], value.address);
    const port = value.port === undefined ? DEFAULT_PORT : this.#int([...at, 'port'], value.port, 1, 65535);
    const local = value.local === undefined ? false : this.#bool([...at, 'local'], value.local);
    if (local) {
      for (const key of Object.keys(value)) {
        if (!['name', 'address', 'port', 'local'].includes(key)) throw this.#fail([...at, key], 'no SSH settings for a manager with local: true (deploy does not start it)', value[key]);
      }
      return { name, address, port };
    }
    const host = this.#host(at, { ...defaults, ...value }, name, address, 'manager');
    return { name, address, port, host };
  }

  #host(at: Path, merged: Record<string, unknown>, name: string, address: string, role: HostSpec['role']): HostSpec {
    const key = (k: string): Path => (this.#has([...at, k]) ? [...at, k] : ['defaults', k]);
    const dirText = merged.dir === undefined ? DEFAULT_REMOTE_DIR : this.#string(key('dir'), merged.dir);
    const spec: HostSpec = {
      name,
      role,
      address: this.#address(key('address'), address),
      sshPort: merged.sshPort === undefined ? DEFAULT_SSH_PORT : this.#int(key('sshPort'), merged.sshPort, 1, 65535),
      user: merged.user === undefined ? this.user : this.#user(key('user'), merged.user),
      dir: dirText.replaceAll('{name}', name),
      node: merged.node === undefined ? DEFAULT_NODE : this.#string(key('node'), merged.node),
      tags: merged.tags === undefined ? [] : this.#tags(key('tags'), merged.tags),
      service: merged.service === undefined ? 'auto' : this.#choice(key('service'), merged.service, SERVICE_KINDS),
      hostnames: merged.hostnames === undefined ? [] : this.#strings([...at, 'hostnames'], merged.hostnames),
      line: this.#lineOf(at),
    };
    if (merged.identity !== undefined) spec.identity = this.#localPath(key('identity'), merged.identity);
    if (merged.slots !== undefined) spec.slots = this.#int(key('slots'), merged.slots, 1, MAX_SLOTS);
    if (/[\0\n]/.test(spec.dir) || spec.dir.trim() === '' || spec.dir.split('/').includes('..')) {
      throw this.#fail(key('dir'), 'a directory path without "..", newlines or NUL', spec.dir);
    }
    return spec;
  }

  #groups(value: unknown, hosts: readonly HostSpec[]): Map<string, string[]> {
    const groups = new Map<string, string[]>();
    const names = new Map(hosts.map((h) => [h.name.toLowerCase(), h.name]));
    for (const host of hosts) for (const tag of host.tags) groups.set(tag, [...(groups.get(tag) ?? []), host.name]);
    if (value === undefined) return groups;
    if (!isObject(value)) throw this.#fail(['groups'], 'a mapping of group name to a list of host names or ranges', value);
    for (const [group, members] of Object.entries(value)) {
      const at: Path = ['groups', group];
      if (!TAG.test(group)) throw this.#fail(at, 'a group name of letters, digits, ".", "_" or "-"', group);
      const list = typeof members === 'string' ? [members] : members;
      if (!Array.isArray(list)) throw this.#fail(at, 'a list of host names or ranges', members);
      const out: string[] = [];
      list.forEach((item: unknown, i: number) => {
        for (const name of this.#range([...at, i], item)) {
          const known = names.get(name.toLowerCase());
          if (!known) throw this.#fail([...at, i], 'names of hosts in this inventory', name);
          out.push(known);
        }
      });
      groups.set(group, [...new Set([...(groups.get(group) ?? []), ...out])]);
    }
    return groups;
  }

  #range(at: Path, value: unknown): string[] {
    const text = this.#string(at, value);
    try {
      return expandHostRange(text);
    } catch (err) {
      if (err instanceof RangeSyntaxError) throw this.#error(this.#lineOf(at), keyText(at), err.message);
      throw err;
    }
  }

  #keys(at: Path, value: Record<string, unknown>, allowed: readonly string[]): void {
    for (const key of Object.keys(value)) {
      if (!allowed.includes(key)) throw this.#error(this.#lineOf([...at, key]), keyText([...at, key]), `unknown key (expected one of ${allowed.join(', ')})`);
    }
  }

  #nodeName(at: Path, value: unknown): string {
    if (typeof value !== 'string' || !NODE_NAME_PATTERN.test(value)) throw this.#fail(at, 'a node name: 1 to 63 letters, digits, ".", "_" or "-", starting with a letter or digit', value);
    return value;
  }

  #address(at: Path, value: unknown): string {
    const text = this.#string(at, value);
    if (/[\s/@[\]]/.test(text)) throw this.#fail(at, 'a DNS name or IP address', value);
    return text;
  }

  #user(at: Path, value: unknown): string {
    const text = this.#string(at, value);
    if (!/^[A-Za-z_][A-Za-z0-9._-]{0,31}$/.test(text)) throw this.#fail(at, 'a user name', value);
    return text;
  }

  #tags(at: Path, value: unknown): string[] {
    const list = typeof value === 'string' ? value.split(',').map((t) => t.trim()) : value;
    if (!Array.isArray(list)) throw this.#fail(at, 'a list of tags', value);
    for (const tag of list) if (typeof tag !== 'string' || !TAG.test(tag)) throw this.#fail(at, 'tags of letters, digits, ".", "_" or "-" (up to 64)', tag);
    return [...new Set(list as string[])];
  }

  #strings(at: Path, value: unknown): string[] {
    if (!Array.isArray(value) || !value.every((v) => typeof v === 'string' && v.trim() !== '')) throw this.#fail(at, 'a list of names', value);
    return value as string[];
  }

  #string(at: Path, value: unknown): string {
    if (typeof value === 'number') return String(value);
    if (typeof value !== 'string' || value.trim() === '') throw this.#fail(at, 'a non-empty string', value);
    return value.trim();
  }

  #int(at: Path, value: unknown, min: number, max: number): number {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) throw this.#fail(at, `a whole number from ${min} to ${max}`, value);
    return value;
  }

  #bool(at: Path, value: unknown): boolean {
    if (typeof value !== 'boolean') throw this.#fail(at, 'true or false', value);
    return value;
  }

  #choice<T extends string>(at: Path, value: unknown, choices: readonly T[]): T {
    if (typeof value !== 'string' || !choices.includes(value as T)) throw this.#fail(at, `one of ${choices.join(', ')}`, value);
    return value as T;
  }

  #localPath(at: Path, value: unknown): string {
    const text = this.#string(at, value);
    if (text === '~' || text.startsWith('~/')) return path.join(this.home, text.slice(1));
    return path.resolve(this.#base, text);
  }

  #has(at: Path): boolean {
    return this.#node(at) !== undefined;
  }

  /** The YAML node at a path, and the line of its key (or of itself, for a list item). */
  #node(at: Path): { node: YamlNode | null; line: number } | undefined {
    let node: unknown = this.#doc.contents;
    let offset = (node as YamlNode | null)?.range?.[0] ?? 0;
    for (const segment of at) {
      if (isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(segment));
        if (!pair) return undefined;
        offset = (pair.key as YamlNode).range?.[0] ?? offset;
        node = pair.value;
      } else if (isSeq(node) && typeof segment === 'number') {
        node = node.items[segment];
        if (node === undefined) return undefined;
        offset = (node as YamlNode).range?.[0] ?? offset;
      } else {
        return undefined;
      }
    }
    return { node: node as YamlNode | null, line: this.#lines.linePos(offset).line };
  }

  /** The line of the deepest part of the path that exists. */
  #lineOf(at: Path): number {
    for (let n = at.length; n >= 0; n--) {
      const found = this.#node(at.slice(0, n));
      if (found) return found.line;
    }
    return 1;
  }

  #fail(at: Path, expected: string, value: unknown): DeployError {
    return this.#error(this.#lineOf(at), keyText(at), `expected ${expected}, got ${shown(value)}`);
  }

  #error(line: number, key: string, message: string): DeployError {
    return new DeployError(ErrorCodes.INVENTORY, `${this.file}:${line}: ${key === '' ? '' : `${key}: `}${message}`);
  }
}

/**
 * The hosts a `--hosts` selection names: comma-separated names, ranges (`w[01-04]`) and groups
 * (`@gpu`, a group of `groups:` or a tag). No selection: every host.
 */
export function selectHosts(inventory: Inventory, selection: string | undefined): HostSpec[] {
  if (selection === undefined || selection.trim() === '') return inventory.hosts;
  const byName = new Map(inventory.hosts.map((h) => [h.name.toLowerCase(), h]));
  const chosen = new Set<string>();
  for (const raw of splitSelection(selection)) {
    const item = raw.trim();
    if (item === '') continue;
    if (item.startsWith('@')) {
      const group = inventory.groups.get(item.slice(1));
      if (!group) throw new DeployError(ErrorCodes.INVENTORY, `--hosts: no group "${item.slice(1)}" in ${inventory.file} (groups: ${[...inventory.groups.keys()].join(', ') || 'none'})`);
      for (const name of group) chosen.add(name.toLowerCase());
      continue;
    }
    let names: string[];
    try {
      names = expandHostRange(item);
    } catch (err) {
      throw new DeployError(ErrorCodes.INVENTORY, `--hosts: ${(err as Error).message}`);
    }
    for (const name of names) {
      if (!byName.has(name.toLowerCase())) throw new DeployError(ErrorCodes.INVENTORY, `--hosts: no host "${name}" in ${inventory.file}`);
      chosen.add(name.toLowerCase());
    }
  }
  return inventory.hosts.filter((h) => chosen.has(h.name.toLowerCase()));
}

// Commas inside brackets belong to a range: "w[1,3],db1" is two items.
function splitSelection(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of text) {
    if (ch === '[') depth++;
    if (ch === ']') depth--;
    if (ch === ',' && depth === 0) {
      out.push(current);
      current = '';
    } else current += ch;
  }
  out.push(current);
  return out;
}

function keyText(at: Path): string {
  return at.map((s, i) => (typeof s === 'number' ? `[${s}]` : i === 0 ? s : `.${s}`)).join('');
}

function shown(value: unknown): string {
  if (value === undefined) return 'nothing';
  try {
    return typeof value === 'string' ? JSON.stringify(value) : JSON.stringify(value) ?? String(value);
  } catch {
    return typeof value;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function localUser(): string {
  try {
    return os.userInfo().username;
  } catch {
    return process.env.USER ?? 'root';
  }
}
