/**
 * Where the `troupe` command's output goes, so that nothing breaks a line someone is typing.
 *
 * Three kinds of text: a task's own output (its stdout to our stdout, its stderr to our stderr,
 * byte for byte); notes (membership changes, status lines, waiting notices: the REPL's talk); and
 * logs. Notes go to the terminal in an interactive REPL and to stderr otherwise, so that a script
 * reading our stdout gets only what the commands printed. While the REPL's prompt is on the screen,
 * anything printed first clears the prompt line, then redraws the prompt and what was typed so far.
 */
import { EventEmitter } from 'node:events';
import readline from 'node:readline';
import { colorsFor, type Colors } from './format.js';

export type Stream = 'stdout' | 'stderr';

interface Writable {
  write(data: string | Uint8Array, callback?: (err?: Error | null) => void): boolean;
  /** Bytes written but not yet taken by the reader (a Node stream's); absent: always 0. */
  writableLength?: number;
  isTTY?: boolean;
  columns?: number;
  rows?: number;
  on?(event: 'resize' | 'error', listener: (err?: NodeJS.ErrnoException) => void): unknown;
  off?(event: 'resize' | 'error', listener: (err?: NodeJS.ErrnoException) => void): unknown;
}

export interface ScreenOptions {
  stdout?: Writable;
  stderr?: Writable;
  /** Where notes go: the terminal of an interactive REPL (stdout), or stderr. */
  notes: Stream;
  env?: NodeJS.ProcessEnv;
}

/** What the REPL lends the screen while its prompt is showing. */
export interface PromptLine {
  /** Writes the prompt and the line being typed again, after something was printed above it. */
  redraw(): void;
}

export class Screen {
  readonly stdout: Writable;
  readonly stderr: Writable;
  readonly notesTo: Stream;
  /** Colours of each stream (none unless it is a terminal). */
  readonly colors: Record<Stream, Colors>;
  /**
   * Called once when the reader of our stdout went away (EPIPE: `troupe run … | head -1`); what
   * is written there afterwards is dropped. The owner cancels what runs and leaves (status 141, as
   * a shell reports a command killed by SIGPIPE).
   */
  onBrokenPipe: (() => void) | undefined;
  #broken: Record<Stream, boolean> = { stdout: false, stderr: false };
  #prompt: PromptLine | undefined;
  /** Whether the last byte written to each stream ended a line; one shared flag when both are one terminal. */
  #atLineStart: Record<Stream, boolean> = { stdout: true, stderr: true };
  readonly #sameTerminal: boolean;

  constructor(options: ScreenOptions) {
    this.stdout = options.stdout ?? process.stdout;
    this.stderr = options.stderr ?? process.stderr;
    this.notesTo = options.notes;
    this.colors = { stdout: colorsFor(this.stdout, options.env), stderr: colorsFor(this.stderr, options.env) };
    this.#sameTerminal = this.stdout.isTTY === true && this.stderr.isTTY === true;
    for (const stream of ['stdout', 'stderr'] as const) {
      this[stream].on?.('error', (err) => {
        if (err?.code !== 'EPIPE' || this.#broken[stream]) return;
        this.#broken[stream] = true;
        if (stream === 'stdout') this.onBrokenPipe?.();
      });
    }
  }

  /** The colours of notes. */
  get noteColors(): Colors {
    return this.colors[this.notesTo];
  }

  /** A task's output (or a table), as is. */
  write(stream: Stream, data: string | Uint8Array): void {
    if (data.length === 0) return;
    this.#clearPrompt();
    this.#put(stream, data);
    const last = typeof data === 'string' ? data.charCodeAt(data.length - 1) : data[data.length - 1];
    this.#setAtLineStart(stream, last === 10);
    this.#redrawPrompt();
  }

  /** Bytes written to `stream` that its reader has not taken yet (0 once it is broken). */
  backlog(stream: Stream): number {
    return this.#broken[stream] ? 0 : (this[stream].writableLength ?? 0);
  }

  /** Resolves once everything written to `stream` so far has been taken by its reader (or it broke). */
  drained(stream: Stream): Promise<void> {
    if (this.backlog(stream) === 0) return Promise.resolve();
    // Write callbacks run in order: this one once all before it are flushed (or failed).
    return new Promise((resolve) => this[stream].write('', () => resolve()));
  }

  /** Whole lines to stdout (tables, `:help`). */
  lines(lines: readonly string[]): void {
    if (lines.length > 0) this.#line('stdout', lines.join('\n'));
  }

  /** A note: the REPL talking (status lines, membership, waiting). */
  note(text: string): void {
    this.#line(this.notesTo, text);
  }

  /** An error as one line, `troupe: CODE: message`, in red on a terminal. */
  error(text: string): void {
    this.#line(this.notesTo, this.colors[this.notesTo].red(text));
  }

  /** A log line (already formatted, with its newline) to stderr. */
  log(line: string): void {
    this.#clearPrompt();
    this.#put('stderr', line);
    this.#setAtLineStart('stderr', line.endsWith('\n'));
    this.#redrawPrompt();
  }

  /** The REPL shows its prompt (or stops showing it: `undefined`). */
  setPrompt(prompt: PromptLine | undefined): void {
    this.#prompt = prompt;
  }

  #line(stream: Stream, text: string): void {
    this.#clearPrompt();
    // A task that printed no final newline: our line still starts at the left edge.
    if (!this.#isAtLineStart(stream)) this.#put(stream, '\n');
    this.#put(stream, `${text}\n`);
    this.#setAtLineStart(stream, true);
    this.#redrawPrompt();
  }

  #put(stream: Stream, data: string | Uint8Array): void {
    if (!this.#broken[stream]) this[stream].write(data);
  }

  #isAtLineStart(stream: Stream): boolean {
    return this.#sameTerminal ? this.#atLineStart.stdout : this.#atLineStart[stream];
  }

  #setAtLineStart(stream: Stream, value: boolean): void {
    if (this.#sameTerminal) this.#atLineStart.stdout = this.#atLineStart.stderr = value;
    else this.#atLineStart[stream] = value;
  }

  #clearPrompt(): void {
    if (!this.#prompt) return;
    readline.cursorTo(this.stdout as NodeJS.WritableStream, 0);
    readline.clearScreenDown(this.stdout as NodeJS.WritableStream);
  }

  #redrawPrompt(): void {
    this.#prompt?.redraw();
  }
}

/**
 * The terminal as readline sees it, with a mute switch: while a command runs in the foreground,
 * readline still reads keys (Ctrl-C, type-ahead) but echoes nothing into the command's output.
 */
export class MutableOutput extends EventEmitter {
  muted = false;
  readonly isTTY: boolean;
  readonly #target: Writable;
  readonly #onResize = () => this.emit('resize');

  constructor(target: Writable) {
    super();
    this.#target = target;
    this.isTTY = target.isTTY === true;
    target.on?.('resize', this.#onResize);
  }

  get columns(): number | undefined {
    return this.#target.columns;
  }

  get rows(): number | undefined {
    return this.#target.rows;
  }

  write(data: string | Uint8Array): boolean {
    if (!this.muted) this.#target.write(data);
    return true;
  }

  detach(): void {
    this.#target.off?.('resize', this.#onResize);
  }
}
