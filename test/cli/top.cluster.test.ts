/**
 * `troupe top` in a real pseudo-terminal (a tmux pane of its own server), against a real manager and
 * two real workers: the screen shows the joined workers and a running task, a cancel from top ends
 * that task, the screen follows the terminal's size, NO_COLOR means no escape sequences at all, and
 * `q` exits 0 with the terminal as it was (alternate screen left, cursor shown, the shell's lines
 * back). The test waits by reading the pane (tmux capture-pane), never by sleeping.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { addCertificate } from '../../certs/index.js';
import { BIN, killAllCli } from '../fixtures/cli-process.js';
import { testPki } from '../fixtures/pki.js';
import { TaskCluster } from '../fixtures/task-cluster.js';

const COLUMNS = 120;
const ROWS = 32;

describe('troupe top in a terminal', function () {
  this.timeout(60_000);
  let cluster: TaskCluster;
  let dir: string;
  let certs: string;
  const socket = `troupe-top-${process.pid}`;
  const tmux = (...args: string[]) => execFileSync('tmux', ['-L', socket, '-f', '/dev/null', ...args], { encoding: 'utf8' });
  const screen = (escapes = false) => tmux('capture-pane', '-p', ...(escapes ? ['-e'] : []), '-t', 'top');
  const paneFlags = () => tmux('display-message', '-p', '-t', 'top', '#{alternate_on} #{cursor_flag}').trim();

  /** Reads the pane until `match` holds (the screen is the event we wait for). */
  async function until(what: string, match: (text: string) => boolean, withinMs = 20_000): Promise<string> {
    const end = Date.now() + withinMs;
    for (;;) {
      const text = screen();
      if (match(text)) return text;
      if (Date.now() > end) throw new Error(`the screen did not show ${what} within ${withinMs} ms; it shows:\n${text}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-top-'));
    // top's own client certificate: a node name is one session, and the fixture's client is client-1.
    certs = path.join(dir, 'certs');
    fs.cpSync(testPki().dir, certs, { recursive: true });
    for (const file of ['client-1.crt', 'client-1.key']) fs.rmSync(path.join(certs, file));
    addCertificate({ out: certs, name: 'client-2', role: 'client' });
    cluster = await TaskCluster.start([
      { name: 'worker-1', slots: 2, tags: ['gpu'] },
      { name: 'worker-2', slots: 1 },
    ]);
  });

  after(async () => {
    try {
      tmux('kill-server');
    } catch {
      // Not started, or gone already.
    }
    await killAllCli();
    await cluster?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('shows the workers and a running task, cancels it after a confirmation, follows the size, and q restores the terminal', async () => {
    const [task] = await cluster.tasks.submit({ command: 'sleep 60', selector: 'name=worker-1' });
    await cluster.update(task!.id, (t) => t.status === 'running');
    const script = path.join(dir, 'top.sh');
    fs.writeFileSync(
      script,
      [
        'echo BEFORE-TOP',
        `TROUPE_CERTS='${certs}' NO_COLOR=1 TROUPE_LOG=warn '${process.execPath}' '${BIN}' top 127.0.0.1:${cluster.port}`,
        'echo "EXIT=$?"',
        'exec sleep 600',
        '',
      ].join('\n'),
    );
    tmux('new-session', '-d', '-s', 'top', '-x', String(COLUMNS), '-y', String(ROWS), `bash --norc --noprofile '${script}'`);

    const shown = await until('both workers and the running task', (s) => /^worker-1 .* 1\/2 .* gpu\s*$/m.test(s) && /^worker-2 .* 0\/1 /m.test(s) && s.includes(`> ${task!.id}`) && /sleep 60/.test(s));
    expect(paneFlags()).to.equal('1 0');
    const lines = shown.split('\n').slice(0, ROWS);
    expect(lines[0]).to.match(new RegExp(`^troupe top: manager "manager" at 127\\.0\\.0\\.1:${cluster.port} `));
    expect(lines[ROWS - 1]).to.match(/^q quit {2}s sort/);
    expect(Math.max(...lines.map((l) => l.length))).to.be.at.most(COLUMNS);
    expect(shown).to.match(/^RUNNING 1$/m);
    // NO_COLOR: not one escape sequence on the screen.
    expect(screen(true)).to.not.include('\u001b[');

    tmux('send-keys', '-t', 'top', 'c');
    await until('the confirmation', (s) => s.includes(`cancel ${task!.id}? y: yes`));
    expect((await cluster.tasks.ask('isFinished', task!.id)).finished).to.equal(false);
    tmux('send-keys', '-t', 'top', 'y');
    const ended = await cluster.update(task!.id, (t) => t.status === 'cancelled');
    expect(ended.status).to.equal('cancelled');
    await until('the cancel told and the task gone', (s) => s.includes(`cancelled ${task!.id}`) && /^RUNNING 0$/m.test(s));

    tmux('resize-window', '-t', 'top', '-x', '90', '-y', '20');
    // The footer (still telling of the cancel) on the new last row.
    const small = await until('the screen redrawn for 90x20', (s) => (s.split('\n')[19] ?? '').startsWith(`cancelled ${task!.id}`));
    expect(Math.max(...small.split('\n').map((l) => l.length))).to.be.at.most(90);

    tmux('send-keys', '-t', 'top', 'q');
    const after = await until('top exited', (s) => /^EXIT=\d+$/m.test(s));
    expect(after).to.match(/^EXIT=0$/m);
    expect(after.split('\n')[0]).to.equal('BEFORE-TOP');
    expect(paneFlags()).to.equal('0 1');
  });
});
