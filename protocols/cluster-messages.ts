/**
 * The messages the cluster itself delivers to actors: termination of a watched actor, receptionist
 * listings, and membership events.
 */
import { Type } from './deferred-schema.js';
import { MAX_NODE_NAME_LENGTH, TActorRef } from './actor-ref.js';
import { defineMessage, type MessageOf } from './message-catalog.js';
import { ROLES } from './roles.js';
import { MEMBER_STATUSES, Meta, TERMINATION_REASONS } from './wire.js';


export const Terminated = defineMessage('terminated', {
  ref: TActorRef(),
  reason: Type.Union(TERMINATION_REASONS.map((r) => Type.Literal(r))),
});

export const Listing = defineMessage('listing', {
  key: Type.String({ maxLength: 128 }),
  entries: Type.Array(Type.Object({ ref: TActorRef(), meta: Meta })),
});

export const MemberEvent = defineMessage('member', {
  node: Type.String({ maxLength: MAX_NODE_NAME_LENGTH }),
  role: Type.Union(ROLES.map((r) => Type.Literal(r))),
  incarnation: Type.String({ maxLength: 64 }),
  status: Type.Union(MEMBER_STATUSES.map((s) => Type.Literal(s))),
  meta: Meta,
});

export type Terminated = MessageOf<typeof Terminated>;
export type Listing = MessageOf<typeof Listing>;
export type MemberEvent = MessageOf<typeof MemberEvent>;
export type ListingEntry = Listing['entries'][number];

export const CLUSTER_MESSAGES = [Terminated, Listing, MemberEvent];
