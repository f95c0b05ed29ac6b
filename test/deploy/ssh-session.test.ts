import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCodes, TroupeError } from '../../src/errors.js';
import { KnownHosts } from '../../src/deploy/known-hosts.js';
import { SshSession, type SshTarget } from '../../src/deploy/ssh-session.js';
import { NetnsLab } from '../fixtures/netns-hosts.js';

async function refusal(target: SshTarget): Promise<TroupeError> {
  try {
    const session = await SshSession.connect(target);
    session.close();
  } catch (err) {
    expect(err).to.be.instanceOf(TroupeError);
    return err as TroupeError;
  }
  throw new Error('expected the connection to be refused');
}

describe('deploy: SSH sessions against real sshd hosts (network namespaces)', function () {
  this.timeout(60_000);
  let lab: NetnsLab;

  before(async () => {
    lab = await NetnsLab.create({ hosts: 2 });
  });
  after(async () => {
    await lab?.destroy();
  });

  const target = (host: NetnsLab['hosts'][number], knownHosts: string, extra: Partial<SshTarget> = {}): SshTarget => ({
    host: host.address,
    port: host.sshPort,
    user: 'root',
    identity: lab.clientKey,
    knownHosts: KnownHosts.load(knownHosts),
    acceptNewHostKeys: false,
    ...extra,
  });

  it('a known host: commands run inside its namespace, files go over SFTP', async () => {
    const known = lab.knownHosts(path.join(lab.dir, 'known-1'));
    const host = lab.hosts[0]!;
    const session = await SshSession.connect(target(host, known));
    try {
      expect((await session.run('ip', 'ip -4 -o addr show eth0')).includes(`${host.address}/24`)).to.equal(true);
      await session.writeFile(path.join(host.dir, 'hello'), 'hi', 0o640);
      expect(fs.readFileSync(path.join(host.dir, 'hello'), 'utf8')).to.equal('hi');
      expect(fs.statSync(path.join(host.dir, 'hello')).mode & 0o777).to.equal(0o640);
      const failed = await session.run('false', 'echo why >&2; exit 3').catch((e: TroupeError) => e);
      expect((failed as TroupeError).code).to.equal(ErrorCodes.SSH_COMMAND);
      expect((failed as TroupeError).message).to.match(/false failed \(exit 3\): why$/);
    } finally {
      session.close();
    }
  });

  it('an unknown host is refused; with acceptNew it is recorded hashed, as OpenSSH finds it', async () => {
    const file = path.join(lab.dir, 'known-empty');
    const host = lab.hosts[1]!;
    const err = await refusal(target(host, file));
    expect(err.code).to.equal(ErrorCodes.SSH_HOST_KEY);
    expect(err.message).to.match(/unknown host \(ssh-ed25519 SHA256:/);
    expect(fs.existsSync(file)).to.equal(false);

    const session = await SshSession.connect(target(host, file, { acceptNewHostKeys: true }));
    session.close();
    const text = fs.readFileSync(file, 'utf8');
    expect(text).to.match(/^\|1\|[^ ]+ ssh-ed25519 [A-Za-z0-9+/=]+\n$/);
    // OpenSSH's own lookup finds the hashed entry, with the right key
    const found = execFileSync('ssh-keygen', ['-F', host.address, '-f', file], { encoding: 'utf8' });
    expect(found).to.include(host.hostKey.split(' ')[1]);
    // and the next connection trusts it without acceptNew
    (await SshSession.connect(target(host, file))).close();
  });

  it('a changed host key is refused even with acceptNew; [host]:port and plain entries are read', async () => {
    const host = lab.hosts[0]!;
    const other = lab.hosts[1]!;
    const file = path.join(lab.dir, 'known-changed');
    fs.writeFileSync(file, `# a comment\n@cert-authority *.lab ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ4t\n[${host.address}]:2222 ${host.hostKey}\n${host.address},other ${other.hostKey}\n`);
    const err = await refusal(target(host, file, { acceptNewHostKeys: true }));
    expect(err.code).to.equal(ErrorCodes.SSH_HOST_KEY);
    expect(err.message).to.match(/the host key has CHANGED .*line 4 of/);
    expect(fs.readFileSync(file, 'utf8').split('\n')).to.have.length(5); // nothing appended
  });

  it('a wrong private key: TROUPE_E_SSH_AUTH; a host without sshd: TROUPE_E_SSH_CONNECT after retries', async () => {
    const known = lab.knownHosts(path.join(lab.dir, 'known-2'));
    const auth = await refusal(target(lab.hosts[0]!, known, { identity: lab.wrongKey }));
    expect(auth.code).to.equal(ErrorCodes.SSH_AUTH);
    expect(auth.message).to.match(/^root@10\.213\.\d+\.10: authentication failed \(key .*id_wrong\)/);

    const refused = await refusal(target(lab.hosts[0]!, known, { port: 2200, retries: 2, retryDelayMs: 10 }));
    expect(refused.code).to.equal(ErrorCodes.SSH_CONNECT);
    expect(refused.message).to.match(/cannot connect \(ECONNREFUSED/);
  });
});
