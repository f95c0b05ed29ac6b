/**
 * The tags that make a resource part of a testbed. Every read, change and delete of the testbed
 * filters on `troupe:testbed=ID` (tagFilter), so that nothing else in the account is ever touched,
 * also when a name collides.
 */
import type { Filter, ResourceType, Tag, TagSpecification } from '@aws-sdk/client-ec2';

export const TESTBED_TAG = 'troupe:testbed';
/** The instant an instance's lifetime timer powers it off (ISO 8601). */
export const EXPIRES_TAG = 'troupe:expires';

/** The EC2 filter that selects the testbed's resources. */
export function tagFilter(id: string): Filter {
  return { Name: `tag:${TESTBED_TAG}`, Values: [id] };
}

export function testbedTags(id: string, name: string, extra: Record<string, string> = {}): Tag[] {
  return [{ Key: TESTBED_TAG, Value: id }, { Key: 'Name', Value: name }, ...Object.entries(extra).map(([Key, Value]) => ({ Key, Value }))];
}

export function tagSpecification(type: ResourceType, tags: Tag[]): TagSpecification {
  return { ResourceType: type, Tags: tags };
}

export function tagValue(tags: readonly Tag[] | undefined, key: string): string | undefined {
  return tags?.find((t) => t.Key === key)?.Value;
}

/** True when the tags carry the testbed's own tag (a second check after the server-side filter). */
export function isOurs(tags: readonly Tag[] | undefined, id: string): boolean {
  return tagValue(tags, TESTBED_TAG) === id;
}
