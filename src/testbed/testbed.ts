/**
 * A testbed: the EC2 instances, key pairs and security groups tagged `troupe:testbed=ID`, in the
 * regions of its settings. Every operation first checks credentials and regions (preflight) and,
 * for deploy, the key file, the count and every region's image, so that a mistake is reported
 * before anything exists. Every read filters on the testbed's tag, and every change or delete is
 * given only ids that such a read returned: nothing else in the account is touched.
 *
 * deploy is idempotent: it counts the live instances of each region (any state but terminated),
 * creates only the missing ones, starts the stopped ones it counts, and waits (polling, with a
 * progress line per region whenever it changes) until every one is running with a public address
 * and, unless told not to, accepts TCP connections on the SSH port. A deploy that fails half-way
 * leaves tagged resources that `list` shows and `destroy` removes.
 */
import {
  DescribeInstancesCommand,
  DescribeRegionsCommand,
  StartInstancesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
  type EC2Client,
  type Instance,
} from '@aws-sdk/client-ec2';
import { ErrorCodes, settingError, TestbedError } from '../errors.js';
import { awsCode, awsError, Ec2Regions, type Ec2Access } from './ec2-regions.js';
import { availabilityZones, launchInstance, resolveImage, type ResolvedImage } from './instance-launcher.js';
import { freeNumbers, instanceName, instanceNumber, spread } from './instance-plan.js';
import { tcpAccepts, type PortProbe } from './port-probe.js';
import { deleteKeyPair, deleteSecurityGroup, ensureKeyPair, ensureSecurityGroup, listKeyPairs, listSecurityGroups, readPublicKey, resourceName, syncManagerPort } from './testbed-resources.js';
import type { TestbedSettings } from './testbed-settings.js';
import { EXPIRES_TAG, isOurs, tagFilter, tagValue } from './testbed-tags.js';

/** At most this many instances in one deploy: 1000. */
export const MAX_INSTANCES = 1000;
/** Launches in flight at once per region. */
export const LAUNCH_CONCURRENCY = 4;

export type InstanceState = 'pending' | 'running' | 'shutting-down' | 'stopping' | 'stopped' | 'terminated';

export interface TestbedInstance {
  region: string;
  instanceId: string;
  name: string;
  /** n of `ID-n`; 0 for a tagged instance with another name. */
  number: number;
  type: string;
  state: InstanceState;
  publicAddress: string | undefined;
  privateAddress: string | undefined;
  zone: string | undefined;
  market: 'on-demand' | 'spot';
  launched: Date | undefined;
  /** When the lifetime timer powers it off (its troupe:expires tag). */
  expires: Date | undefined;
}

export interface TestbedOptions {
  settings: TestbedSettings;
  /** Overrides of the settings' endpoint and profile, and explicit credentials. */
  access?: Ec2Access;
  /** How deploy checks that SSH accepts connections: TCP connect by default; null skips the check. */
  probe?: PortProbe | null;
  /** A line per region whenever its progress changes. */
  onProgress?: (region: string, line: string) => void;
  now?: () => Date;
}

export interface DeployRequest {
  instances: number;
  /** Deploy `instances` in this region alone (one of the settings' regions). */
  region?: string;
}

export interface DeployReport {
  created: TestbedInstance[];
  started: TestbedInstance[];
  /** Regions holding more live instances than asked: left alone (destroy or stop removes them). */
  surplus: { region: string; count: number }[];
  instances: TestbedInstance[];
}

export interface RegionResources {
  region: string;
  instances: TestbedInstance[];
  securityGroups: { groupId: string; name: string }[];
  keyPairs: string[];
}

const LIVE_STATES = ['pending', 'running', 'shutting-down', 'stopping', 'stopped'];

export class Testbed {
  readonly settings: TestbedSettings;
  readonly #regions: Ec2Regions;
  readonly #probe: PortProbe | null;
  readonly #progress: (region: string, line: string) => void;
  readonly #now: () => Date;
  #checked = false;

  constructor(options: TestbedOptions) {
    this.settings = options.settings;
    this.#regions = new Ec2Regions({ endpoint: options.settings.endpoint, profile: options.settings.profile, ...options.access });
    this.#probe = options.probe === undefined ? (host, port) => tcpAccepts(host, port) : options.probe;
    this.#progress = options.onProgress ?? (() => {});
    this.#now = options.now ?? (() => new Date());
  }

  /** Credentials and regions, once per Testbed. */
  async preflight(): Promise<void> {
    if (this.#checked) return;
    await this.#regions.preflight(this.settings.regions);
    this.#checked = true;
  }

  /** The testbed's instances in every region (any state but terminated), by number. */
  async list(regions: readonly string[] = this.settings.regions): Promise<TestbedInstance[]> {
    await this.preflight();
    const all = await Promise.all(regions.map((r) => this.#listRegion(r)));
    return all.flat().sort(byNumber);
  }

  async deploy(request: DeployRequest): Promise<DeployReport> {
    const s = this.settings;
    if (!Number.isInteger(request.instances) || request.instances < 1 || request.instances > MAX_INSTANCES) {
      throw new TestbedError(ErrorCodes.TESTBED_INSTANCES, `--instances: expected a whole number of instances from 1 to ${MAX_INSTANCES}, got ${request.instances}`);
    }
    if (request.region !== undefined && !s.regions.includes(request.region)) throw settingError('region', request.region, `one of the regions of ${s.file} (${s.regions.join(', ')})`);
    const publicKey = readPublicKey(s.publicKeyFile, s.file);
    await this.preflight();
    const wanted = request.region !== undefined ? new Map([[request.region, request.instances]]) : spread(request.instances, s.regions);
    const regions = [...wanted.keys()];
    // Everything that can be refused is checked in every region before the first resource is made.
    const images = new Map<string, ResolvedImage>();
    const zones = new Map<string, string[]>();
    for (const region of regions) {
      images.set(region, await resolveImage(this.#client(region), region, s.image));
      zones.set(region, await availabilityZones(this.#client(region), region));
    }
    const existing = await this.list();
    const taken = existing.map((i) => i.number).filter((n) => n > 0);
    const toCreate = new Map<string, number[]>();
    const surplus: DeployReport['surplus'] = [];
    const need = new Map<string, number>();
    for (const region of regions) {
      const have = existing.filter((i) => i.region === region && i.state !== 'shutting-down').length;
      const missing = wanted.get(region)! - have;
      if (missing < 0) surplus.push({ region, count: -missing });
      need.set(region, Math.max(0, missing));
      toCreate.set(region, []);
    }
    // New numbers go round the regions as the instances do: 1 and 3 in the first, 2 in the second.
    for (let left = [...need.values()].reduce((a, b) => a + b, 0); left > 0; ) {
      for (const region of regions) {
        if (need.get(region)! === 0) continue;
        const [n] = freeNumbers(taken, 1);
        taken.push(n!);
        toCreate.get(region)!.push(n!);
        need.set(region, need.get(region)! - 1);
        left--;
      }
    }
    const created: TestbedInstance[] = [];
    const started: TestbedInstance[] = [];
    const settled = await Promise.allSettled(
      regions.map(async (region) => {
        const ec2 = this.#client(region);
        const numbers = toCreate.get(region)!;
        const stopped = existing.filter((i) => i.region === region && (i.state === 'stopped' || i.state === 'stopping'));
        if (wanted.get(region)! === 0) return;
        // Also on a deploy that creates nothing: the group's rules follow the settings.
        await ensureKeyPair(ec2, region, s.id, publicKey);
        const { groupId } = await ensureSecurityGroup(ec2, region, s.id, s);
        const now = this.#now();
        await inPool(numbers, LAUNCH_CONCURRENCY, async (n) => {
          const instance = await launchInstance(ec2, {
            testbedId: s.id, region, name: instanceName(s.id, n), zoneOffset: n - 1, zones: zones.get(region)!, image: images.get(region)!,
            instanceType: s.instanceType, keyName: resourceName(s.id), groupId, rootVolumeGiB: s.rootVolumeGiB, market: s.market,
            maxLifetimeMinutes: s.maxLifetimeMinutes, now,
          });
          created.push(toTestbedInstance(region, s.id, instance));
          this.#progress(region, `${region}: launched ${instanceName(s.id, n)} (${instance.InstanceId})`);
        });
        if (stopped.length > 0) {
          // EC2 starts only a stopped instance, not one still stopping.
          if (stopped.some((i) => i.state === 'stopping')) await this.#waitRegions([region], 'stopped', false, new Set(stopped.map((i) => i.instanceId)));
          await this.#call(region, 'starting the stopped instances', (c) => c.send(new StartInstancesCommand({ InstanceIds: stopped.map((i) => i.instanceId) })));
          started.push(...stopped);
        }
      }),
    );
    const failures = settled.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as unknown);
    if (failures.length > 0) throw partly(failures, 'deploy');
    await this.#waitRegions(regions, 'running', true);
    // Workers in one region reach a manager in another over public addresses: every instance of the
    // testbed may reach the manager port in every region (also those this deploy did not change).
    const instances = await this.list();
    const addresses = [...new Set(instances.map((i) => i.publicAddress).filter((a): a is string => a !== undefined).map((a) => (a.includes(':') ? `${a}/128` : `${a}/32`)))];
    await Promise.all(s.regions.map((r) => syncManagerPort(this.#client(r), r, s.id, s.managerPort, [...s.allowedCidrs, ...addresses])));
    return { created: created.sort(byNumber), started: started.sort(byNumber), surplus, instances };
  }

  /** Stops every running instance, or the `count` with the highest numbers; waits until they are stopped. */
  async stop(count?: number): Promise<TestbedInstance[]> {
    const running = (await this.list()).filter((i) => i.state === 'running' || i.state === 'pending').sort(byNumber).reverse();
    const chosen = count === undefined ? running : running.slice(0, checkCount(count));
    await this.#perRegion(chosen, 'stopping', (c, ids) => c.send(new StopInstancesCommand({ InstanceIds: ids })));
    await this.#waitRegions([...new Set(chosen.map((i) => i.region))], 'stopped', false, new Set(chosen.map((i) => i.instanceId)));
    return chosen.sort(byNumber);
  }

  /** Starts every stopped instance, or the `count` with the lowest numbers; waits until they run. */
  async start(count?: number): Promise<TestbedInstance[]> {
    const stopped = (await this.list()).filter((i) => i.state === 'stopped' || i.state === 'stopping').sort(byNumber);
    const chosen = count === undefined ? stopped : stopped.slice(0, checkCount(count));
    const stopping = chosen.filter((i) => i.state === 'stopping');
    if (stopping.length > 0) await this.#waitRegions([...new Set(stopping.map((i) => i.region))], 'stopped', false, new Set(stopping.map((i) => i.instanceId)));
    await this.#perRegion(chosen, 'starting', (c, ids) => c.send(new StartInstancesCommand({ InstanceIds: ids })));
    await this.#waitRegions([...new Set(chosen.map((i) => i.region))], 'running', false, new Set(chosen.map((i) => i.instanceId)));
    return chosen;
  }

  /** Everything of the testbed in the given regions: what destroy would remove. */
  async resources(regions: readonly string[] = this.settings.regions): Promise<RegionResources[]> {
    await this.preflight();
    return Promise.all(
      regions.map(async (region) => ({
        region,
        instances: (await this.#listRegion(region)).sort(byNumber),
        securityGroups: (await listSecurityGroups(this.#client(region), region, this.settings.id)).map((g) => ({ groupId: g.GroupId!, name: g.GroupName ?? '' })),
        keyPairs: await listKeyPairs(this.#client(region), region, this.settings.id),
      })),
    );
  }

  /**
   * Terminates every instance of the testbed in the regions, waits until they are terminated, then
   * deletes its security groups (retried while EC2 still counts a terminated instance as using
   * one: DependencyViolation) and key pairs. Resolves with what it removed.
   */
  async destroy(regions: readonly string[] = this.settings.regions): Promise<RegionResources[]> {
    const found = await this.resources(regions);
    const settled = await Promise.allSettled(
      found.map(async (res) => {
        const ec2 = this.#client(res.region);
        const live = res.instances.filter((i) => i.state !== 'terminated');
        if (live.length > 0) {
          await this.#call(res.region, 'terminating the instances', (c) => c.send(new TerminateInstancesCommand({ InstanceIds: live.map((i) => i.instanceId) })));
          await this.#waitRegions([res.region], 'terminated', false, new Set(live.map((i) => i.instanceId)));
        }
        for (const group of res.securityGroups) await this.#retryDependency(res.region, () => deleteSecurityGroup(ec2, res.region, group.groupId));
        for (const key of res.keyPairs) await deleteKeyPair(ec2, res.region, key);
        this.#progress(res.region, `${res.region}: removed ${summary(res)}`);
      }),
    );
    const failures = settled.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as unknown);
    if (failures.length > 0) throw partly(failures, 'destroy');
    return found;
  }

  /** The regions EC2 lists for the account (for destroy --all-regions). */
  async accountRegions(): Promise<string[]> {
    await this.preflight();
    const out = await this.#call(this.settings.regions[0]!, 'listing the regions', (c) => c.send(new DescribeRegionsCommand({})));
    return (out.Regions ?? []).map((r) => r.RegionName!).filter(Boolean).sort();
  }

  close(): void {
    this.#regions.destroy();
  }

  #client(region: string): EC2Client {
    return this.#regions.client(region);
  }

  async #call<T>(region: string, doing: string, call: (ec2: EC2Client) => Promise<T>): Promise<T> {
    try {
      return await call(this.#client(region));
    } catch (err) {
      throw awsError(err, `${region}: ${doing}`);
    }
  }

  async #listRegion(region: string): Promise<TestbedInstance[]> {
    const out: TestbedInstance[] = [];
    let token: string | undefined;
    do {
      const page = await this.#call(region, 'listing the instances', (c) =>
        c.send(new DescribeInstancesCommand({ Filters: [tagFilter(this.settings.id), { Name: 'instance-state-name', Values: LIVE_STATES }], NextToken: token })),
      );
      for (const r of page.Reservations ?? []) for (const i of r.Instances ?? []) if (isOurs(i.Tags, this.settings.id)) out.push(toTestbedInstance(region, this.settings.id, i));
      token = page.NextToken;
    } while (token);
    return out;
  }

  async #perRegion(instances: TestbedInstance[], doing: string, command: (ec2: EC2Client, ids: string[]) => Promise<unknown>): Promise<void> {
    const byRegion = new Map<string, string[]>();
    for (const i of instances) byRegion.set(i.region, [...(byRegion.get(i.region) ?? []), i.instanceId]);
    await Promise.all([...byRegion].map(([region, ids]) => this.#call(region, `${doing} ${ids.join(' ')}`, (c) => command(c, ids))));
  }

  /**
   * Polls the regions until every instance (or every one of `only`) is in `state`; for `running`
   * with `ready`, also until each has a public address and (unless the probe is off) accepts SSH.
   * `terminated` means gone from the live listing. Throws TROUPE_E_TESTBED_TIMEOUT after waitTimeout.
   */
  async #waitRegions(regions: readonly string[], state: InstanceState, ready: boolean, only?: Set<string>): Promise<TestbedInstance[]> {
    const deadline = Date.now() + this.settings.waitTimeoutMs;
    const results = await Promise.all(
      regions.map(async (region) => {
        let last = '';
        const sshOk = new Set<string>();
        for (;;) {
          const live = (await this.#listRegion(region)).filter((i) => !only || only.has(i.instanceId));
          let done: boolean;
          let line: string;
          if (state === 'terminated') {
            done = live.length === 0;
            line = `${region}: ${only ? only.size - live.length : 0} of ${only?.size ?? live.length} terminated`;
          } else {
            const inState = live.filter((i) => i.state === state);
            line = `${region}: ${inState.length} of ${live.length} ${state}`;
            done = inState.length === live.length;
            if (ready) {
              const addressed = inState.filter((i) => i.publicAddress !== undefined);
              line += `, ${addressed.length} with a public address`;
              done &&= addressed.length === live.length;
              if (this.#probe) {
                const probe = this.#probe;
                await Promise.all(addressed.filter((i) => !sshOk.has(i.instanceId)).map(async (i) => (await probe(i.publicAddress!, this.settings.sshPort)) && sshOk.add(i.instanceId)));
                line += `, ${sshOk.size} accepting SSH`;
                done &&= addressed.every((i) => sshOk.has(i.instanceId));
              }
            }
          }
          if (line !== last) this.#progress(region, (last = line));
          if (done) return live;
          if (Date.now() > deadline) throw new TestbedError(ErrorCodes.TESTBED_TIMEOUT, `${line} after waiting ${Math.round(this.settings.waitTimeoutMs / 1000)} s (waitTimeout in ${this.settings.file}); troupe testbed status shows where each instance is`);
          await new Promise((r) => setTimeout(r, this.settings.pollIntervalMs));
        }
      }),
    );
    return results.flat().sort(byNumber);
  }

  async #retryDependency(region: string, action: () => Promise<void>): Promise<void> {
    const deadline = Date.now() + this.settings.waitTimeoutMs;
    for (;;) {
      try {
        return await action();
      } catch (err) {
        const cause = (err as { cause?: unknown }).cause;
        if (awsCode(cause) !== 'DependencyViolation' || Date.now() > deadline) throw err;
        this.#progress(region, `${region}: the security group is still in use; trying again`);
        await new Promise((r) => setTimeout(r, this.settings.pollIntervalMs));
      }
    }
  }
}

export function toTestbedInstance(region: string, id: string, i: Instance): TestbedInstance {
  const name = tagValue(i.Tags, 'Name') ?? '';
  const expires = tagValue(i.Tags, EXPIRES_TAG);
  return {
    region,
    instanceId: i.InstanceId!,
    name,
    number: instanceNumber(id, name) ?? 0,
    type: String(i.InstanceType ?? ''),
    state: (i.State?.Name ?? 'pending') as InstanceState,
    publicAddress: i.PublicIpAddress ?? i.Ipv6Address ?? undefined,
    privateAddress: i.PrivateIpAddress ?? undefined,
    zone: i.Placement?.AvailabilityZone ?? undefined,
    market: i.InstanceLifecycle === 'spot' ? 'spot' : 'on-demand',
    launched: i.LaunchTime,
    expires: expires !== undefined && !Number.isNaN(Date.parse(expires)) ? new Date(expires) : undefined,
  };
}

/** "2 instances, 1 security group, 1 key pair" */
export function summary(res: Pick<RegionResources, 'instances' | 'securityGroups' | 'keyPairs'>): string {
  const n = (count: number, what: string) => `${count} ${what}${count === 1 ? '' : 's'}`;
  return `${n(res.instances.length, 'instance')}, ${n(res.securityGroups.length, 'security group')}, ${n(res.keyPairs.length, 'key pair')}`;
}

function byNumber(a: TestbedInstance, b: TestbedInstance): number {
  return a.number - b.number || a.region.localeCompare(b.region) || a.instanceId.localeCompare(b.instanceId);
}

function checkCount(count: number): number {
  if (!Number.isInteger(count) || count < 1 || count > MAX_INSTANCES) throw new TestbedError(ErrorCodes.TESTBED_INSTANCES, `--instances: expected a whole number from 1 to ${MAX_INSTANCES}, got ${count}`);
  return count;
}

function partly(failures: unknown[], what: string): unknown {
  const first = failures[0];
  if (failures.length === 1 && !(first instanceof TestbedError)) return first;
  const code = first instanceof TestbedError ? first.code : ErrorCodes.AWS_REQUEST;
  const messages = failures.map((f) => (f instanceof Error ? f.message : String(f)));
  return new TestbedError(code, `${messages.join('; ')} (${what} stopped there; troupe testbed status shows what exists, troupe testbed destroy removes it)`, { cause: first });
}

async function inPool<T>(items: readonly T[], width: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const errors: unknown[] = [];
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (next < items.length && errors.length === 0) {
        const item = items[next++]!;
        try {
          await work(item);
        } catch (err) {
          errors.push(err);
        }
      }
    }),
  );
  if (errors.length > 0) throw errors[0];
}
