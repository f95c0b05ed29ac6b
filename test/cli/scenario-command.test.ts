/**
 * `troupe scenario run` without a cluster: its help, and the result file it writes when the file is
 * not a scenario (nothing is dialled) or the manager cannot be reached.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { CliProcess, killAllCli } from '../fixtures/cli-process.js';
import { testPki } from '../fixtures/pki.js';

describe('troupe scenario run, before any run starts', function () {
  this.timeout(20_000);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-scenario-cmd-'));
  let closedPort = 0;

  before(async () => {
    const server = net.createServer().listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    closedPort = (server.address() as net.AddressInfo).port;
    await new Promise((resolve) => server.close(resolve));
  });
  after(async () => {
    await killAllCli();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('--help says what it does, the result file and the exit status', async () => {
    const { code, stdout } = await CliProcess.run(['scenario', 'run', '--help']);
    expect(code).to.equal(0);
    expect(stdout).to.include('troupe scenario run <file> [manager]');
    expect(stdout).to.include('echo.yaml → echo.result.json');
    expect(stdout).to.include('Exit status: 0 when every step passed, 1 otherwise');
    expect(stdout).to.include('--connect-timeout');
  });

  it('a file that is not a scenario: one line with the code, an error result, nothing dialled', async () => {
    const file = path.join(tmp, 'bad.yaml');
    fs.writeFileSync(file, 'groups: {}\nsteps: [ { pause: 1s } ]\n');
    const { code, stdout, stderr } = await CliProcess.run(['scenario', 'run', file, `127.0.0.1:${closedPort}`, '--certs', testPki().dir]);
    expect(code).to.equal(1);
    expect(stdout).to.equal('');
    const resultFile = path.join(tmp, 'bad.result.json');
    expect(stderr).to.equal(`troupe: TROUPE_E_SCENARIO_INVALID: bad.yaml: groups: expected a map of group names to groups (at least one), got an empty map (result: ${resultFile})`);
    const result = JSON.parse(fs.readFileSync(resultFile, 'utf8'));
    expect(result).to.include({ scenario: 'bad', ok: false, run: null });
    expect(result.error.code).to.equal('TROUPE_E_SCENARIO_INVALID');
  });

  it('TROUPE_LOG=debug adds the stack trace under the line', async () => {
    const file = path.join(tmp, 'debug.yaml');
    fs.writeFileSync(file, 'steps: 1\n');
    const { code, stderr } = await CliProcess.run(['scenario', 'run', file, `127.0.0.1:${closedPort}`, '--certs', testPki().dir], { env: { TROUPE_LOG: 'debug' } });
    expect(code).to.equal(1);
    const lines = stderr.split('\n');
    expect(lines[0]).to.match(/^troupe: TROUPE_E_SCENARIO_INVALID: debug\.yaml: 2 problems: /);
    expect(lines[1]).to.match(/^RussulaError: /);
    expect(lines.slice(2).some((l) => /^\s+at .*scenario-command/.test(l))).to.equal(true);
  });

  it('a manager that cannot be reached: TROUPE_E_CONNECTION, in the result too', async () => {
    const file = path.join(tmp, 'fine.yaml');
    fs.writeFileSync(file, 'groups:\n  g: { protocol: client, command: "true" }\nsteps:\n  - { group: g, until: done }\n');
    const { code, stderr } = await CliProcess.run(['scenario', 'run', file, `127.0.0.1:${closedPort}`, '--certs', testPki().dir, '--connect-timeout', '0.5']);
    expect(code).to.equal(1);
    expect(stderr.split('\n')).to.have.length(1);
    expect(stderr).to.match(/^troupe: TROUPE_E_CONNECTION: .*gave up after 0\.5 s \(result: .*fine\.result\.json\)$/);
    expect(JSON.parse(fs.readFileSync(path.join(tmp, 'fine.result.json'), 'utf8')).error.code).to.equal('TROUPE_E_CONNECTION');
  });
});
