/**
 * `troupe run`'s quick parser (run-line.ts) against yargs with the same definitions: every line
 * it takes means to it what it means to yargs, and it leaves every other form to yargs.
 */
import { expect } from 'chai';
import yargs from 'yargs';
import { quickRunArgs, runArgsOf, runBuilder, type RunArgs } from '../../src/cli/run-line.js';

const KEYS = ['manager', 'words', 'certs', 'cert', 'key', 'ca', 'join', 'connect-timeout', 'log-file', 'name', 'on', 'all', 'timeout', 'wait', 'verbose', 'reconnect-grace'] as const;

function picked(args: RunArgs): Partial<RunArgs> {
  return Object.fromEntries(KEYS.filter((k) => args[k] !== undefined).map((k) => [k, args[k]]));
}

/** The run's arguments as main.ts's yargs definition of `run` reads the line. */
async function viaYargs(line: string[]): Promise<Partial<RunArgs>> {
  let got: RunArgs | undefined;
  await yargs(line)
    .command('run [manager] [command..]', 'run', (y) => runBuilder(y), (args) => void (got = runArgsOf(args)))
    .strict()
    .exitProcess(false)
    .fail((message, err) => {
      throw err ?? new Error(message);
    })
    .parseAsync();
  return picked(got!);
}

describe('troupe run without yargs (the quick parser)', () => {
  const taken = [
    ['run', 'h:1', '--', 'true'],
    ['run', 'h:1', '--certs', '/c', '--name', 'client-2', '--on', 'tag=gpu', '--all', '--timeout', '1.5', '--wait', '2', '-v', '--reconnect-grace', '3', '--connect-timeout', '4', '--log-file', '/l', '--', 'echo', '1.50', '007', '1e3', '0x10', '--x', '-5'],
    ['run', '--certs=/c', '--join=h:2', '--wait=10', '--', 'a', 'b'],
    ['run', '--cert', 'a.crt', '--key', 'a.key', '--ca', 'ca.crt', 'h', '--verbose', '--', 'uname -a'],
    ['run', 'h', '--'],
  ];
  for (const line of taken) {
    it(`reads ${JSON.stringify(line.join(' '))} as yargs does`, async () => {
      const quick = quickRunArgs(line);
      expect(quick, 'taken').to.not.equal(undefined);
      expect(picked(quick!)).to.deep.equal(await viaYargs(line));
    });
  }

  it('the command after -- is taken word for word by both, numbers and all (yargs read `echo 1.50` as `echo 1.5`)', async () => {
    const line = ['run', 'h', '--', 'echo', '1.50', '007', '1e3', '0x10', '-5'];
    expect(quickRunArgs(line)!.words).to.deep.equal(['echo', '1.50', '007', '1e3', '0x10', '-5']);
    expect((await viaYargs(line)).words).to.deep.equal(['echo', '1.50', '007', '1e3', '0x10', '-5']);
    // Words before -- (no -- at all) are yargs' to read, as typed too.
    expect((await viaYargs(['run', 'h', 'echo', '1.50'])).words).to.deep.equal(['echo', '1.50']);
  });

  it('leaves every other form to yargs', () => {
    const left = [
      ['status', 'h'],
      ['run', 'h', 'echo', 'hi'],
      ['run', 'h', 'echo', '--', 'hi'],
      ['run', 'h', '--help', '--', 'x'],
      ['run', 'h', '-h', '--', 'x'],
      ['run', 'h', '--no-all', '--', 'x'],
      ['run', 'h', '--all=false', '--', 'x'],
      ['run', 'h', '--all', '--all', '--', 'x'],
      ['run', 'h', '--connectTimeout', '5', '--', 'x'],
      ['run', 'h', '--on', '-x', '--', 'x'],
      ['run', 'h', '--on=', '--', 'x'],
      ['run', 'h', '--timeout', '1e3', '--', 'x'],
      ['run', 'h', '--timeout', '-1', '--', 'x'],
      ['run', 'h', '--timeout', '--', 'x'],
      ['run', 'h', '-vv', '--', 'x'],
      ['run', 'h', '--bogus', '--', 'x'],
      ['run', 'h', '--verbose', 'yes', '--', 'x'],
    ];
    for (const line of left) expect(quickRunArgs(line), line.join(' ')).to.equal(undefined);
  });
});
