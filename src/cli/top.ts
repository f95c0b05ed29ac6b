/**
 * `troupe top [HOST:PORT]`: a live full-screen view of a cluster, as htop or k9s give. It watches
 * the manager's LiveView (actors/tasks/live-view.ts), which pushes a whole view at most once a
 * second, and follows the membership through its own node; nothing is polled. The screen is drawn
 * at most every MIN_FRAME_MS (a key is answered at once), only the lines that changed.
 *
 * The terminal: the alternate screen, cursor hidden, keys read raw; on every way out (q, Ctrl-C,
 * SIGTERM, SIGHUP, an error, the process exiting) the cursor is shown again and the alternate
 * screen left, so the shell gets its screen back as it was. Colours follow NO_COLOR.
 *
 * Terminal handling is our own (~100 lines) rather than a library's: blessed and neo-blessed are
 * unmaintained; terminal-kit is maintained but large for what is a list of lines redrawn a few
 * times a second; ink needs React and a layout engine. Node's readline gives us the keys.
 */
import readline from 'node:readline';
import { pino } from 'pino';
import { LIVE_VIEW_NAME } from '../../actors/tasks/live-view.js';
import { ANY, parseSelector } from '../../actors/tasks/selector.js';
import type { Identity } from '../../certs/index.js';
import { ActorRef } from '../../protocols/actor-ref.js';
import type { ClusterView } from '../../protocols/live-view.js';
import { messageOf, settingError, TroupeError } from '../errors.js';
import { createLogger } from '../log.js';
import { connectClient } from './client-node.js';
import { colorsFor } from './format.js';
import { memberLine } from './membership-view.js';
import type { HostPort } from './options.js';
import { logLevel } from './session-log.js';
import { renderTop, shownTasks, SORT_KEYS, type TopState } from './top-view.js';

/** A redraw at most this often for pushed views (four a second). */
export const MIN_FRAME_MS = 250;
const MAX_EVENTS = 50;
const MAX_OUTPUT_LINES = 2000;
const ENTER_SCREEN = '\u001b[?1049h\u001b[?25l\u001b[2J';
const LEAVE_SCREEN = '\u001b[?25h\u001b[?1049l';

export interface TopCommand {
  identity: Identity;
  join: HostPort;
  connectTimeoutMs: number;
  logFile?: string;
}

export async function runTop(options: TopCommand): Promise<number> {
  const out = process.stdout;
  const input = process.stdin;
  if (!out.isTTY || !input.isTTY) throw settingError('terminal', 'none', 'a terminal on stdin and stdout for troupe top (for scripts: troupe status --json)');
  let lastLog: string | undefined;
  // Logs must not write over the screen: to --log-file, or the last one shown in the footer.
  const log =
    options.logFile !== undefined
      ? createLogger({ node: options.identity.name, level: logLevel('warn'), file: options.logFile })
      : pino({ level: logLevel('warn'), base: { node: options.identity.name } }, { write: (line: string) => (lastLog = safeMessage(line)) });
  const client = await connectClient({ identity: options.identity, join: options.join, connectTimeoutMs: options.connectTimeoutMs, log });
  const { system, tasks } = client;
  const colors = colorsFor(out);
  const state: TopState = {
    manager: client.manager,
    target: client.target,
    connected: true,
    view: undefined,
    events: [],
    sort: 'name',
    filter: ANY,
    selected: undefined,
    mode: 'main',
    input: '',
    message: undefined,
    output: undefined,
  };

  // ── the terminal ─────────────────────────────────────────────────────────────────────────────
  let shown: string[] = [];
  let restored = false;
  const restore = () => {
    if (restored) return;
    restored = true;
    try {
      if (input.isTTY) input.setRawMode(false);
    } catch {
      // The terminal is gone already.
    }
    out.write(LEAVE_SCREEN);
  };
  process.once('exit', restore);
  out.write(ENTER_SCREEN);
  readline.emitKeypressEvents(input);
  input.setRawMode(true);
  input.resume();

  let timer: NodeJS.Timeout | undefined;
  let lastDraw = 0;
  const draw = () => {
    timer = undefined;
    if (restored) return;
    lastDraw = Date.now();
    if (lastLog !== undefined && state.message === undefined) state.message = lastLog;
    const lines = renderTop(state, { columns: out.columns || 80, rows: out.rows || 24 }, colors, lastDraw);
    let frame = '';
    for (let i = 0; i < lines.length; i++) if (shown[i] !== lines[i]) frame += `\u001b[${i + 1};1H${lines[i]}`;
    shown = lines;
    if (frame !== '') out.write(frame);
  };
  /** A pushed view waits for the next frame; a key is answered now. */
  const schedule = (now = false) => {
    if (now) {
      clearTimeout(timer);
      draw();
      return;
    }
    timer ??= setTimeout(draw, Math.max(0, MIN_FRAME_MS - (Date.now() - lastDraw)));
  };
  const onResize = () => {
    shown = [];
    out.write('\u001b[2J');
    schedule(true);
  };
  out.on('resize', onResize);
  // Elapsed times and "up since" move on their own.
  const clock = setInterval(() => schedule(), 1000);

  // ── the cluster ──────────────────────────────────────────────────────────────────────────────
  const liveView = new ActorRef(client.manager, LIVE_VIEW_NAME);
  const subscriber = system.receiver((msg) => {
    if ((msg as { type?: string }).type !== 'clusterView') return;
    state.view = msg as ClusterView;
    keepSelection();
    schedule();
  });
  const watch = () => system.dispatch(liveView, { type: 'watchCluster', subscriber });
  watch();
  system.on('connected', (node) => {
    if (node !== client.manager) return;
    state.connected = true;
    watch();
    schedule();
  });
  system.on('disconnected', (node) => {
    if (node !== client.manager) return;
    state.connected = false;
    schedule();
  });
  system.on('member', (event) => {
    if (event.node === system.node) return;
    state.events.push({ at: Date.now(), text: memberLine(event) });
    if (state.events.length > MAX_EVENTS) state.events.shift();
    schedule();
  });
  tasks.on('output', (chunk) => {
    const o = state.output;
    if (!o || chunk.id !== o.id) return;
    const parts = (o.partial + Buffer.from(chunk.data).toString('utf8')).split(/\r?\n/);
    o.partial = parts.pop()!;
    o.lines.push(...parts);
    if (o.lines.length > MAX_OUTPUT_LINES) o.lines.splice(0, o.lines.length - MAX_OUTPUT_LINES);
    schedule();
  });

  /** The selection follows its task; when that task is gone, the one now at its place. */
  let selectedIndex = 0;
  function keepSelection(): void {
    const list = shownTasks(state);
    const at = list.findIndex((t) => t.id === state.selected);
    if (at >= 0) selectedIndex = at;
    else state.selected = list[Math.min(selectedIndex, list.length - 1)]?.id;
  }
  const move = (by: number) => {
    const list = shownTasks(state);
    if (list.length === 0) return;
    const at = list.findIndex((t) => t.id === state.selected);
    selectedIndex = at < 0 ? 0 : Math.max(0, Math.min(list.length - 1, at + by));
    state.selected = list[selectedIndex]!.id;
  };

  // ── keys ─────────────────────────────────────────────────────────────────────────────────────
  let quit!: (code: number) => void;
  const finished = new Promise<number>((resolve) => (quit = resolve));
  const onKey = (str: string | undefined, key: readline.Key | undefined) => {
    const name = key?.name;
    if (key?.ctrl && (name === 'c' || name === 'd')) return quit(0);
    state.message = undefined;
    lastLog = undefined;
    switch (state.mode) {
      case 'filter':
        if (name === 'escape') state.mode = 'main';
        else if (name === 'return' || name === 'enter') {
          try {
            state.filter = parseSelector(state.input);
            state.mode = 'main';
            keepSelection();
          } catch (err) {
            state.message = err instanceof TroupeError ? `troupe: ${err.code}: ${err.message}` : messageOf(err);
          }
        } else if (name === 'backspace') state.input = state.input.slice(0, -1);
        else if (str !== undefined && str.length === 1 && str >= ' ' && str !== '\u007f') state.input += str;
        break;
      case 'confirm': {
        const id = state.selected;
        state.mode = 'main';
        if (str === 'y' || str === 'Y') {
          if (id !== undefined) {
            state.message = `cancelling ${id}…`;
            tasks.cancel(id).then(
              (t) => ((state.message = `cancelled ${t.id}`), schedule(true)),
              (err: unknown) => ((state.message = err instanceof TroupeError ? `troupe: ${err.code}: ${err.message}` : messageOf(err)), schedule(true)),
            );
          }
        } else {
          state.message = 'not cancelled';
        }
        break;
      }
      case 'output':
        if (name === 'escape' || str === 'q' || name === 'backspace') state.mode = 'main';
        break;
      default:
        if (str === 'q') return quit(0);
        if (str === 's') state.sort = SORT_KEYS[(SORT_KEYS.indexOf(state.sort) + 1) % SORT_KEYS.length]!;
        else if (str === '/') {
          state.mode = 'filter';
          state.input = state.filter.text;
        } else if (name === 'up' || str === 'k') move(-1);
        else if (name === 'down' || str === 'j') move(1);
        else if (name === 'return' || name === 'enter') openOutput();
        else if (str === 'c') {
          if (state.selected === undefined) state.message = 'no task selected (↑↓ select one)';
          else state.mode = 'confirm';
        }
    }
    schedule(true);
  };
  function openOutput(): void {
    const task = shownTasks(state).find((t) => t.id === state.selected);
    if (!task) {
      state.message = 'no task selected (↑↓ select one)';
      return;
    }
    if (state.output?.id !== task.id) state.output = { id: task.id, worker: task.worker ?? '(queued)', lines: [], partial: '' };
    state.mode = 'output';
    tasks.follow([task.id]).catch((err: unknown) => ((state.message = messageOf(err)), schedule(true)));
  }
  input.on('keypress', onKey);
  const onSignal = () => quit(0);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  schedule(true);

  try {
    return await finished;
  } finally {
    clearTimeout(timer);
    clearInterval(clock);
    input.off('keypress', onKey);
    out.off('resize', onResize);
    process.off('SIGTERM', onSignal);
    process.off('SIGHUP', onSignal);
    restore();
    input.pause();
    system.dispatch(liveView, { type: 'unwatchCluster', subscriber });
    system.dropReceiver(subscriber);
    await client.shutdown();
  }
}

function safeMessage(line: string): string {
  try {
    const parsed = JSON.parse(line) as { msg?: unknown };
    return `log: ${String(parsed.msg ?? '')}`;
  } catch {
    return 'log: (unreadable line)';
  }
}
