/**
 * The two resources a testbed has in each region besides its instances: a key pair (the user's
 * public key, imported) and a security group (SSH and the manager port from the allowed CIDRs,
 * the manager port also from every instance of the testbed). The group's rules on those ports are
 * converged, as Terraform would: missing ones added, ones no longer in the settings revoked. Both are named `troupe-ID` and
 * tagged; both are found by their tag, never by name alone. A resource of that name without the
 * tag belongs to someone else: it is refused (TROUPE_E_TESTBED_CONFLICT), never reused or deleted.
 */
import {
  AuthorizeSecurityGroupIngressCommand,
  CreateSecurityGroupCommand,
  DeleteKeyPairCommand,
  DeleteSecurityGroupCommand,
  DescribeKeyPairsCommand,
  DescribeSecurityGroupsCommand,
  ImportKeyPairCommand,
  RevokeSecurityGroupIngressCommand,
  type EC2Client,
  type IpPermission,
  type SecurityGroup,
} from '@aws-sdk/client-ec2';
import fs from 'node:fs';
import { ErrorCodes, TestbedError } from '../errors.js';
import { awsCode, awsError } from './ec2-regions.js';
import { isOurs, tagFilter, tagSpecification, testbedTags } from './testbed-tags.js';

const PUBLIC_KEY = /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+={0,3}( .*)?$/;

/** The name of the testbed's key pair and security group in every region. */
export function resourceName(id: string): string {
  return `troupe-${id}`;
}

/** Reads the OpenSSH public key to import; TROUPE_E_TESTBED_KEY_FILE when it is missing or not one. */
export function readPublicKey(file: string, settingsFile: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8').trim();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new TestbedError(ErrorCodes.TESTBED_KEY_FILE, `cannot read the public key ${file} (publicKey in ${settingsFile}): ${code ?? String(err)}; make one with ssh-keygen -t ed25519, or name yours in publicKey`, { cause: err });
  }
  if (!PUBLIC_KEY.test(text)) {
    const hint = text.includes('PRIVATE KEY') ? ' (this is a private key: name the .pub file)' : '';
    throw new TestbedError(ErrorCodes.TESTBED_KEY_FILE, `${file} (publicKey in ${settingsFile}) is not an OpenSSH public key (ssh-ed25519, ssh-rsa or ecdsa-sha2-*)${hint}`);
  }
  return text;
}

export async function ensureKeyPair(ec2: EC2Client, region: string, id: string, publicKey: string): Promise<'created' | 'exists'> {
  if ((await listKeyPairs(ec2, region, id)).length > 0) return 'exists';
  try {
    await ec2.send(new ImportKeyPairCommand({ KeyName: resourceName(id), PublicKeyMaterial: Buffer.from(publicKey), TagSpecifications: [tagSpecification('key-pair', testbedTags(id, resourceName(id)))] }));
    return 'created';
  } catch (err) {
    if (awsCode(err) === 'InvalidKeyPair.Duplicate') throw conflict('key pair', resourceName(id), region);
    throw awsError(err, `${region}: importing the key pair ${resourceName(id)}`);
  }
}

/** The testbed's key pairs in a region (by tag): their names. */
export async function listKeyPairs(ec2: EC2Client, region: string, id: string): Promise<string[]> {
  try {
    const out = await ec2.send(new DescribeKeyPairsCommand({ Filters: [tagFilter(id)] }));
    return (out.KeyPairs ?? []).filter((k) => isOurs(k.Tags, id)).map((k) => k.KeyName!);
  } catch (err) {
    throw awsError(err, `${region}: listing the key pairs`);
  }
}

export async function deleteKeyPair(ec2: EC2Client, region: string, name: string): Promise<void> {
  try {
    await ec2.send(new DeleteKeyPairCommand({ KeyName: name }));
  } catch (err) {
    throw awsError(err, `${region}: deleting the key pair ${name}`);
  }
}

/** The testbed's security groups in a region (by tag). */
export async function listSecurityGroups(ec2: EC2Client, region: string, id: string): Promise<SecurityGroup[]> {
  try {
    const out = await ec2.send(new DescribeSecurityGroupsCommand({ Filters: [tagFilter(id)] }));
    return (out.SecurityGroups ?? []).filter((g) => isOurs(g.Tags, id));
  } catch (err) {
    throw awsError(err, `${region}: listing the security groups`);
  }
}

export interface GroupRules {
  allowedCidrs: readonly string[];
  sshPort: number;
  managerPort: number;
}

/** The security group's id, created (in the default VPC) if absent; missing rules are added. */
export async function ensureSecurityGroup(ec2: EC2Client, region: string, id: string, rules: GroupRules): Promise<{ groupId: string; created: boolean }> {
  let group = (await listSecurityGroups(ec2, region, id))[0];
  let created = false;
  if (!group) {
    try {
      const out = await ec2.send(
        new CreateSecurityGroupCommand({
          GroupName: resourceName(id),
          Description: `troupe testbed ${id}: SSH and the troupe manager port`,
          TagSpecifications: [tagSpecification('security-group', testbedTags(id, resourceName(id)))],
        }),
      );
      group = { GroupId: out.GroupId!, IpPermissions: [] };
      created = true;
    } catch (err) {
      if (awsCode(err) === 'InvalidGroup.Duplicate') throw conflict('security group', resourceName(id), region);
      throw awsError(err, `${region}: creating the security group ${resourceName(id)}`);
    }
  }
  const wanted: IpPermission[] = [];
  for (const port of new Set([rules.sshPort, rules.managerPort])) wanted.push(...missingRules(group, port, rules.allowedCidrs));
  await authorize(ec2, region, group.GroupId!, wanted);
  // The manager port's rules are converged by syncManagerPort, which also knows the instances.
  if (rules.sshPort !== rules.managerPort) await revoke(ec2, region, group.GroupId!, staleRules(group, rules.sshPort, rules.allowedCidrs));
  return { groupId: group.GroupId!, created };
}

/**
 * Lets exactly `cidrs` reach the manager port: the allowed CIDRs and the testbed's own instances,
 * across regions. Addresses of instances gone (or given a new address by a stop and start) are revoked.
 */
export async function syncManagerPort(ec2: EC2Client, region: string, id: string, managerPort: number, cidrs: readonly string[]): Promise<void> {
  const group = (await listSecurityGroups(ec2, region, id))[0];
  if (!group) return;
  await authorize(ec2, region, group.GroupId!, missingRules(group, managerPort, cidrs));
  await revoke(ec2, region, group.GroupId!, staleRules(group, managerPort, cidrs));
}

export async function deleteSecurityGroup(ec2: EC2Client, region: string, groupId: string): Promise<void> {
  try {
    await ec2.send(new DeleteSecurityGroupCommand({ GroupId: groupId }));
  } catch (err) {
    throw awsError(err, `${region}: deleting the security group ${groupId}`);
  }
}

function missingRules(group: SecurityGroup, port: number, cidrs: readonly string[]): IpPermission[] {
  const rule = group.IpPermissions?.find((p) => p.IpProtocol === 'tcp' && p.FromPort === port && p.ToPort === port);
  const have = new Set([...(rule?.IpRanges ?? []).map((r) => r.CidrIp), ...(rule?.Ipv6Ranges ?? []).map((r) => r.CidrIpv6)]);
  const v4 = cidrs.filter((c) => !c.includes(':') && !have.has(c));
  const v6 = cidrs.filter((c) => c.includes(':') && !have.has(c));
  if (v4.length === 0 && v6.length === 0) return [];
  return [{ IpProtocol: 'tcp', FromPort: port, ToPort: port, IpRanges: v4.map((CidrIp) => ({ CidrIp })), Ipv6Ranges: v6.map((CidrIpv6) => ({ CidrIpv6 })) }];
}

function staleRules(group: SecurityGroup, port: number, keep: readonly string[]): IpPermission[] {
  const rule = group.IpPermissions?.find((p) => p.IpProtocol === 'tcp' && p.FromPort === port && p.ToPort === port);
  const v4 = (rule?.IpRanges ?? []).filter((r) => r.CidrIp !== undefined && !keep.includes(r.CidrIp)).map((r) => ({ CidrIp: r.CidrIp }));
  const v6 = (rule?.Ipv6Ranges ?? []).filter((r) => r.CidrIpv6 !== undefined && !keep.includes(r.CidrIpv6)).map((r) => ({ CidrIpv6: r.CidrIpv6 }));
  if (v4.length === 0 && v6.length === 0) return [];
  return [{ IpProtocol: 'tcp', FromPort: port, ToPort: port, ...(v4.length > 0 ? { IpRanges: v4 } : {}), ...(v6.length > 0 ? { Ipv6Ranges: v6 } : {}) }];
}

async function revoke(ec2: EC2Client, region: string, groupId: string, permissions: IpPermission[]): Promise<void> {
  if (permissions.length === 0) return;
  try {
    await ec2.send(new RevokeSecurityGroupIngressCommand({ GroupId: groupId, IpPermissions: permissions }));
  } catch (err) {
    if (awsCode(err) !== 'InvalidPermission.NotFound') throw awsError(err, `${region}: revoking rules of the security group ${groupId}`);
  }
}

async function authorize(ec2: EC2Client, region: string, groupId: string, permissions: IpPermission[]): Promise<void> {
  if (permissions.length === 0) return;
  try {
    await ec2.send(new AuthorizeSecurityGroupIngressCommand({ GroupId: groupId, IpPermissions: permissions }));
  } catch (err) {
    // Another deploy added the same rule meanwhile: the rule is there, which is what was wanted.
    if (awsCode(err) !== 'InvalidPermission.Duplicate') throw awsError(err, `${region}: adding rules to the security group ${groupId}`);
  }
}

function conflict(kind: string, name: string, region: string): TestbedError {
  return new TestbedError(ErrorCodes.TESTBED_CONFLICT, `${region}: a ${kind} named ${name} exists without the tag troupe:testbed of this testbed; troupe will not use or delete it: remove it, or choose another testbed id`);
}
