/**
 * What deploy does on one host, over one SSH session. The layout under the host's directory D:
 *
 *   D/versions/<id>/      an unpacked bundle; a directory appears there whole (unpacked beside, renamed in)
 *   D/current             symlink to versions/<id>, switched atomically (rename over) when a version starts
 *   D/certs/              ca.crt, <name>.crt, <name>.key (made here, 0600, never copied anywhere)
 *   D/run/troupe.pid      the running node's pid (process mode); D/run/service.json what it was started with
 *   D/log/troupe.log      the node's log (JSON lines); D/log/troupe.out its stdout and stderr
 *
 * Every step first looks at what is there and does nothing when it is already right: no upload of
 * an installed version, no new certificate for a valid one, no restart of a node running the wanted
 * version with the wanted arguments.
 */
import { randomBytes, X509Certificate } from 'node:crypto';
import { signRequest, type Pem } from '../../certs/index.js';
import { DeployError, ErrorCodes } from '../errors.js';
import type { Bundle } from './bundle.js';
import type { HostSpec, ManagerSpec } from './inventory.js';
import type { SshSession } from './ssh-session.js';

/** The oldest node troupe runs on (package.json engines). */
export const MIN_NODE_VERSION = [20, 19, 0] as const;
/** A certificate with less left than this (30 days) is renewed by `up`. */
export const RENEW_BEFORE_MS = 30 * 24 * 60 * 60 * 1000;
/** How long a stopping node gets after SIGTERM before SIGKILL (seconds). */
export const STOP_GRACE_S = 10;
export const UNIT_PREFIX = 'troupe-';

export interface HostFacts {
  os: string;
  arch: string;
  nodeVersion: string | null;
  /** The node binary's absolute path (systemd wants one in ExecStart). */
  nodePath: string | null;
  missingTools: string[];
  systemd: boolean;
  uid: number;
  /** The remote directory, absolute. */
  dir: string;
  versions: string[];
  current: string | null;
  pid: number | null;
  runningVersion: string | null;
  /** When the running node was started (ms since the epoch). */
  since: number | null;
  service: ServiceRecord | null;
  cert: string | null;
  ca: string | null;
  hasKey: boolean;
}

export interface ServiceRecord {
  version: string;
  args: string[];
  kind: 'process' | 'systemd';
  startedAt: number;
}

/** Single-quotes a word for sh. */
export function sq(text: string): string {
  return `'${text.replaceAll("'", "'\\''")}'`;
}

export class RemoteHost {
  facts!: HostFacts;

  constructor(
    readonly session: SshSession,
    readonly spec: HostSpec,
  ) {}

  get name(): string {
    return this.spec.name;
  }

  /** Looks at the host: OS, node, tools, what deploy put there. One command. */
  async probe(): Promise<HostFacts> {
    const { dir, node, name } = this.spec;
    const script = `
D=${sq(dir)}; case "$D" in /*) ;; *) D="$HOME/$D";; esac
echo "os=$(uname -s)"; echo "arch=$(uname -m)"; echo "uid=$(id -u)"; echo "dir=$D"
if command -v ${sq(node)} >/dev/null 2>&1; then echo "node=$(${sq(node)} --version 2>/dev/null)"; echo "nodepath=$(command -v ${sq(node)})"; fi
for t in tar sha256sum setsid tail timeout; do command -v $t >/dev/null 2>&1 || echo "missing=$t"; done
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then echo systemd=1; fi
if [ -d "$D" ]; then
  cd "$D"
  echo "current=$(readlink current 2>/dev/null)"
  for v in versions/*/; do [ -d "$v" ] && echo "version=$(basename "$v")"; done
  [ -s certs/${sq(name)}.key ] && echo key=1
  pid=""
  if [ -s run/unit ] && command -v systemctl >/dev/null 2>&1; then pid=$(systemctl $(cat run/unit-scope 2>/dev/null) show -p MainPID --value "$(cat run/unit)" 2>/dev/null); [ "$pid" = 0 ] && pid=""; fi
  [ -z "$pid" ] && pid=$(cat run/troupe.pid 2>/dev/null)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    echo "pid=$pid"; echo "cmdline=$(tr '\\0' ' ' < /proc/$pid/cmdline)"; echo "since=$(stat -c %Y /proc/$pid)"
  fi
  [ -f run/service.json ] && echo "service=$(cat run/service.json)"
  echo "--- cert"; cat certs/${sq(name)}.crt 2>/dev/null
  echo "--- ca"; cat certs/ca.crt 2>/dev/null
fi
exit 0`;
    const out = await this.session.run('looking at the host', script);
    const [head, ...sections] = out.split(/^--- /m);
    const kv = new Map<string, string[]>();
    for (const line of head!.split('\n')) {
      const i = line.indexOf('=');
      if (i > 0) kv.set(line.slice(0, i), [...(kv.get(line.slice(0, i)) ?? []), line.slice(i + 1)]);
    }
    const one = (k: string) => kv.get(k)?.[0] ?? null;
    const section = (title: string) => {
      const s = sections.find((x) => x.startsWith(`${title}\n`));
      const body = s?.slice(title.length + 1).trim();
      return body ? `${body}\n` : null;
    };
    const cmdline = one('cmdline');
    const runningVersion = cmdline ? (/\/versions\/([^/\s]+)\/dist\/bin\/troupe\.js/.exec(cmdline)?.[1] ?? null) : null;
    let service: ServiceRecord | null = null;
    try {
      service = one('service') ? (JSON.parse(one('service')!) as ServiceRecord) : null;
    } catch {
      service = null;
    }
    const pid = one('pid') !== null ? Number(one('pid')) : null;
    this.facts = {
      os: one('os') ?? '',
      arch: one('arch') ?? '',
      nodeVersion: one('node'),
      nodePath: one('nodepath'),
      missingTools: kv.get('missing') ?? [],
      systemd: one('systemd') === '1',
      uid: Number(one('uid') ?? -1),
      dir: one('dir') ?? dir,
      versions: kv.get('version') ?? [],
      current: one('current') || null,
      pid: runningVersion !== null ? pid : null, // a pid file naming some other process is no node of ours
      runningVersion,
      since: one('since') !== null && runningVersion !== null ? Number(one('since')) * 1000 : null,
      service,
      cert: section('cert'),
      ca: section('ca'),
      hasKey: one('key') === '1',
    };
    return this.facts;
  }

  /** Refuses a host troupe cannot run on, with one clear line. */
  check(): void {
    const f = this.facts;
    if (f.os !== 'Linux') throw new DeployError(ErrorCodes.HOST_UNSUPPORTED, `${this.name}: ${f.os || 'an unknown OS'} (${f.arch}): deploy supports Linux hosts`);
    if (f.nodeVersion === null) {
      throw new DeployError(ErrorCodes.NODE_MISSING, `${this.name}: no \`${this.spec.node}\` on the remote PATH; install Node.js >= ${MIN_NODE_VERSION.join('.')} there, or set \`node:\` in the inventory to its path`);
    }
    const version = /^v?(\d+)\.(\d+)\.(\d+)/.exec(f.nodeVersion);
    if (!version || compare(version.slice(1).map(Number), MIN_NODE_VERSION) < 0) {
      throw new DeployError(ErrorCodes.NODE_TOO_OLD, `${this.name}: \`${this.spec.node}\` is ${f.nodeVersion || 'of an unknown version'}; troupe needs Node.js >= ${MIN_NODE_VERSION.join('.')}`);
    }
    if (f.missingTools.length > 0) throw new DeployError(ErrorCodes.HOST_UNSUPPORTED, `${this.name}: missing ${f.missingTools.join(', ')} (coreutils, tar, util-linux)`);
  }

  /** Installs the bundle unless that version is there; resolves true when it uploaded. */
  async install(bundle: Bundle): Promise<boolean> {
    if (this.facts.versions.includes(bundle.id)) return false;
    const D = this.facts.dir;
    await this.session.run('making the directories', `mkdir -p ${sq(D)}/uploads ${sq(D)}/versions ${sq(D)}/run ${sq(D)}/log && mkdir -p -m 700 ${sq(D)}/certs && chmod 700 ${sq(D)}/certs`);
    const tag = randomBytes(4).toString('hex');
    const upload = `${D}/uploads/${bundle.id}.${tag}.tar.gz`;
    await this.session.upload(bundle.file, upload);
    const script = `
set -e
cd ${sq(D)}
got=$(sha256sum ${sq(upload)} | cut -d' ' -f1)
if [ "$got" != ${sq(bundle.sha256)} ]; then rm -f ${sq(upload)}; echo "checksum $got" >&2; exit 42; fi
tmp=versions/.${bundle.id}.${tag}
mkdir "$tmp"
tar -xzf ${sq(upload)} -C "$tmp" --no-same-owner
rm -f ${sq(upload)}
mv -T "$tmp" versions/${sq(bundle.id)} 2>/dev/null || rm -rf "$tmp"
`;
    const result = await this.session.exec(script);
    if (result.code === 42) {
      throw new DeployError(ErrorCodes.BUNDLE_CHECKSUM, `${this.name}: the uploaded bundle's sha256 is ${result.stderr.trim().split(' ')[1]}, not ${bundle.sha256}; nothing was installed`);
    }
    if (result.code !== 0) throw new DeployError(ErrorCodes.SSH_COMMAND, `${this.name}: unpacking the bundle failed (exit ${result.code}): ${result.stderr.trim().split('\n').slice(-2).join(' / ')}`);
    this.facts.versions.push(bundle.id);
    return true;
  }

  /**
   * Makes sure the node has a valid certificate from this CA, for its name and role: otherwise has
   * the host make a key (if it has none) and a signing request, signs it here, uploads the
   * certificate and ca.crt. Resolves true when it issued one.
   */
  async certificates(ca: Pem, version: string, manager: ManagerSpec, renew: boolean): Promise<boolean> {
    const hostnames = this.spec.role === 'manager' ? [...new Set([manager.address, ...this.spec.hostnames])] : [];
    if (!renew && this.facts.hasKey && this.facts.cert && sameCa(this.facts.ca, ca.cert) && certificateFits(this.facts.cert, ca.cert, this.name, this.spec.role, hostnames)) return false;
    const D = this.facts.dir;
    const troupe = `${D}/versions/${version}/dist/bin/troupe.js`;
    const csr = await this.session.run(
      'making a key and a signing request',
      `mkdir -p -m 700 ${sq(D)}/certs && ${sq(this.spec.node)} ${sq(troupe)} certificate-request --key ${sq(`${D}/certs/${this.name}.key`)} --name ${sq(this.name)} --role ${this.spec.role}${renew ? ' --new-key' : ''}`,
    );
    const cert = signRequest(ca, csr, { name: this.name, role: this.spec.role, hostnames });
    await this.session.writeFile(`${D}/certs/${this.name}.crt.new`, cert, 0o644);
    await this.session.writeFile(`${D}/certs/ca.crt.new`, ca.cert, 0o644);
    await this.session.run('installing the certificate', `cd ${sq(D)}/certs && mv -f ${sq(`${this.name}.crt.new`)} ${sq(`${this.name}.crt`)} && mv -f ca.crt.new ca.crt`);
    this.facts.cert = cert;
    this.facts.ca = ca.cert;
    this.facts.hasKey = true;
    return true;
  }

  /** The command line the node runs with (after `node troupe.js`). */
  args(manager: ManagerSpec): string[] {
    const D = this.facts.dir;
    const common = ['--certs', `${D}/certs`, '--name', this.name, '--log-file', `${D}/log/troupe.log`];
    if (this.spec.role === 'manager') return ['manager', '--no-repl', '--host', '0.0.0.0', '--port', String(manager.port), ...common];
    return [
      'worker',
      '--join',
      `${manager.address.includes(':') ? `[${manager.address}]` : manager.address}:${manager.port}`,
      ...common,
      ...(this.spec.tags.length > 0 ? ['--tags', this.spec.tags.join(',')] : []),
      ...(this.spec.slots !== undefined ? ['--slots', String(this.spec.slots)] : []),
    ];
  }

  /** True when the node runs the wanted version with the wanted arguments. */
  isRight(version: string, args: readonly string[]): boolean {
    const f = this.facts;
    return f.pid !== null && f.runningVersion === version && f.service !== null && f.service.version === version && JSON.stringify(f.service.args) === JSON.stringify(args);
  }

  serviceKind(): 'process' | 'systemd' {
    if (this.spec.service === 'process') return 'process';
    if (this.spec.service === 'systemd') {
      if (!this.facts.systemd) throw new DeployError(ErrorCodes.HOST_UNSUPPORTED, `${this.name}: service: systemd, but systemd does not run there`);
      return 'systemd';
    }
    return this.facts.systemd ? 'systemd' : 'process';
  }

  /** Stops the node (SIGTERM, SIGKILL after STOP_GRACE_S) if one runs; resolves true if one did. */
  async stop(): Promise<boolean> {
    const D = this.facts.dir;
    const script = `
cd ${sq(D)} 2>/dev/null || exit 0
if [ -s run/unit ]; then systemctl $(cat run/unit-scope 2>/dev/null) stop "$(cat run/unit)" 2>/dev/null; fi
pid=$(cat run/troupe.pid 2>/dev/null)
stopped=0
if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && tr '\\0' ' ' < /proc/$pid/cmdline | grep -q '/dist/bin/troupe.js'; then
  kill -TERM "$pid" 2>/dev/null
  timeout ${STOP_GRACE_S} tail --pid="$pid" -f /dev/null || { kill -KILL "$pid" 2>/dev/null; timeout 5 tail --pid="$pid" -f /dev/null; }
  stopped=1
fi
rm -f run/troupe.pid
echo "stopped=$stopped"`;
    const out = await this.session.run('stopping the node', script);
    const was = this.facts.pid !== null || out.includes('stopped=1');
    this.facts.pid = null;
    this.facts.runningVersion = null;
    return was;
  }

  /** Switches `current` to the version and starts the node; resolves with its pid. */
  async start(version: string, args: readonly string[]): Promise<number> {
    const D = this.facts.dir;
    const kind = this.serviceKind();
    const troupe = `${D}/versions/${version}/dist/bin/troupe.js`;
    const command = [this.spec.node, troupe, ...args].map(sq).join(' ');
    const switchCurrent = `ln -sfn versions/${sq(version)} current.new && mv -T current.new current`;
    let out: string;
    if (kind === 'process') {
      out = await this.session.run(
        'starting the node',
        `cd ${sq(D)} && mkdir -p run log && ${switchCurrent} && rm -f run/unit run/unit-scope && { setsid ${command} </dev/null >>log/troupe.out 2>&1 & echo $! > run/troupe.pid.new; } && mv -f run/troupe.pid.new run/troupe.pid && cat run/troupe.pid`,
      );
    } else {
      const unit = `${UNIT_PREFIX}${this.name}.service`;
      const root = this.facts.uid === 0;
      const scope = root ? '' : '--user';
      const unitDir = root ? '/etc/systemd/system' : '"$HOME/.config/systemd/user"';
      const absolute = [this.facts.nodePath ?? this.spec.node, troupe, ...args].map((w) => `"${w.replace(/["\\]/g, '\\$&')}"`).join(' ');
      await this.session.writeFile(`${D}/run/${unit}`, systemdUnit(this.name, this.spec.role, D, absolute, root), 0o644);
      out = await this.session.run(
        'starting the systemd unit',
        `cd ${sq(D)} && ${switchCurrent} && mkdir -p ${unitDir} && cp run/${unit} ${unitDir}/${unit} && echo ${sq(unit)} > run/unit && echo ${sq(scope)} > run/unit-scope && systemctl ${scope} daemon-reload && systemctl ${scope} enable ${unit} >/dev/null 2>&1; systemctl ${scope} restart ${unit} && systemctl ${scope} show -p MainPID --value ${unit} | tee run/troupe.pid`,
      );
    }
    const pid = Number(out.trim().split('\n').pop());
    const record: ServiceRecord = { version, args: [...args], kind, startedAt: Date.now() };
    await this.session.writeFile(`${D}/run/service.json`, JSON.stringify(record), 0o644);
    this.facts.pid = pid;
    this.facts.runningVersion = version;
    this.facts.service = record;
    this.facts.current = `versions/${version}`;
    this.facts.since = record.startedAt;
    return pid;
  }

  /** Resolves when the process exits (a command that waits on the host); for failing a join wait early. */
  async exited(pid: number, withinMs: number): Promise<boolean> {
    const r = await this.session.exec(`timeout ${Math.ceil(withinMs / 1000) + 1} tail --pid=${pid} -f /dev/null 2>/dev/null; echo $?`);
    return r.stdout.trim() !== '124';
  }

  /** The last lines of the node's output, for an error message. */
  async outputTail(lines = 5): Promise<string> {
    const r = await this.session.exec(`tail -n ${lines} ${sq(`${this.facts.dir}/log/troupe.out`)} 2>/dev/null`);
    return r.stdout.trim().split('\n').filter(Boolean).join(' / ');
  }

  /** Removes old versions, keeping the current one and `keep` others (newest first by mtime). */
  async prune(current: string, keep = 1): Promise<void> {
    const D = this.facts.dir;
    await this.session.exec(`cd ${sq(D)}/versions 2>/dev/null && ls -1t | grep -v -x -F ${sq(current)} | grep -v '^\\.' | tail -n +${keep + 1} | while read v; do rm -rf -- "$v"; done; exit 0`);
  }

  /** Stops the node and removes everything deploy put there (the directory and a systemd unit). */
  async remove(): Promise<void> {
    await this.stop();
    const D = this.facts.dir;
    await this.session.run(
      'removing the installation',
      `if [ -s ${sq(D)}/run/unit ]; then u=$(cat ${sq(D)}/run/unit); s=$(cat ${sq(D)}/run/unit-scope 2>/dev/null); systemctl $s disable "$u" >/dev/null 2>&1; if [ -z "$s" ]; then rm -f "/etc/systemd/system/$u"; else rm -f "$HOME/.config/systemd/user/$u"; fi; systemctl $s daemon-reload; fi; rm -rf -- ${sq(D)}`,
    );
  }
}

function systemdUnit(name: string, role: string, dir: string, command: string, root: boolean): string {
  // The sandboxing of docs/security.md, with the deploy directory as the only writable place.
  return `# written by troupe deploy; removed by troupe deploy down
[Unit]
Description=troupe ${role} ${name}
After=network-online.target
Wants=network-online.target

[Service]
WorkingDirectory=${dir}
ExecStart=${command}
Restart=always
RestartSec=2
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=read-only
ReadWritePaths=${dir}
PrivateTmp=yes
${root ? 'PrivateDevices=yes\nProtectKernelTunables=yes\nProtectKernelModules=yes\nProtectControlGroups=yes\n' : ''}RestrictSUIDSGID=yes
LockPersonality=yes

[Install]
WantedBy=${root ? 'multi-user.target' : 'default.target'}
`;
}

function compare(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < 3; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) - (b[i] ?? 0);
  return 0;
}

function sameCa(remote: string | null, local: string): boolean {
  if (remote === null) return false;
  try {
    return new X509Certificate(remote).fingerprint256 === new X509Certificate(local).fingerprint256;
  } catch {
    return false;
  }
}

/** Signed by this CA, for this name and role (and names), and not about to expire. */
function certificateFits(pem: string, caPem: string, name: string, role: string, hostnames: readonly string[]): boolean {
  try {
    const cert = new X509Certificate(pem);
    const ca = new X509Certificate(caPem);
    if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) return false;
    if (/^CN=(.*)$/m.exec(cert.subject)?.[1] !== name || /^OU=(.*)$/m.exec(cert.subject)?.[1] !== role) return false;
    if (new Date(cert.validTo).getTime() - Date.now() < RENEW_BEFORE_MS) return false;
    const alt = cert.subjectAltName ?? '';
    return hostnames.every((h) => alt.includes(`:${h}`));
  } catch {
    return false;
  }
}
