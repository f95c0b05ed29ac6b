// nact's Actor class is exported from lib/actor.js but not typed; only what the drain loop touches.
declare module 'nact/lib/actor.js' {
  export class Actor {
    busy: boolean;
    stopped: boolean;
    state: unknown;
    immediate: NodeJS.Immediate | undefined;
    mailbox: { shift(): { message: unknown; sender: unknown } | undefined; length: number };
    parent: { reference: unknown } | undefined;
    path: unknown;
    reference: unknown;
    name: string;
    childReferences: Map<string, unknown>;
    log: unknown;
    f: (this: unknown, state: unknown, message: unknown, ctx: unknown) => unknown;
    createContext(sender: unknown): unknown;
    afterMessage(): void;
    processNext(): void;
    setTimeout(): void;
    handleFault(message: unknown, sender: unknown, error: unknown): unknown;
    handleMessage(message: unknown, sender: unknown): void;
    clearImmediate(): void;
    system: object;
  }
}
