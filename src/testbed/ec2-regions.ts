/**
 * One EC2 client per region, all built the same way: the SDK's default credential chain
 * (environment, shared files, SSO, instance role; `profile` picks a profile of the shared files),
 * or credentials given explicitly by a program embedding troupe; an `endpoint` for moto or
 * LocalStack; the SDK's adaptive retry strategy, which retries throttling (RequestLimitExceeded,
 * Throttling) and transient faults with backoff and also slows the client down when the API
 * throttles. troupe never stores credentials.
 *
 * `preflight` answers, before anything is created, the two questions a user gets wrong most: are
 * there credentials at all, and does each region exist. An SDK error becomes a TestbedError whose
 * code says what kind of trouble it is (awsError) and whose message keeps AWS's own code.
 */
import { DescribeRegionsCommand, EC2Client, EC2ServiceException } from '@aws-sdk/client-ec2';
import { ErrorCodes, messageOf, TestbedError, type ErrorCode } from '../errors.js';

/** Attempts per request, the first included, under the adaptive retry strategy. */
export const DEFAULT_AWS_MAX_ATTEMPTS = 8;
/** Attempts of the region check, per region. */
const PREFLIGHT_MAX_ATTEMPTS = 2;

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface Ec2Access {
  endpoint?: string;
  profile?: string;
  /** Explicit credentials instead of the default chain (a program embedding troupe; the tests). */
  credentials?: AwsCredentials;
  maxAttempts?: number;
}

const CREDENTIAL_CODES = new Set(['AuthFailure', 'UnrecognizedClientException', 'InvalidClientTokenId', 'SignatureDoesNotMatch', 'ExpiredToken', 'RequestExpired', 'OptInRequired', 'UnauthorizedOperation']);
const REGION_NETWORK_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN']);

export class Ec2Regions {
  readonly #clients = new Map<string, EC2Client>();

  constructor(private readonly access: Ec2Access) {}

  client(region: string): EC2Client {
    let c = this.#clients.get(region);
    if (!c) {
      c = this.#make(region, this.access.maxAttempts ?? DEFAULT_AWS_MAX_ATTEMPTS);
      this.#clients.set(region, c);
    }
    return c;
  }

  #make(region: string, maxAttempts: number): EC2Client {
    return new EC2Client({
      region,
      ...(this.access.endpoint !== undefined ? { endpoint: this.access.endpoint } : {}),
      ...(this.access.profile !== undefined ? { profile: this.access.profile } : {}),
      ...(this.access.credentials !== undefined ? { credentials: this.access.credentials } : {}),
      maxAttempts,
      retryMode: 'adaptive',
    });
  }

  /**
   * Throws TROUPE_E_AWS_CREDENTIALS when no credentials can be found (or AWS refuses them), and
   * TROUPE_E_AWS_REGION for a region the API does not list. The region list comes from the first
   * region that answers; a region that does not answer at all is unknown when another one lists
   * it not, or when its endpoint has no address.
   */
  async preflight(regions: readonly string[]): Promise<void> {
    try {
      await this.client(regions[0]!).config.credentials();
    } catch (err) {
      throw new TestbedError(ErrorCodes.AWS_CREDENTIALS, `no AWS credentials found${this.access.profile ? ` for the profile ${this.access.profile}` : ''}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run aws configure / aws sso login (${firstLine(messageOf(err))})`, { cause: err });
    }
    let known: Set<string> | undefined;
    const failures = new Map<string, unknown>();
    for (const region of regions) {
      // Few attempts: a region that does not exist fails the same way every time.
      const probe = this.#make(region, PREFLIGHT_MAX_ATTEMPTS);
      try {
        const out = await probe.send(new DescribeRegionsCommand({ AllRegions: true }));
        known = new Set((out.Regions ?? []).map((r) => r.RegionName!).filter(Boolean));
        break;
      } catch (err) {
        const e = awsError(err, `listing the regions from ${region}`);
        if (e.code === ErrorCodes.AWS_CREDENTIALS) throw e;
        failures.set(region, err);
      } finally {
        probe.destroy();
      }
    }
    if (!known) {
      // No region answered: an unknown region has no address (ENOTFOUND); anything else is the
      // network or the endpoint, not the region.
      const [region, failed] = [...failures][0]!;
      if (!REGION_NETWORK_CODES.has(awsCode(failed) ?? '')) {
        const where = this.access.endpoint !== undefined ? `the EC2 endpoint ${this.access.endpoint}` : `EC2 in ${region}`;
        throw new TestbedError(ErrorCodes.AWS_REQUEST, `cannot reach ${where}: ${firstLine(messageOf(failed))}`, { cause: failed });
      }
    }
    for (const region of regions) {
      const failed = failures.get(region);
      if (known ? !known.has(region) : failed !== undefined) {
        const why = known ? 'the EC2 API does not list it' : `it does not answer (${firstLine(messageOf(failed))})`;
        throw new TestbedError(ErrorCodes.AWS_REGION, `unknown region ${region}: ${why}; the regions are listed by aws ec2 describe-regions --all-regions`, { cause: failed });
      }
    }
  }

  destroy(): void {
    for (const c of this.#clients.values()) c.destroy();
    this.#clients.clear();
  }
}

/** The code AWS gave an error (`InvalidGroup.NotFound`), or the network error's code. */
export function awsCode(err: unknown): string | undefined {
  if (err instanceof EC2ServiceException) return err.name;
  const e = err as { name?: string; code?: string; Code?: string } | undefined;
  return e?.Code ?? e?.code ?? e?.name;
}

/** An SDK error as a TestbedError that says what was being done; AWS's own code stays in the message. */
export function awsError(err: unknown, doing: string, fallback: ErrorCode = ErrorCodes.AWS_REQUEST): TestbedError {
  if (err instanceof TestbedError) return err;
  const code = awsCode(err);
  const name = (err as { name?: string } | undefined)?.name;
  let troupeCode = fallback;
  if ((code && CREDENTIAL_CODES.has(code)) || name === 'CredentialsProviderError') troupeCode = ErrorCodes.AWS_CREDENTIALS;
  else if (code && REGION_NETWORK_CODES.has(code)) troupeCode = ErrorCodes.AWS_REGION;
  return new TestbedError(troupeCode, `${doing}: ${code && code !== 'Error' ? `${code}: ` : ''}${firstLine(messageOf(err))}`, { cause: err });
}

function firstLine(text: string): string {
  return text.split('\n')[0]!.trim();
}
