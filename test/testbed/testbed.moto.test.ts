/**
 * The Testbed operations against a real EC2 API: moto's server (a child process on a loopback
 * port, one for the whole file). No fake of EC2 and no mock of the SDK. moto's instances do not
 * boot, so the SSH check is off here (probe: null); port-probe.test.ts tests that check.
 */
import { DescribeInstanceAttributeCommand, DescribeInstancesCommand, DescribeKeyPairsCommand, DescribeSecurityGroupsCommand, RunInstancesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { expect } from 'chai';
import fs from 'node:fs';
import net from 'node:net';
import { ErrorCodes, TestbedError } from '../../src/errors.js';
import { Testbed } from '../../src/testbed/testbed.js';
import { loadTestbedSettings } from '../../src/testbed/testbed-settings.js';
import { FAKE_CREDENTIALS, MotoServer } from './moto-server.js';
import { census, makeKey, REGIONS, settingsText, someImage, tempDir, writeSettings } from './testbed-fixture.js';

describe('testbed on EC2 (moto server)', function () {
  this.timeout(60_000);
  let moto: MotoServer;
  let dir: string;
  const testbeds: Testbed[] = [];
  const clients: EC2Client[] = [];

  before(async function () {
    moto = await MotoServer.start();
    dir = tempDir();
    makeKey(dir);
  });

  after(async () => {
    for (const tb of testbeds) tb.close();
    for (const c of clients) c.destroy();
    await moto?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  function testbed(id: string, extra = ''): Testbed {
    const file = writeSettings(dir, settingsText(id, extra));
    const settings = loadTestbedSettings(file, { MOTO_ENDPOINT: moto.endpoint });
    const tb = new Testbed({ settings, access: { credentials: FAKE_CREDENTIALS }, probe: null });
    testbeds.push(tb);
    return tb;
  }

  function client(region: string): EC2Client {
    const c = moto.client(region);
    clients.push(c);
    return c;
  }

  async function raw(region: string, id: string) {
    const out = await client(region).send(new DescribeInstancesCommand({ Filters: [{ Name: 'tag:troupe:testbed', Values: [id] }, { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped'] }] }));
    return (out.Reservations ?? []).flatMap((r) => r.Instances ?? []);
  }

  it('deploys 3 instances over 2 regions, tagged, of the type asked, running, each with the lifetime timer and shutdown behaviour terminate', async () => {
    const tb = testbed('spread');
    const report = await tb.deploy({ instances: 3 });
    expect(report.created.map((i) => [i.name, i.region])).to.deep.equal([['spread-1', 'us-east-1'], ['spread-2', 'eu-west-1'], ['spread-3', 'us-east-1']]);
    const listed = await tb.list();
    expect(listed.map((i) => [i.name, i.region, i.type, i.state, i.market])).to.deep.equal([
      ['spread-1', 'us-east-1', 't3.micro', 'running', 'on-demand'],
      ['spread-2', 'eu-west-1', 't3.micro', 'running', 'on-demand'],
      ['spread-3', 'us-east-1', 't3.micro', 'running', 'on-demand'],
    ]);
    for (const i of listed) expect(i.publicAddress).to.match(/^\d+\.\d+\.\d+\.\d+$/);
    for (const region of REGIONS) {
      const instances = await raw(region, 'spread');
      expect(instances).to.have.length(region === 'us-east-1' ? 2 : 1);
      for (const i of instances) {
        const tags = Object.fromEntries((i.Tags ?? []).map((t) => [t.Key, t.Value]));
        expect(tags['troupe:testbed']).to.equal('spread');
        expect(tags.Name).to.match(/^spread-[123]$/);
        expect(i.KeyName).to.equal('troupe-spread');
        const attr = await client(region).send(new DescribeInstanceAttributeCommand({ InstanceId: i.InstanceId, Attribute: 'userData' }));
        const userData = Buffer.from(attr.UserData!.Value!, 'base64').toString();
        expect(userData).to.include("shutdown -h +480 'troupe testbed lifetime reached'");
        expect(userData).to.match(/OnCalendar=\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\nPersistent=true/);
        expect(userData).to.include(`${tags['troupe:expires']}`);
        const behaviour = await client(region).send(new DescribeInstanceAttributeCommand({ InstanceId: i.InstanceId, Attribute: 'instanceInitiatedShutdownBehavior' }));
        expect(behaviour.InstanceInitiatedShutdownBehavior?.Value).to.equal('terminate');
      }
      const groups = (await client(region).send(new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'tag:troupe:testbed', Values: ['spread'] }] }))).SecurityGroups!;
      expect(groups.map((g) => g.GroupName)).to.deep.equal(['troupe-spread']);
      const ssh = groups[0]!.IpPermissions!.find((p) => p.FromPort === 22)!;
      expect(ssh.IpRanges!.map((r) => r.CidrIp)).to.deep.equal(['203.0.113.7/32']);
      // The manager port also from every instance of the testbed, in whichever region it is.
      const manager = groups[0]!.IpPermissions!.find((p) => p.FromPort === 7400)!;
      expect(manager.IpRanges!.map((r) => r.CidrIp).sort()).to.deep.equal(['203.0.113.7/32', ...listed.map((i) => `${i.publicAddress}/32`)].sort());
      const keys = (await client(region).send(new DescribeKeyPairsCommand({ Filters: [{ Name: 'tag:troupe:testbed', Values: ['spread'] }] }))).KeyPairs!;
      expect(keys.map((k) => k.KeyName)).to.deep.equal(['troupe-spread']);
    }
    for (const i of listed) expect(i.expires!.getTime() - Date.now()).to.be.within(470 * 60_000, 480 * 60_000);
  });

  it('deploy again creates none; deploy with a larger N creates only the missing ones', async () => {
    const tb = testbed('again');
    await tb.deploy({ instances: 3 });
    const before = (await tb.list()).map((i) => i.instanceId);
    const again = await tb.deploy({ instances: 3 });
    expect(again.created).to.deep.equal([]);
    expect(again.instances.map((i) => i.instanceId)).to.deep.equal(before);
    const more = await tb.deploy({ instances: 5 });
    expect(more.created.map((i) => [i.name, i.region])).to.deep.equal([['again-4', 'us-east-1'], ['again-5', 'eu-west-1']]);
    const after = await tb.list();
    expect(after).to.have.length(5);
    expect(after.filter((i) => before.includes(i.instanceId))).to.have.length(3);
    expect((await raw('us-east-1', 'again')).length).to.equal(3);
    expect((await raw('eu-west-1', 'again')).length).to.equal(2);
  });

  it('stop, then start: the states change and the listing shows them', async () => {
    const tb = testbed('cycle');
    await tb.deploy({ instances: 3 });
    const stopped = await tb.stop(1);
    expect(stopped.map((i) => i.name)).to.deep.equal(['cycle-3']);
    expect((await tb.list()).map((i) => [i.name, i.state])).to.deep.equal([['cycle-1', 'running'], ['cycle-2', 'running'], ['cycle-3', 'stopped']]);
    await tb.stop();
    expect((await tb.list()).map((i) => i.state)).to.deep.equal(['stopped', 'stopped', 'stopped']);
    const started = await tb.start();
    expect(started.map((i) => i.name)).to.deep.equal(['cycle-1', 'cycle-2', 'cycle-3']);
    expect((await tb.list()).map((i) => i.state)).to.deep.equal(['running', 'running', 'running']);
    // deploy starts what it counts as stopped.
    await tb.stop(2);
    const report = await tb.deploy({ instances: 3 });
    expect(report.created).to.deep.equal([]);
    expect(report.started.map((i) => i.name)).to.deep.equal(['cycle-2', 'cycle-3']);
    expect(report.instances.map((i) => i.state)).to.deep.equal(['running', 'running', 'running']);
  });

  it('destroy: no instance, security group or key pair of the testbed is left in either region, and an untagged instance is untouched', async () => {
    const image = await someImage(moto, 'us-east-1');
    const bystander = (await client('us-east-1').send(new RunInstancesCommand({ ImageId: image, MinCount: 1, MaxCount: 1, InstanceType: 't3.micro' }))).Instances![0]!.InstanceId!;
    const other = testbed('neighbour');
    await other.deploy({ instances: 1 });
    const tb = testbed('doomed');
    await tb.deploy({ instances: 3 });
    await tb.stop(1); // a stopped instance is terminated too
    const removed = await tb.destroy();
    expect(removed.map((r) => [r.region, r.instances.length, r.securityGroups.length, r.keyPairs.length])).to.deep.equal([['us-east-1', 2, 1, 1], ['eu-west-1', 1, 1, 1]]);
    for (const region of REGIONS) {
      expect(await raw(region, 'doomed')).to.deep.equal([]);
      expect((await client(region).send(new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'tag:troupe:testbed', Values: ['doomed'] }] }))).SecurityGroups).to.deep.equal([]);
      const keys = (await client(region).send(new DescribeKeyPairsCommand({}))).KeyPairs!.map((k) => k.KeyName);
      expect(keys).not.to.include('troupe-doomed');
    }
    const still = await client('us-east-1').send(new DescribeInstancesCommand({ InstanceIds: [bystander] }));
    expect(still.Reservations![0]!.Instances![0]!.State!.Name).to.equal('running');
    expect((await other.list()).map((i) => i.state)).to.deep.equal(['running']);
    expect(await tb.list()).to.deep.equal([]);
    expect((await tb.destroy()).every((r) => r.instances.length + r.securityGroups.length + r.keyPairs.length === 0)).to.equal(true);
  });

  it('spot instances, an AMI id per region, a larger root volume', async () => {
    const east = await someImage(moto, 'us-east-1');
    const west = await someImage(moto, 'eu-west-1');
    const text = settingsText('spot').replace(/^image: .*$/m, `image: { us-east-1: ${east}, eu-west-1: ${west} }`) + '\nmarket: spot\nrootVolume: 40\nmaxLifetime: 90m\n';
    const settings = loadTestbedSettings(writeSettings(dir, text), { MOTO_ENDPOINT: moto.endpoint });
    const tb = new Testbed({ settings, access: { credentials: FAKE_CREDENTIALS }, probe: null });
    testbeds.push(tb);
    await tb.deploy({ instances: 2 });
    expect((await tb.list()).map((i) => i.market)).to.deep.equal(['spot', 'spot']);
    const [i] = await raw('eu-west-1', 'spot');
    expect(i!.ImageId).to.equal(west);
    const userData = Buffer.from((await client('eu-west-1').send(new DescribeInstanceAttributeCommand({ InstanceId: i!.InstanceId, Attribute: 'userData' }))).UserData!.Value!, 'base64').toString();
    expect(userData).to.include('shutdown -h +90 ');
  });

  it('the security group follows allowedCidrs: a deploy after they changed revokes the old CIDR and adds the new, also when it creates nothing', async () => {
    await testbed('narrow').deploy({ instances: 2 });
    const tb = fromText(settingsText('narrow').replace('allowedCidrs: [203.0.113.7/32]', 'allowedCidrs: [198.51.100.0/24, "2001:db8::/48"]'));
    const report = await tb.deploy({ instances: 2 });
    expect(report.created).to.deep.equal([]);
    for (const region of REGIONS) {
      const [group] = (await client(region).send(new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'tag:troupe:testbed', Values: ['narrow'] }] }))).SecurityGroups!;
      const rule = (port: number) => group!.IpPermissions!.find((p) => p.FromPort === port)!;
      expect(rule(22).IpRanges!.map((r) => r.CidrIp)).to.deep.equal(['198.51.100.0/24']);
      expect(rule(22).Ipv6Ranges!.map((r) => r.CidrIpv6)).to.deep.equal(['2001:db8::/48']);
      expect(rule(7400).IpRanges!.map((r) => r.CidrIp).sort()).to.deep.equal(['198.51.100.0/24', ...report.instances.map((i) => `${i.publicAddress}/32`)].sort());
    }
  });

  it('--region puts all N in that region; a region not in the settings is refused', async () => {
    const tb = testbed('onlywest');
    const report = await tb.deploy({ instances: 2, region: 'eu-west-1' });
    expect(report.created.map((i) => [i.name, i.region])).to.deep.equal([['onlywest-1', 'eu-west-1'], ['onlywest-2', 'eu-west-1']]);
    expect(await raw('us-east-1', 'onlywest')).to.deep.equal([]);
    let err: unknown;
    await tb.deploy({ instances: 1, region: 'us-west-2' }).catch((e: unknown) => (err = e));
    expect((err as TestbedError).code).to.equal(ErrorCodes.SETTING);
    expect((err as Error).message).to.match(/^region: expected one of the regions of .*testbed\.yaml \(us-east-1, eu-west-1\), got "us-west-2"$/);
  });

  it('a key pair of the same name without the tag: that region refused (TROUPE_E_TESTBED_CONFLICT), the other made; status shows the partial testbed, destroy removes it and not the foreign key pair', async () => {
    const { ImportKeyPairCommand } = await import('@aws-sdk/client-ec2');
    const pub = fs.readFileSync(`${dir}/id_test.pub`);
    await client('eu-west-1').send(new ImportKeyPairCommand({ KeyName: 'troupe-partial', PublicKeyMaterial: pub }));
    const tb = testbed('partial');
    let err: unknown;
    await tb.deploy({ instances: 3 }).catch((e: unknown) => (err = e));
    expect((err as TestbedError).code).to.equal(ErrorCodes.TESTBED_CONFLICT);
    expect((err as Error).message).to.equal(
      'eu-west-1: a key pair named troupe-partial exists without the tag troupe:testbed of this testbed; troupe will not use or delete it: remove it, or choose another testbed id (deploy stopped there; troupe testbed status shows what exists, troupe testbed destroy removes it)',
    );
    expect((await tb.list()).map((i) => [i.name, i.region])).to.deep.equal([['partial-1', 'us-east-1'], ['partial-3', 'us-east-1']]);
    const removed = await tb.destroy();
    expect(removed.map((r) => [r.region, r.instances.length, r.securityGroups.length, r.keyPairs.length])).to.deep.equal([['us-east-1', 2, 1, 1], ['eu-west-1', 0, 0, 0]]);
    expect(await tb.list()).to.deep.equal([]);
    const keys = (await client('eu-west-1').send(new DescribeKeyPairsCommand({ KeyNames: ['troupe-partial'] }))).KeyPairs!;
    expect(keys.map((k) => k.KeyName)).to.deep.equal(['troupe-partial']);
  });

  describe('refused before anything is created', () => {
    async function refused(make: () => Testbed | Promise<Testbed>, act: (tb: Testbed) => Promise<unknown>, code: string, message: RegExp) {
      const before = await census(moto);
      let err: unknown;
      try {
        await act(await make());
      } catch (e) {
        err = e;
      }
      expect(err, 'an error').to.be.instanceOf(TestbedError);
      expect((err as TestbedError).code).to.equal(code);
      expect((err as TestbedError).message).to.match(message);
      expect(await census(moto)).to.deep.equal(before);
    }

    it('zero instances: TROUPE_E_TESTBED_INSTANCES', () => refused(() => testbed('zero'), (tb) => tb.deploy({ instances: 0 }), ErrorCodes.TESTBED_INSTANCES, /--instances: expected a whole number of instances from 1 to 1000, got 0/));

    it('a missing key file: TROUPE_E_TESTBED_KEY_FILE', () =>
      refused(() => testbedWithKey('nokey', './nowhere.pub'), (tb) => tb.deploy({ instances: 2 }), ErrorCodes.TESTBED_KEY_FILE, /cannot read the public key .*nowhere\.pub \(publicKey in .*testbed\.yaml\): ENOENT/));

    it('a private key named as the public key: TROUPE_E_TESTBED_KEY_FILE', () =>
      refused(() => testbedWithKey('privkey', './id_test'), (tb) => tb.deploy({ instances: 2 }), ErrorCodes.TESTBED_KEY_FILE, /is not an OpenSSH public key .*\(this is a private key: name the \.pub file\)/));

    it('an unknown region: TROUPE_E_AWS_REGION, also when it comes first', async () => {
      await refused(() => testbedIn('badregion', ['us-east-1', 'xx-nowhere-1']), (tb) => tb.deploy({ instances: 2 }), ErrorCodes.AWS_REGION, /unknown region xx-nowhere-1: the EC2 API does not list it/);
      await refused(() => testbedIn('badregion2', ['xx-nowhere-1', 'eu-west-1']), (tb) => tb.deploy({ instances: 2 }), ErrorCodes.AWS_REGION, /unknown region xx-nowhere-1/);
    });

    it('an AMI that does not exist, in the second region: TROUPE_E_AWS_IMAGE, nothing made in the first', async () => {
      const east = await someImage(moto, 'us-east-1');
      await refused(
        () => {
          const text = settingsText('noami').replace(/^image: .*$/m, `image: { us-east-1: ${east}, eu-west-1: ami-0000000000000dead }`);
          const tb = new Testbed({ settings: loadTestbedSettings(writeSettings(dir, text), { MOTO_ENDPOINT: moto.endpoint }), access: { credentials: FAKE_CREDENTIALS }, probe: null });
          testbeds.push(tb);
          return tb;
        },
        (tb) => tb.deploy({ instances: 2 }),
        ErrorCodes.AWS_IMAGE,
        /^eu-west-1: the AMI ami-0000000000000dead does not exist there \(AMI ids differ per region\)$/,
      );
    });
  });

  it('an endpoint that does not answer: TROUPE_E_AWS_REQUEST naming it, not an unknown region', async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const closed = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    await new Promise((resolve) => server.close(resolve));
    const settings = loadTestbedSettings(writeSettings(dir, settingsText('unreachable')), { MOTO_ENDPOINT: closed });
    const tb = new Testbed({ settings, access: { credentials: FAKE_CREDENTIALS }, probe: null });
    testbeds.push(tb);
    let err: unknown;
    await tb.list().catch((e: unknown) => (err = e));
    expect((err as TestbedError).code).to.equal(ErrorCodes.AWS_REQUEST);
    expect((err as Error).message).to.equal(`cannot reach the EC2 endpoint ${closed}: connect ECONNREFUSED ${closed.slice(7)}`);
  });

  function testbedWithKey(id: string, key: string): Testbed {
    return fromText(settingsText(id).replace('publicKey: ./id_test.pub', `publicKey: ${key}`));
  }

  function testbedIn(id: string, regions: string[]): Testbed {
    return fromText(settingsText(id).replace(/^regions: .*$/m, `regions: [${regions.join(', ')}]`));
  }

  function fromText(text: string): Testbed {
    const tb = new Testbed({ settings: loadTestbedSettings(writeSettings(dir, text), { MOTO_ENDPOINT: moto.endpoint }), access: { credentials: FAKE_CREDENTIALS }, probe: null });
    testbeds.push(tb);
    return tb;
  }
});
