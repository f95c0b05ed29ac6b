/**
 * `troupe testbed …` as a user runs it: real `troupe` processes against a real moto server,
 * asserting exit codes, tables, JSON, the inventory file, the question destroy asks, and that a
 * refused command leaves the account as it was. moto's instances do not boot: deploy runs with
 * --no-wait-ssh (the SSH check itself is tested in port-probe.test.ts).
 */
import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { CliProcess, killAllCli } from '../fixtures/cli-process.js';
import { MotoServer } from './moto-server.js';
import { census, makeKey, settingsText, tempDir, writeSettings } from './testbed-fixture.js';

describe('troupe testbed (CLI, moto server)', function () {
  this.timeout(60_000);
  let moto: MotoServer;
  let dir: string;

  before(async function () {
    moto = await MotoServer.start();
    dir = tempDir();
    makeKey(dir);
  });

  after(async () => {
    await killAllCli();
    await moto?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const troupe = (args: string[], extra: { input?: string; env?: NodeJS.ProcessEnv } = {}) =>
    CliProcess.run(['testbed', ...args], { cwd: dir, input: extra.input, env: { ...moto.env(), MOTO_ENDPOINT: moto.endpoint, ...extra.env } });

  it('deploy, status (table and JSON), stop, hosts, and destroy that asks first', async () => {
    writeSettings(dir, settingsText('cli'));
    const deployed = await troupe(['deploy', '--instances', '3', '--no-wait-ssh']);
    expect(deployed.code, deployed.stderr).to.equal(0);
    expect(deployed.stdout).to.equal('testbed cli: 3 instances; created cli-1 (us-east-1), cli-2 (eu-west-1), cli-3 (us-east-1)');
    expect(deployed.stderr).to.include('us-east-1: 2 of 2 running, 2 with a public address');
    expect(deployed.stderr).to.include('eu-west-1: 1 of 1 running, 1 with a public address');

    const status = await troupe(['status']);
    expect(status.code, status.stderr).to.equal(0);
    const lines = status.stdout.split('\n');
    expect(lines[0]).to.equal('us-east-1:');
    expect(lines[1]).to.match(/^ {2}instance +name +type +state +address +launched +time left +ssh$/);
    expect(lines[2]).to.match(new RegExp(`^  i-[0-9a-f]+ +cli-1 +t3\\.micro +running +(\\d+\\.\\d+\\.\\d+\\.\\d+) +\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ +7h 5\\dm +ssh -i ${dir}/id_test admin@\\1$`));
    expect(lines[3]).to.match(/cli-3 +t3\.micro +running/);
    expect(lines[4]).to.equal('eu-west-1:');
    expect(lines[6]).to.match(/cli-2 +t3\.micro +running/);
    expect(lines).to.have.length(7);

    const stopped = await troupe(['stop', '--instances', '1']);
    expect([stopped.code, stopped.stdout]).to.deep.equal([0, 'stopped cli-3 (us-east-1)']);
    const json = await troupe(['status', '--json']);
    expect(json.code, json.stderr).to.equal(0);
    const shown = JSON.parse(json.stdout) as { testbed: string; instances: { name: string; region: string; state: string; type: string; ssh: string | null; timeLeftMs: number }[] };
    expect(shown.testbed).to.equal('cli');
    expect(shown.instances.map((i) => [i.name, i.region, i.type, i.state])).to.deep.equal([
      ['cli-1', 'us-east-1', 't3.micro', 'running'],
      ['cli-2', 'eu-west-1', 't3.micro', 'running'],
      ['cli-3', 'us-east-1', 't3.micro', 'stopped'],
    ]);

    const hosts = await troupe(['hosts', '--out', 'hosts.yaml']);
    expect([hosts.code, hosts.stdout]).to.deep.equal([0, 'hosts.yaml: manager cli-1, 1 worker (cli-2)']);
    const inventory = parse(fs.readFileSync(path.join(dir, 'hosts.yaml'), 'utf8')) as { defaults: Record<string, unknown>; manager: { name: string; address: string; port: number }; workers: { name: string; address: string; tags: string[] }[] };
    expect(inventory.defaults).to.deep.equal({ user: 'admin', sshPort: 22, identity: path.join(dir, 'id_test') });
    expect(inventory.manager).to.deep.equal({ name: 'cli-1', address: shown.instances[0]!.ssh!.split('@')[1], port: 7400 });
    expect(inventory.workers.map((w) => [w.name, w.tags[0]])).to.deep.equal([['cli-2', 'region-eu-west-1']]);
    expect(inventory.workers[0]!.address).to.equal(shown.instances[1]!.ssh!.split('@')[1]);

    const before = await census(moto);
    const refused = await troupe(['destroy']);
    expect(refused.code).to.equal(1);
    expect(refused.stdout).to.match(/^us-east-1: 2 instances, 1 security group, 1 key pair\n {2}instance i-[0-9a-f]+ cli-1 \(running\)/);
    expect(refused.stderr).to.include('Remove all of this (testbed cli)? [y/N]');
    expect(refused.stderr).to.include('troupe: TROUPE_E_TESTBED_NOT_CONFIRMED: nothing removed');
    expect(await census(moto)).to.deep.equal(before);

    const destroyed = await troupe(['destroy'], { input: 'y\n' });
    expect(destroyed.code, destroyed.stderr).to.equal(0);
    expect(destroyed.stdout).to.include('testbed cli: removed\nus-east-1: 2 instances, 1 security group, 1 key pair');
    expect(destroyed.stdout).to.include('eu-west-1: 1 instance, 1 security group, 1 key pair\n  instance');
    // Nothing else was in this moto account: after destroy, only the regions' default security groups.
    const after = await census(moto);
    expect([after.instances, after.keyPairs, after.groups.length]).to.deep.equal([[], [], before.groups.length - 2]);
  });

  it('no credentials anywhere: TROUPE_E_AWS_CREDENTIALS, exit 1, nothing created', async () => {
    writeSettings(dir, settingsText('nocreds'));
    const before = await census(moto);
    const out = await troupe(['deploy', '--instances', '2', '--no-wait-ssh'], {
      env: { AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined, HOME: dir, AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'none'), AWS_CONFIG_FILE: path.join(dir, 'none') },
    });
    expect(out.code).to.equal(1);
    expect(out.stderr).to.match(/^troupe: TROUPE_E_AWS_CREDENTIALS: no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE/m);
    expect(await census(moto)).to.deep.equal(before);
  });

  it('an empty CIDR list and an unset variable: TROUPE_E_TESTBED_SETTINGS naming file, line and key, exit 1, nothing created', async () => {
    const file = writeSettings(dir, settingsText('nocidr').replace('allowedCidrs: [203.0.113.7/32]', 'allowedCidrs: []').replace('instanceType: t3.micro', 'instanceType: ${TROUPE_TEST_UNSET_TYPE}'));
    const before = await census(moto);
    const out = await troupe(['deploy', '--instances', '2', '--no-wait-ssh', '--settings', file]);
    expect(out.code).to.equal(1);
    expect(out.stderr).to.equal(
      `troupe: TROUPE_E_TESTBED_SETTINGS: 2 problems:\n  ${file}:3: instanceType: the environment variable TROUPE_TEST_UNSET_TYPE is not set (write \${TROUPE_TEST_UNSET_TYPE:-default} for a default)\n  ${file}:6: allowedCidrs: the list is empty; expected a list of the CIDRs allowed to reach SSH and the manager port, e.g. [203.0.113.7/32] (there is no default that opens them to the world)`,
    );
    expect(await census(moto)).to.deep.equal(before);
  });
});
