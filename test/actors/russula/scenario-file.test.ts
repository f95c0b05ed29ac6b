import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { pick, type GroupPlan } from '../../../actors/russula/coordinator.js';
import { parseSelector } from '../../../actors/tasks/selector.js';
import { ActorRef } from '../../../protocols/actor-ref.js';
import type { ListingEntry } from '../../../protocols/cluster-messages.js';
import { DEFAULT_STEP_TIMEOUT_MS, DEFAULT_WAIT_FOR_WORKERS_MS, parseDuration, parseScenario } from '../../../actors/russula/scenario-file.js';
import { resultFileFor } from '../../../actors/russula/scenario-runner.js';
import { RussulaError } from '../../../src/errors.js';

const EXAMPLES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..', 'examples');

function problem(text: string): RussulaError {
  try {
    parseScenario(text, 'x.yaml');
  } catch (err) {
    expect(err).to.be.instanceOf(RussulaError);
    return err as RussulaError;
  }
  return expect.fail('expected the scenario to be refused');
}

const MINIMAL = 'groups:\n  g: { protocol: client, command: "true" }\nsteps:\n  - { group: g, until: done }\n';

describe('scenario files', () => {
  it('parses the example with every default filled in', () => {
    const s = parseScenario(fs.readFileSync(path.join(EXAMPLES, 'echo.yaml'), 'utf8'));
    expect(s.name).to.equal('echo');
    expect(s.waitForWorkersMs).to.equal(DEFAULT_WAIT_FOR_WORKERS_MS);
    expect(s.reconnectGraceMs).to.equal(1000);
    expect(s.groups.map((g) => [g.name, g.selector, g.count, g.step.protocol, g.step.killGraceMs])).to.deep.equal([
      ['servers', 'tag=server', 2, 'server', 2000],
      ['clients', 'tag=client', 3, 'client', 2000],
    ]);
    expect(s.groups[0]!.step.ready).to.deep.equal({ stdout: 'listening on (?<host>[0-9.]+):(?<port>\\d+)' });
    expect(s.groups[1]!.step.env).to.deep.equal({ SERVERS: '${servers.addresses}' });
    expect(s.steps).to.deep.equal([
      { kind: 'until', group: 'servers', until: 'ready', timeoutMs: 10_000, text: 'servers ready' },
      { kind: 'until', group: 'clients', until: 'done', timeoutMs: 20_000, text: 'clients until done' },
      { kind: 'pause', ms: 200, text: 'pause 200 ms' },
      { kind: 'until', group: 'servers', until: 'done', timeoutMs: DEFAULT_STEP_TIMEOUT_MS, text: 'servers until done' },
    ]);
    expect(parseScenario(fs.readFileSync(path.join(EXAMPLES, 'echo-fails.yaml'), 'utf8')).name).to.equal('echo-fails');
  });

  it('defaults: name "scenario", count 1, any worker, until ready, no env', () => {
    const s = parseScenario(MINIMAL);
    expect(s.name).to.equal('scenario');
    expect(s.groups[0]).to.deep.equal({ name: 'g', selector: '', count: 1, step: { protocol: 'client', command: 'true', env: {}, killGraceMs: 2000 } });
    expect(parseScenario(MINIMAL.replace('until: done', 'until: ready')).steps[0]).to.include({ until: 'ready', text: 'g ready' });
  });

  it('YAML that does not parse: TROUPE_E_SCENARIO_SYNTAX with the line and column', () => {
    const err = problem('groups:\n  g: [\n');
    expect(err.code).to.equal('TROUPE_E_SCENARIO_SYNTAX');
    expect(err.message).to.match(/^x\.yaml: not valid YAML at line \d+, column \d+: /);
    expect(problem('a: 1\na: 2\n').code).to.equal('TROUPE_E_SCENARIO_SYNTAX');
  });

  it('every problem at once, each with its place', () => {
    const err = problem(
      'name: 5\nextra: 1\ngroups:\n  "9bad": { protocol: client, command: x, env: { "1X": y } }\n  s: { protocol: server, command: x, count: 0, select: "color=red", ready: { stdout: "(", port: 80 }, killGrace: soon }\n' +
        '  c: { protocol: client, command: x, env: { A: "${nope.addresses}", B: "${s.everything}" } }\nsteps:\n  - { group: c, until: running, timeout: 0 }\n  - { group: zz }\n  - { pause: forever }\n  - 7\n',
    );
    expect(err.code).to.equal('TROUPE_E_SCENARIO_INVALID');
    let selectorProblem = '';
    try {
      parseSelector('color=red');
    } catch (e) {
      selectorProblem = (e as Error).message;
    }
    const expected = [
      'extra: unknown key (expected name, groups, steps, waitForWorkers, reconnectGrace, params, bench)',
      'name: expected a string of up to 200 characters, got number 5',
      'groups.9bad: a group name is a letter then up to 31 letters, digits, "_" or "-"',
      'groups.9bad.env: "1X" is not a variable name',
      `groups.s.select: ${selectorProblem}`,
      'groups.s.count: expected a whole number from 1 to 1000, got 0',
      'groups.s.ready: give exactly one of stdout (a regular expression) or port (a TCP port)',
      'groups.s.ready.stdout: not a regular expression: Invalid regular expression: /(/: Unterminated group',
      'groups.s.killGrace: expected a duration such as 500ms, 10s or 2m (up to 24 h), got "soon"',
      'groups.c.env.A: ${nope.addresses} names no group (groups: 9bad, s, c)',
      'groups.c.env.B: ${s.everything} is not a value; use ${GROUP.addresses}, ${GROUP.hosts} or ${GROUP.ports}',
      'steps[0].timeout: expected a duration such as 500ms, 10s or 2m (above 0, up to 24 h), got 0',
      'steps[1].group: expected one of the groups (9bad, s, c), got "zz"',
      'steps[2].pause: expected a duration such as 500ms, 10s or 2m (up to 24 h), got "forever"',
      'steps[3]: expected { group, until, timeout } or { pause }, got number 7',
    ];
    expect(selectorProblem).to.match(/color/);
    expect(err.message).to.equal(`x.yaml: ${expected.length} problems: ${expected.join('; ')}`);
  });

  it('a group that takes addresses from one without a ready check is told why', () => {
    const err = problem('groups:\n  s: { protocol: server, command: x }\n  c: { protocol: client, command: x, env: { S: "${s.addresses}" } }\nsteps:\n  - { group: c, until: done }\n');
    expect(err.message).to.equal('x.yaml: groups.c.env.S: ${s.addresses}: group s has no ready check, so it reports no address (give it ready.port or ready.stdout with (?<port>…))');
  });

  it('until must be ready or a state of the group\'s protocol', () => {
    expect(problem(MINIMAL.replace('until: done', 'until: stopping')).message).to.equal('x.yaml: steps[0].until: expected "ready" or a state of protocol client (ready, running, done), got "stopping"');
  });

  it('durations: ms, s, m, or a number of seconds', () => {
    expect([parseDuration('500ms'), parseDuration('1.5s'), parseDuration('2m'), parseDuration(3), parseDuration('3'), parseDuration('-1s'), parseDuration('1h')]).to.deep.equal([500, 1500, 120_000, 3000, 3000, undefined, undefined]);
  });

  it('the result file sits beside the scenario', () => {
    expect(resultFileFor('/a/echo.yaml')).to.equal('/a/echo.result.json');
    expect(resultFileFor('b.YML')).to.equal('b.result.json');
  });
});

describe('picking workers for groups', () => {
  const entry = (name: string, tags: string[]): ListingEntry => ({ ref: new ActorRef(name, 'russula'), meta: { name, tags, platform: 'linux', arch: 'x64' } }) as ListingEntry;
  const plan = (name: string, selector: string, count: number): GroupPlan => ({ name, selector, count, step: { protocol: 'client', command: 'true', env: {}, killGraceMs: 0 } });
  const workers = [entry('w-10', ['a']), entry('w-2', ['a', 'b']), entry('w-1', ['b'])];

  it('in file order, by natural name order, never one worker in two groups', () => {
    const picked = pick([plan('first', 'tag=a', 1), plan('second', '', 2)], workers);
    if ('error' in picked) return expect.fail(picked.error.message);
    expect(picked.groups.map((g) => [g.plan.name, g.entries.map((e) => e.ref.node)])).to.deep.equal([
      ['first', ['w-2']],
      ['second', ['w-1', 'w-10']],
    ]);
  });

  it('too few: TROUPE_E_RUSSULA_TOO_FEW_WORKERS naming each short group', () => {
    const picked = pick([plan('x', 'tag=b', 2), plan('y', 'tag=b', 1)], workers);
    if (!('error' in picked)) return expect.fail('expected an error');
    expect(picked.error.code).to.equal('TROUPE_E_RUSSULA_TOO_FEW_WORKERS');
    expect(picked.error.message).to.equal(
      'too few workers: group y needs 1 worker matching "tag=b", 0 are free (matching: w-1, w-2; connected Russula workers: w-1, w-2, w-10)',
    );
  });
});
