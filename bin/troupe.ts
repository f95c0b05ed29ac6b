#!/usr/bin/env node
/** The `troupe` command; see `troupe --help`. */
import { main } from '../src/cli/main.js';

// Exit explicitly: a stopped node must not linger on a handle someone forgot (stdout is synchronous
// for files and pipes on Linux, so nothing printed is lost).
process.exit(await main(process.argv.slice(2)));
