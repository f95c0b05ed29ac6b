/**
 * The help cache (src/cli/help-cache.ts) prints exactly what yargs prints: each of its texts,
 * for each command line it answers and each terminal width, against yargs' own rendering in this
 * process (test/fixtures/yargs-help.ts), so a change to an option or a description fails here
 * until help-texts.ts is written again (test/fixtures/write-help-texts.ts). And where it cannot
 * know what yargs would print (another width, locale or command line) it leaves it to yargs.
 */
import { expect } from 'chai';
import { cachedHelp } from '../../src/cli/help-cache.js';
import { HELP_TEXTS } from '../../src/cli/help-texts.js';
import { yargsPrints, type Printed } from '../fixtures/yargs-help.js';

const REGENERATE = 'help-texts.ts differs from what yargs prints: npx tsc -p . && node dist/test/fixtures/write-help-texts.js && npx tsc -p .';

/** What the cache prints, as yargsPrints reports it; undefined when it leaves the command line to yargs. */
function cachePrints(argv: string[], columns: number | undefined, env: NodeJS.ProcessEnv = {}): Printed | undefined {
  const help = cachedHelp(argv, env, columns);
  if (!help) return undefined;
  const text = `${help.text}\n`;
  return { stdout: help.stream === 'stdout' ? text : '', stderr: help.stream === 'stderr' ? text : '', code: help.code };
}

describe('the help cache: yargs\' help without yargs', function () {
  this.timeout(60_000);

  // Every command whose help is kept (the same at every width), each way of asking for it.
  const commands = Object.keys(HELP_TEXTS[110] ?? {}).filter((c) => c !== '');
  const forms: string[][] = [[], ['--help'], ['-h'], ['help'], ...commands.flatMap((c) => [[c, '--help'], [c, '-h']])];

  it('keeps the top level\'s help and run, manager, worker and status\'s, at the widths 80 and 110', () => {
    expect(Object.keys(HELP_TEXTS)).to.deep.equal(['80', '110']);
    for (const texts of Object.values(HELP_TEXTS)) expect(Object.keys(texts)).to.deep.equal(['', 'run', 'manager', 'worker', 'status']);
  });
  // Not a terminal (yargs wraps at 110) and a terminal of 80 columns: every form.
  for (const columns of [undefined, 80]) {
    it(`prints what yargs prints for \`troupe\`, \`--help\`, \`-h\`, \`help\`, \`CMD --help\`, \`CMD -h\`; columns ${columns ?? 'none (not a terminal)'}`, async () => {
      for (const argv of forms) {
        const cached = cachePrints(argv, columns);
        expect(cached, `troupe ${argv.join(' ')}`).to.not.equal(undefined);
        expect(cached, `troupe ${argv.join(' ')}: ${REGENERATE}`).to.deep.equal(await yargsPrints(argv, columns));
      }
    });
  }

  it('prints what yargs prints on a terminal 110 columns wide, or wider (yargs wraps at 110)', async () => {
    for (const columns of [110, 200]) {
      for (const argv of [[], ['--help'], ['run', '--help']]) {
        const cached = cachePrints(argv, columns);
        expect(cached, `troupe ${argv.join(' ')}`).to.not.equal(undefined);
        expect(cached, `troupe ${argv.join(' ')}, ${columns} columns: ${REGENERATE}`).to.deep.equal(await yargsPrints(argv, columns));
      }
    }
  });

  it('prints the same in the English locales yargs knows (C, POSIX, en_GB…), as yargs does', async () => {
    for (const env of [{ LC_ALL: 'C.UTF-8' }, { LANG: 'POSIX' }, { LANG: 'en_GB.UTF-8' }, { LC_MESSAGES: 'en', LANG: 'de_DE' }, { LANGUAGE: 'en_US:en' }]) {
      for (const argv of [['--help'], ['status', '-h']]) {
        const cached = cachePrints(argv, 80, env);
        expect(cached, JSON.stringify(env)).to.not.equal(undefined);
        expect(cached, JSON.stringify(env)).to.deep.equal(await yargsPrints(argv, 80, env));
      }
    }
  });

  it('leaves to yargs what it cannot know: another width, locale, YARGS_DISABLE_WRAP, a command\'s TROUPE_* setting, any other command line', async () => {
    // Each of these, yargs prints otherwise than the cache would (or the cache has no text for it).
    const german = await yargsPrints(['--help'], 80, { LANG: 'de_DE.UTF-8' });
    expect(german.stdout).to.contain('Kommandos:');
    expect(cachePrints(['--help'], 80, { LANG: 'de_DE.UTF-8' })).to.equal(undefined);
    expect(cachePrints(['--help'], 80, { LC_ALL: 'fr_FR', LANG: 'en_US' })).to.equal(undefined);
    expect(cachePrints(['--help'], 79)).to.equal(undefined);
    expect(cachePrints(['--help'], 100)).to.equal(undefined);
    expect(cachePrints(['--help'], 110, { YARGS_DISABLE_WRAP: '1' })).to.equal(undefined);
    expect(cachePrints(['run', '--help'], 110, { TROUPE_CERTS: '/etc/troupe' })).to.equal(undefined);
    expect(cachePrints(['status', '--help'], 110, { TROUPE_JOIN: '10.0.0.5' })).to.equal(undefined);
    for (const argv of [['--hel'], ['--help', '--bogus'], ['-h', 'run'], ['help', 'run'], ['run'], ['run', '--help', 'x'], ['logs', '--help'], ['', '--help'], ['__proto__', '--help'], ['--version']]) {
      expect(cachePrints(argv, 110), `troupe ${argv.join(' ')}`).to.equal(undefined);
    }
    // A typo is yargs' usage error, as before.
    const typo = await yargsPrints(['--hel'], 110);
    expect(typo.code).to.equal(2);
    expect(typo.stderr).to.match(/\n\nUnknown argument: hel\n$/);
  });
});
