import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ErrorCodes } from '../../src/errors.js';
import { KnownHosts } from '../../src/deploy/known-hosts.js';

describe('deploy known_hosts (OpenSSH format)', () => {
  let dir: string;
  const keys: { blob: Buffer; line: string }[] = [];

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trp-kh-'));
    for (const n of [1, 2]) {
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, `k${n}`)]);
      const line = fs.readFileSync(path.join(dir, `k${n}.pub`), 'utf8').trim().split(' ').slice(0, 2).join(' ');
      keys.push({ blob: Buffer.from(line.split(' ')[1]!, 'base64'), line });
    }
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const file = (text: string) => {
    const f = path.join(dir, `kh-${Math.random()}`);
    fs.writeFileSync(f, text);
    return KnownHosts.load(f);
  };
  const code = (fn: () => unknown) => {
    try {
      fn();
    } catch (err) {
      return (err as { code: string }).code;
    }
    return 'none';
  };

  it('matches plain names, wildcards, negations and [host]:port', () => {
    const kh = file(`*.lab,!evil.lab ${keys[0]!.line}\n[10.0.0.1]:2222 ${keys[1]!.line}\n`);
    expect(kh.verify('w1.lab', 22, keys[0]!.blob, false)).to.equal('known');
    expect(code(() => kh.verify('evil.lab', 22, keys[0]!.blob, false))).to.equal(ErrorCodes.SSH_HOST_KEY);
    expect(kh.verify('10.0.0.1', 2222, keys[1]!.blob, false)).to.equal('known');
    expect(code(() => kh.verify('10.0.0.1', 22, keys[1]!.blob, false))).to.equal(ErrorCodes.SSH_HOST_KEY); // another port is another host
  });

  it('reads hashed entries written by ssh-keygen -H, and honours @revoked', () => {
    const f = path.join(dir, 'hashed');
    fs.writeFileSync(f, `w7.lab ${keys[0]!.line}\n[w8.lab]:2200 ${keys[1]!.line}\n`);
    execFileSync('ssh-keygen', ['-q', '-H', '-f', f], { stdio: 'ignore' });
    expect(fs.readFileSync(f, 'utf8')).to.not.include('w7.lab');
    const kh = KnownHosts.load(f);
    expect(kh.verify('w7.lab', 22, keys[0]!.blob, false)).to.equal('known');
    expect(kh.verify('w8.lab', 2200, keys[1]!.blob, false)).to.equal('known');
    const revoked = file(`@revoked * ${keys[0]!.line}\n`);
    expect(code(() => revoked.verify('any', 22, keys[0]!.blob, true))).to.equal(ErrorCodes.SSH_HOST_KEY);
  });
});
