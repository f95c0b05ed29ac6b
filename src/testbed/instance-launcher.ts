/**
 * Launching one testbed instance: the image (an AMI id of the region, or the newest image that
 * matches a name and owner), shutdown behaviour `terminate`, the lifetime user data, on-demand or
 * spot (one-time, terminated on interruption), the root volume deleted with the instance, and
 * every tag given at creation (instance and volume), so that no instance ever exists untagged.
 *
 * Availability zones are tried in turn, starting at a different zone for each instance so that a
 * testbed spreads over them: when one has no capacity for the type (InsufficientInstanceCapacity,
 * or the type is not offered there: Unsupported), the next is tried; when none has, the launch
 * fails with TROUPE_E_AWS_CAPACITY naming every zone tried.
 */
import {
  DescribeAvailabilityZonesCommand,
  DescribeImagesCommand,
  RunInstancesCommand,
  type EC2Client,
  type Image,
  type Instance,
} from '@aws-sdk/client-ec2';
import { randomBytes } from 'node:crypto';
import { ErrorCodes, TestbedError } from '../errors.js';
import { awsCode, awsError } from './ec2-regions.js';
import { EXPIRES_TAG, tagSpecification, testbedTags } from './testbed-tags.js';
import type { ImageChoice } from './testbed-settings.js';
import { lifetimeUserData } from './user-data.js';

const CAPACITY_CODES = new Set(['InsufficientInstanceCapacity', 'InsufficientCapacity', 'Unsupported', 'InsufficientHostCapacity']);

export interface ResolvedImage {
  imageId: string;
  rootDevice: string;
  name: string | undefined;
}

/** The region's image, checked to exist (TROUPE_E_AWS_IMAGE otherwise). */
export async function resolveImage(ec2: EC2Client, region: string, choice: ImageChoice): Promise<ResolvedImage> {
  let images: Image[];
  try {
    const out =
      choice.kind === 'ids'
        ? await ec2.send(new DescribeImagesCommand({ ImageIds: [choice.ids[region]!] }))
        : await ec2.send(new DescribeImagesCommand({ Owners: [choice.owner], Filters: [{ Name: 'name', Values: [choice.name] }, { Name: 'state', Values: ['available'] }] }));
    images = out.Images ?? [];
  } catch (err) {
    const code = awsCode(err);
    if (code === 'InvalidAMIID.NotFound' || code === 'InvalidAMIID.Malformed' || code === 'InvalidAMIID.Unavailable') images = [];
    else throw awsError(err, `${region}: looking up the image`);
  }
  if (images.length === 0) {
    const what = choice.kind === 'ids' ? `the AMI ${choice.ids[region]} does not exist there (AMI ids differ per region)` : `no available image is named ${JSON.stringify(choice.name)} and owned by ${choice.owner}`;
    throw new TestbedError(ErrorCodes.AWS_IMAGE, `${region}: ${what}`);
  }
  // Newest first; the name breaks ties so that the choice does not depend on the API's order.
  images.sort((a, b) => (b.CreationDate ?? '').localeCompare(a.CreationDate ?? '') || (b.Name ?? '').localeCompare(a.Name ?? ''));
  const image = images[0]!;
  return { imageId: image.ImageId!, rootDevice: image.RootDeviceName ?? '/dev/xvda', name: image.Name };
}

/** The region's available zones, by name. */
export async function availabilityZones(ec2: EC2Client, region: string): Promise<string[]> {
  try {
    const out = await ec2.send(new DescribeAvailabilityZonesCommand({ Filters: [{ Name: 'state', Values: ['available'] }, { Name: 'zone-type', Values: ['availability-zone'] }] }));
    return (out.AvailabilityZones ?? []).map((z) => z.ZoneName!).filter(Boolean).sort();
  } catch (err) {
    throw awsError(err, `${region}: listing the availability zones`);
  }
}

export interface LaunchRequest {
  testbedId: string;
  region: string;
  name: string;
  /** Which zone to try first (the instance's number): spreads a testbed over the zones. */
  zoneOffset: number;
  zones: readonly string[];
  image: ResolvedImage;
  instanceType: string;
  keyName: string;
  groupId: string;
  rootVolumeGiB: number;
  market: 'on-demand' | 'spot';
  maxLifetimeMinutes: number;
  now: Date;
}

export async function launchInstance(ec2: EC2Client, req: LaunchRequest): Promise<Instance> {
  const expires = new Date(req.now.getTime() + req.maxLifetimeMinutes * 60_000);
  const tags = testbedTags(req.testbedId, req.name, { [EXPIRES_TAG]: expires.toISOString() });
  const zones = req.zones.length > 0 ? [...req.zones.slice(req.zoneOffset % req.zones.length), ...req.zones.slice(0, req.zoneOffset % req.zones.length)] : [undefined];
  const tried: string[] = [];
  const nonce = randomBytes(6).toString('hex');
  for (const zone of zones) {
    try {
      const out = await ec2.send(
        new RunInstancesCommand({
          ImageId: req.image.imageId,
          InstanceType: req.instanceType as never,
          MinCount: 1,
          MaxCount: 1,
          KeyName: req.keyName,
          SecurityGroupIds: [req.groupId],
          ...(zone !== undefined ? { Placement: { AvailabilityZone: zone } } : {}),
          InstanceInitiatedShutdownBehavior: 'terminate',
          UserData: Buffer.from(lifetimeUserData(req.testbedId, req.maxLifetimeMinutes, expires)).toString('base64'),
          BlockDeviceMappings: [{ DeviceName: req.image.rootDevice, Ebs: { VolumeSize: req.rootVolumeGiB, VolumeType: 'gp3', DeleteOnTermination: true } }],
          ...(req.market === 'spot' ? { InstanceMarketOptions: { MarketType: 'spot', SpotOptions: { SpotInstanceType: 'one-time', InstanceInterruptionBehavior: 'terminate' } } } : {}),
          TagSpecifications: [tagSpecification('instance', tags), tagSpecification('volume', tags)],
          // A retried request (the SDK retries timeouts) must not start a second instance.
          ClientToken: `${req.name}-${zone ?? 'any'}-${nonce}`.slice(0, 64),
        }),
      );
      return out.Instances![0]!;
    } catch (err) {
      const code = awsCode(err);
      if (code !== undefined && CAPACITY_CODES.has(code) && zone !== undefined) {
        tried.push(`${zone} (${code})`);
        continue;
      }
      throw awsError(err, `${req.region}: launching ${req.name}`);
    }
  }
  throw new TestbedError(ErrorCodes.AWS_CAPACITY, `${req.region}: no availability zone has capacity for ${req.market === 'spot' ? 'a spot' : 'an on-demand'} ${req.instanceType} for ${req.name}: tried ${tried.join(', ')}; try another instance type or region, or later`);
}
