/**
 * The application messages the transport benchmark sends between its two processes. Both nodes
 * declare them, so every remote message is checked by the catalog exactly as in production.
 */
import { Type } from '@sinclair/typebox';
import { TActorRef } from '../protocols/actor-ref.js';
import { defineMessage, type MessageSpec } from '../protocols/message-catalog.js';

export const Ping = defineMessage('ping', { n: Type.Integer(), replyTo: TActorRef() });
export const Pong = defineMessage('pong', { n: Type.Integer() });
export const Tick = defineMessage('tick', { i: Type.Integer() });

export const BENCH_MESSAGES: readonly MessageSpec[] = [Ping, Pong, Tick] as unknown as MessageSpec[];
