/**
 * The msgpackr library, loaded with `require`: its CommonJS build is one file (dist/node.cjs), its
 * ES build five modules, and every command that connects loads it before its first frame (issue 17,
 * a one-shot `troupe run`: ≈6 ms of CPU less). The same code either way (node.cjs is the bundle of
 * node-index.js, native string extraction included). msgpackr keeps its extensions per instance:
 * everything in troupe that encodes or decodes frames takes it from here, so there is one.
 */
import { createRequire } from 'node:module';
import type * as Msgpackr from 'msgpackr';

const require = createRequire(import.meta.url);
const msgpackr = require('msgpackr') as typeof Msgpackr;

export const addExtension = msgpackr.addExtension;
export const Packr = msgpackr.Packr;
export type Packr = Msgpackr.Packr;
export const Unpackr = msgpackr.Unpackr;
export type Unpackr = Msgpackr.Unpackr;
