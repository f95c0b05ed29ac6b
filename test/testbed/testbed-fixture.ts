/**
 * What the testbed tests share: a settings file in a temporary directory with a fresh OpenSSH
 * public key, pointed at a moto server; the AMIs moto ships; and a census of the account (every
 * instance, security group and key pair in the regions), to show that a refused command made
 * nothing.
 */
import { DescribeImagesCommand, DescribeInstancesCommand, DescribeKeyPairsCommand, DescribeSecurityGroupsCommand } from '@aws-sdk/client-ec2';
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { MotoServer } from './moto-server.js';

export const REGIONS = ['us-east-1', 'eu-west-1'] as const;
/** An image owner and name pattern that moto's catalogue has in every region. */
export const UBUNTU = { owner: '099720109477', name: 'ubuntu/images/hvm-ssd/ubuntu-*' };

export function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-testbed-'));
}

/**
 * An ed25519 key pair in `dir` (id_test, id_test.pub), made with node:crypto so that no ssh-keygen
 * is needed: the public key in OpenSSH's format, the private key as PKCS#8 PEM. Returns the
 * public key's path.
 */
export function makeKey(dir: string): string {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
  const field = (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
  const blob = Buffer.concat([field(Buffer.from('ssh-ed25519')), field(raw)]);
  fs.writeFileSync(path.join(dir, 'id_test'), privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
  fs.writeFileSync(path.join(dir, 'id_test.pub'), `ssh-ed25519 ${blob.toString('base64')} troupe-test\n`);
  return path.join(dir, 'id_test.pub');
}

/** Writes `testbed.yaml` in dir (the endpoint given as ${MOTO_ENDPOINT}); returns its path. */
export function writeSettings(dir: string, body: string): string {
  const file = path.join(dir, 'testbed.yaml');
  fs.writeFileSync(file, body);
  return file;
}

export function settingsText(id: string, extra = ''): string {
  return [
    `id: ${id}`,
    `regions: [${REGIONS.join(', ')}]`,
    'instanceType: t3.micro',
    `image: { name: "${UBUNTU.name}", owner: "${UBUNTU.owner}" }`,
    'publicKey: ./id_test.pub',
    'allowedCidrs: [203.0.113.7/32]',
    'endpoint: ${MOTO_ENDPOINT}',
    'pollInterval: 20ms',
    'waitTimeout: 30s',
    extra,
  ].join('\n');
}

/** The id of an Ubuntu image moto has in the region. */
export async function someImage(moto: MotoServer, region: string): Promise<string> {
  const out = await moto.client(region).send(new DescribeImagesCommand({ Owners: [UBUNTU.owner], Filters: [{ Name: 'name', Values: [UBUNTU.name] }] }));
  return out.Images![0]!.ImageId!;
}

export interface Census {
  instances: string[];
  groups: string[];
  keyPairs: string[];
}

/** Every live instance, security group and key pair of the account in the regions. */
export async function census(moto: MotoServer, regions: readonly string[] = REGIONS): Promise<Census> {
  const out: Census = { instances: [], groups: [], keyPairs: [] };
  for (const region of regions) {
    const c = moto.client(region);
    const inst = await c.send(new DescribeInstancesCommand({ Filters: [{ Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped', 'shutting-down'] }] }));
    for (const r of inst.Reservations ?? []) for (const i of r.Instances ?? []) out.instances.push(`${region}/${i.InstanceId}`);
    for (const g of (await c.send(new DescribeSecurityGroupsCommand({}))).SecurityGroups ?? []) out.groups.push(`${region}/${g.GroupId}`);
    for (const k of (await c.send(new DescribeKeyPairsCommand({}))).KeyPairs ?? []) out.keyPairs.push(`${region}/${k.KeyName}`);
    c.destroy();
  }
  for (const list of Object.values(out)) list.sort();
  return out;
}
