/**
 * Messages that could not be delivered: to an actor that does not exist (any more), or to a node
 * that is down or unreachable. They are counted, emitted for whoever listens, and logged at debug
 * as one summary line per interval: a peer going away must not flood the log. The end of a burst
 * is logged too, one interval after its first letter.
 */
import type { Logger } from 'pino';
import type { ActorRef } from '../../protocols/actor-ref.js';
import { typeOf } from '../../protocols/message-type.js';
import type { ErrorCode } from '../errors.js';

export interface DeadLetter {
  to: ActorRef;
  /** The message's type (never its payload). */
  type: string;
  code: ErrorCode;
}

export class DeadLetters {
  total = 0;
  #sinceLog = 0;
  #lastLog = 0;
  #example: DeadLetter | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly log: Logger,
    private readonly intervalMs: number,
    private readonly emit: (letter: DeadLetter) => void,
  ) {}

  record(to: ActorRef, msg: unknown, code: ErrorCode): void {
    const letter: DeadLetter = { to, type: typeOf(msg), code };
    this.total++;
    this.#sinceLog++;
    this.#example ??= letter;
    if (Date.now() - this.#lastLog >= this.intervalMs) this.#summary();
    else this.#timer ??= setTimeout(() => this.#summary(), this.intervalMs - (Date.now() - this.#lastLog)).unref();
    this.emit(letter);
  }

  /** Stops the pending summary (the node is shutting down). */
  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #summary(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#example === undefined) return;
    this.log.debug({ to: this.#example.to.toString(), type: this.#example.type, code: this.#example.code, count: this.#sinceLog, total: this.total }, 'dead letters');
    this.#lastLog = Date.now();
    this.#sinceLog = 0;
    this.#example = undefined;
  }
}
