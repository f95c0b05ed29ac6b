#!/usr/bin/env node
/**
 * The `troupe` command; see `troupe --help`. The help of the usual forms (`troupe --help`, `troupe`,
 * `troupe run --help`…) is printed from help-cache.ts when it has yargs' text for this terminal,
 * before anything else is loaded; everything else goes to main.ts (and yargs).
 */
import { cachedHelp } from '../src/cli/help-cache.js';

const argv = process.argv.slice(2);
const help = cachedHelp(argv, process.env, process.stdout.columns);
let code: number;
if (help) {
  (help.stream === 'stdout' ? process.stdout : process.stderr).write(`${help.text}\n`);
  code = help.code;
} else {
  const { main } = await import('../src/cli/main.js');
  code = await main(argv);
}
// Exit explicitly: a stopped node must not linger on a handle someone forgot. But first let the
// readers of our stdout and stderr take what is still queued: writes to a pipe are asynchronous,
// and process.exit drops what the pipe has not taken (`troupe run … | slow-reader` printed 64 KiB).
// A reader that went away fails the write, which ends the wait as well.
await Promise.all([process.stdout, process.stderr].map((stream) => (stream.writableLength === 0 ? undefined : new Promise((resolve) => stream.write('', resolve)))));
process.exit(code);
