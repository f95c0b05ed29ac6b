/**
 * `troupe --help` without yargs: the help texts yargs prints, rendered beforehand (help-texts.ts)
 * at the widths most terminals have, printed by bin/troupe.ts before it loads the command line at
 * all (yargs alone takes ~90 ms to load and ~40 ms to lay out the text; issue 17).
 *
 * Guarantee: `cachedHelp` answers only when what it prints is, byte for byte, what yargs prints for
 * that command line (the same stream, text and exit code); whenever it cannot be sure it answers
 * undefined and yargs runs as always. It answers for `troupe`, `troupe --help` (`-h`, `help`) and
 * `troupe CMD --help` (`-h`) for the commands in help-texts.ts, nothing else (a typo, an extra
 * option: yargs), and only when
 *   - the width yargs would wrap to (main.ts: `.wrap(Math.min(110, process.stdout.columns || 110))`)
 *     is one rendered: 110 (not a terminal, or one that wide or wider) or 80;
 *   - yargs would print English: its locale (LC_ALL, LC_MESSAGES, LANG, LANGUAGE, as yargs reads
 *     them; en_US when none) is C, POSIX or en[_*], and YARGS_DISABLE_WRAP is not set;
 *   - for `troupe CMD --help`: no TROUPE_* variable of CMD's is set (env-options.ts adds those
 *     to the command line).
 * test/cli/help-cache.test.ts renders each text with yargs and compares, so they cannot drift.
 */
import { ENV_OPTIONS, envName } from './env-options.js';
import { HELP_TEXTS, NO_COMMAND_MESSAGE } from './help-texts.js';

/** main.ts's `.wrap()`: the terminal's width, at most 110; 110 when stdout is not a terminal. */
const MAX_WIDTH = 110;

export interface CachedHelp {
  stream: 'stdout' | 'stderr';
  /** Without the final newline (yargs ends it with one). */
  text: string;
  code: number;
}

/** What yargs would print for `troupe ARGV`, when that is known here; undefined when not. */
export function cachedHelp(argv: readonly string[], env: NodeJS.ProcessEnv, columns: number | undefined): CachedHelp | undefined {
  const texts = HELP_TEXTS[Math.min(MAX_WIDTH, columns || MAX_WIDTH)];
  if (texts === undefined || !english(env) || env.YARGS_DISABLE_WRAP) return undefined;
  if (argv.length === 0) return { stream: 'stderr', text: `${texts['']}\n\n${NO_COMMAND_MESSAGE}`, code: 2 };
  if (argv.length === 1 && (argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help')) return { stream: 'stdout', text: texts['']!, code: 0 };
  const [command, flag] = argv;
  if (argv.length !== 2 || (flag !== '--help' && flag !== '-h') || command === '' || !Object.hasOwn(texts, command!)) return undefined;
  if ((ENV_OPTIONS[command!] ?? []).some((entry) => env[envName(entry.split('=').pop()!)])) return undefined;
  return { stream: 'stdout', text: texts[command!]!, code: 0 };
}

/** yargs' locale (yargs-factory.js, guessLocale) is one whose messages are the English ones. */
function english(env: NodeJS.ProcessEnv): boolean {
  const locale = (env.LC_ALL || env.LC_MESSAGES || env.LANG || env.LANGUAGE || 'en_US').replace(/[.:].*/, '');
  return locale === 'C' || locale === 'POSIX' || locale === 'en' || locale.startsWith('en_');
}
