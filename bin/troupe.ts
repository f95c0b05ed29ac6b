#!/usr/bin/env node
/** The `troupe` command; see `troupe --help`. */
import { main } from '../src/cli/main.js';

const code = await main(process.argv.slice(2));
// Exit explicitly: a stopped node must not linger on a handle someone forgot. But first let the
// readers of our stdout and stderr take what is still queued: writes to a pipe are asynchronous,
// and process.exit drops what the pipe has not taken (`troupe run … | slow-reader` printed 64 KiB).
// A reader that went away fails the write, which ends the wait as well.
await Promise.all([process.stdout, process.stderr].map((stream) => (stream.writableLength === 0 ? undefined : new Promise((resolve) => stream.write('', resolve)))));
process.exit(code);
