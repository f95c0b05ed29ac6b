import { expect } from 'chai';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ErrorCodes, TestbedError } from '../../src/errors.js';
import { freeNumbers, instanceNumber, spread } from '../../src/testbed/instance-plan.js';
import { tcpAccepts } from '../../src/testbed/port-probe.js';
import { DEFAULT_MAX_LIFETIME_MINUTES, loadTestbedSettings, parseTestbedSettings } from '../../src/testbed/testbed-settings.js';
import { lifetimeUserData } from '../../src/testbed/user-data.js';

const GOOD = `id: bench
regions: [us-east-1, eu-west-1]
image:
  name: "debian-12-amd64-*"
  owner: "136693071363"
allowedCidrs:
  - 203.0.113.7/32
`;

function problems(text: string, env: NodeJS.ProcessEnv = {}): string {
  try {
    parseTestbedSettings(text, 'tb.yaml', env);
  } catch (err) {
    expect(err).to.be.instanceOf(TestbedError);
    expect((err as TestbedError).code).to.equal(ErrorCodes.TESTBED_SETTINGS);
    return (err as Error).message;
  }
  throw new Error('the settings were accepted');
}

describe('testbed settings', () => {
  it('fills every default', () => {
    const s = parseTestbedSettings(GOOD, '/x/tb.yaml', {});
    expect(s).to.deep.include({
      id: 'bench',
      regions: ['us-east-1', 'eu-west-1'],
      instanceType: 't3.small',
      image: { kind: 'lookup', name: 'debian-12-amd64-*', owner: '136693071363' },
      user: 'admin',
      publicKeyFile: path.join(os.homedir(), '.ssh/id_ed25519.pub'),
      identityFile: path.join(os.homedir(), '.ssh/id_ed25519'),
      rootVolumeGiB: 16,
      allowedCidrs: ['203.0.113.7/32'],
      sshPort: 22,
      managerPort: 7400,
      market: 'on-demand',
      maxLifetimeMinutes: DEFAULT_MAX_LIFETIME_MINUTES,
      manager: 'first',
      managerAddress: undefined,
      remoteDir: undefined,
      endpoint: undefined,
      profile: undefined,
      waitTimeoutMs: 600_000,
      pollIntervalMs: 5000,
    });
  });

  it('substitutes ${ENV} and ${ENV:-default}, and takes the endpoint from TROUPE_EC2_ENDPOINT', () => {
    const s = parseTestbedSettings(`${GOOD}instanceType: \${TYPE}\nuser: \${USERNAME:-ubuntu}\npublicKey: keys/\${KEY}.pub\nmaxLifetime: 90m\n`, '/x/tb.yaml', { TYPE: 'c7g.large', KEY: 'bench', TROUPE_EC2_ENDPOINT: 'http://127.0.0.1:5000' });
    expect([s.instanceType, s.user, s.publicKeyFile, s.identityFile, s.maxLifetimeMinutes, s.endpoint]).to.deep.equal(['c7g.large', 'ubuntu', '/x/keys/bench.pub', '/x/keys/bench', 90, 'http://127.0.0.1:5000']);
  });

  it('names the file, the line and the key of every mistake at once', () => {
    const text = `id: Bench!
regions: [us-east-1, us-east-1]
image: { us-east-1: ami-123, eu-west-2: ami-0123456789abcdef0 }
allowedCidrs: [203.0.113.7/33]
market: reserved
colour: blue
rootVolume: 0
`;
    // The exact list, in the order the keys are checked:
    expect(problems(text)).to.equal(
      [
        '7 problems:',
        'tb.yaml:6: colour: unknown setting (the settings are: id, regions, instanceType, image, user, publicKey, privateKey, rootVolume, allowedCidrs, sshPort, managerPort, market, maxLifetime, manager, managerAddress, remoteDir, endpoint, profile, waitTimeout, pollInterval)',
        'tb.yaml:1: id: expected a testbed id: 1 to 32 lowercase letters, digits or "-", starting with a letter or digit, got "Bench!"',
        'tb.yaml:2: regions[1]: us-east-1 is listed twice',
        'tb.yaml:3: image.us-east-1: expected an AMI id such as ami-0123456789abcdef0, got "ami-123"',
        'tb.yaml:7: rootVolume: expected a size in GiB from 1 to 16384, got 0',
        'tb.yaml:4: allowedCidrs[0]: expected a CIDR such as 203.0.113.7/32 or 2001:db8::/48, got "203.0.113.7/33"',
        'tb.yaml:5: market: expected "on-demand" or "spot", got "reserved"',
      ].join('\n  '),
    );
  });

  it('refuses an empty CIDR list, missing keys, an image missing a region, and bad YAML', () => {
    expect(problems(GOOD.replace('allowedCidrs:\n  - 203.0.113.7/32\n', 'allowedCidrs: []\n'))).to.match(/^tb\.yaml:6: allowedCidrs: the list is empty; expected a list of the CIDRs/);
    expect(problems('id: x\n')).to.equal(
      '3 problems:\n  tb.yaml:1: regions: missing; expected a list of AWS regions, e.g. [us-east-1, eu-west-1]\n  tb.yaml:1: image: missing; expected an AMI id per region ({ us-east-1: ami-… }) or a lookup ({ name: "debian-12-amd64-*", owner: "136693071363" })\n  tb.yaml:1: allowedCidrs: missing; expected a list of the CIDRs allowed to reach SSH and the manager port, e.g. [203.0.113.7/32] (there is no default that opens them to the world)',
    );
    expect(problems(GOOD.replace(/image:\n.*\n.*\n/, 'image: { us-east-1: ami-0123456789abcdef0 }\n'))).to.equal('tb.yaml:3: image: no AMI id for the region eu-west-1 (AMI ids differ per region)');
    expect(problems('id: [x\n')).to.match(/^tb\.yaml:\d: not valid YAML: /);
    expect(problems('')).to.equal('tb.yaml:1: expected a map of settings (id, regions, image, allowedCidrs, …), got an empty file');
    expect(problems(`${GOOD}manager: local\n`)).to.equal('tb.yaml:8: manager: local needs managerAddress: the address or DNS name the instances dial this machine at');
    expect(problems(`${GOOD}maxLifetime: 90s\n`)).to.match(/^tb\.yaml:8: maxLifetime: expected a lifetime such as 8h or 90m \(whole minutes/);
  });

  it('a settings file that does not exist says how to make one', () => {
    expect(() => loadTestbedSettings('/nonexistent/testbed.yaml')).to.throw(TestbedError, /^\/nonexistent\/testbed\.yaml: cannot read the testbed settings: ENOENT \(make one from docs\/testbed\.md, or name it with --settings FILE\)$/);
  });
});

describe('testbed instance plan and lifetime timer', () => {
  it('spreads round-robin and fills the lowest free numbers', () => {
    expect([...spread(5, ['a', 'b'])]).to.deep.equal([['a', 3], ['b', 2]]);
    expect([...spread(1, ['a', 'b', 'c'])]).to.deep.equal([['a', 1], ['b', 0], ['c', 0]]);
    expect(freeNumbers([1, 3, 4], 3)).to.deep.equal([2, 5, 6]);
    expect([instanceNumber('tb', 'tb-12'), instanceNumber('tb', 'tb-x'), instanceNumber('tb', 'tbb-1'), instanceNumber('tb', undefined)]).to.deep.equal([12, undefined, undefined, undefined]);
  });

  it('the user data powers off after the lifetime, also after a stop and start (systemd timer on the absolute deadline)', () => {
    const text = lifetimeUserData('tb', 480, new Date('2026-12-02T05:00:00.000Z'));
    expect(text).to.match(/^#!\/bin\/sh\n/);
    expect(text).to.include("shutdown -h +480 'troupe testbed lifetime reached' || true");
    expect(text).to.include('OnCalendar=2026-12-02 05:00:00 UTC\nPersistent=true');
    expect(text).to.include('ExecStart=/bin/systemctl poweroff');
  });
});

describe('testbed port probe', () => {
  it('true for a listening port, false for a closed one', async () => {
    const server = net.createServer((s) => s.destroy());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    try {
      expect(await tcpAccepts('127.0.0.1', port)).to.equal(true);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    expect(await tcpAccepts('127.0.0.1', port)).to.equal(false);
  });
});
