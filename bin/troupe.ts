#!/usr/bin/env node
/** The `troupe` command; see `troupe --help`. */
import { main } from '../src/cli/main.js';

const status = await main(process.argv.slice(2));
// stdout and stderr may be sockets (a parent process's pipes are socket pairs), written
// asynchronously: what is still queued is written before we exit (`status --json` of a long
// history is megabytes). An empty write calls back once everything before it has been written.
await Promise.all(
  [process.stdout, process.stderr].map((stream) => new Promise<void>((resolve) => (stream.writableLength === 0 || stream.destroyed ? resolve() : stream.write('', () => resolve())))),
);
// Exit explicitly: a stopped node must not linger on a handle someone forgot.
process.exit(status);
