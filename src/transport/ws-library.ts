/**
 * The ws library, loaded with `require`. ws is CommonJS; imported as ESM, Node 20 goes through its
 * ESM wrapper (ws/wrapper.mjs) and translates each of its files on the way, about four times the
 * CPU of a plain require (≈50 ms against ≈15 ms measured on a loaded 2-core machine): a cost every
 * command that connects pays before it does anything (issue 17). The same module instances either
 * way (Node keeps one CommonJS cache), so `instanceof` and the types are ws's own.
 */
import { createRequire } from 'node:module';
import type * as Ws from 'ws';

const require = createRequire(import.meta.url);
const ws = require('ws') as typeof Ws;

export const WebSocket = ws.WebSocket;
export type WebSocket = Ws.WebSocket;
export const WebSocketServer = ws.WebSocketServer;
export type WebSocketServer = Ws.WebSocketServer;
