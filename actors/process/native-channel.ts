/**
 * The channel to the native spawner (spawn-helper.c, built to dist/native/troupe-spawn): the helper
 * started with our frames (protocols/spawner-frames.ts) on its stdin and stdout, its pid records on
 * its descriptor 3, its stderr ours. What it sends is checked frame by frame (FrameDecoder): a frame
 * that is not the protocol's ends the helper (SIGKILL), and the Spawner then treats it as dead (every
 * group it started is killed here, each running command gets `lost`, saying which frame).
 *
 * A handed-over pipe (`pipe` with the helper's descriptor N) is opened here as /proc/HELPER/fd/N,
 * read-only and non-blocking: the same pipe, a descriptor of our own. Then `taken` tells the helper
 * to close its copy (whether or not the open worked: a failed one gives the Spawner no descriptor,
 * and it reports that stream's output lost, as with the Node spawner). Nothing is copied on the way:
 * the worker reads the pipe itself (pipe-reader.ts), as it reads one the Node spawner sends.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { FrameDecoder, encodeToHelper, HELPER_PID_FD, type FromHelper, type Taken } from '../../protocols/spawner-frames.js';
import type { ToSpawner } from '../../protocols/spawner.js';
import { messageOf } from '../../src/errors.js';
import { openPids, type ChannelEvents, type SpawnerChannel } from './spawner-channel.js';

const SIGNAL_NAMES: Record<number, string> = Object.fromEntries(Object.entries(os.constants.signals).map(([name, n]) => [n, name]));

/** Starts the helper at `binary`. Throws as spawn does (E2BIG and the like). */
export function startNativeSpawner(binary: string, events: ChannelEvents): SpawnerChannel {
  const proc = spawn(binary, [], {
    // Each command gets its own env; the helper needs none.
    env: {},
    // 0: frames to it, 1: frames from it, 3: pid records; all sockets (libuv's socketpairs).
    stdio: ['pipe', 'pipe', 'inherit', 'pipe'],
  });
  const pids = openPids(proc, HELPER_PID_FD);
  let ended = false;
  const gone = (why: string) => {
    if (ended) return;
    ended = true;
    events.gone(why);
  };
  const write = (m: ToSpawner | Taken) => {
    const frame = encodeToHelper(m);
    if (typeof frame === 'string') {
      // Only a spawn can be refused (the guards above it make it rare): it fails to start.
      if (m.t === 'spawn') events.message({ t: 'failed', id: m.id, error: `cannot start /bin/bash: ${frame}` }, undefined);
      return;
    }
    if (proc.stdin && !proc.stdin.destroyed && proc.stdin.writable) proc.stdin.write(frame);
  };
  const decoder = new FrameDecoder(SIGNAL_NAMES, (m: FromHelper) => {
    if (m.t !== 'pipe') return events.message(m, undefined);
    let fd: number | undefined;
    try {
      fd = fs.openSync(`/proc/${proc.pid}/fd/${m.fd}`, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    } catch {
      fd = undefined; // EMFILE and the like: that stream's output is lost (the Spawner says so)
    }
    write({ t: 'taken', id: m.id, s: m.s });
    events.message({ t: 'pipe', id: m.id, s: m.s }, fd);
  });
  // A frame that is not the protocol's: the helper is ended, and its commands' results say why.
  let refused: string | undefined;
  proc.stdout!.on('data', (chunk: Buffer) => {
    if (refused !== undefined || decoder.push(chunk)) return;
    refused = `the spawner process sent ${decoder.broken}, and was ended`;
    proc.kill('SIGKILL');
  });
  // A write to a helper that is gone fails with EPIPE; its 'exit' follows.
  proc.stdin!.on('error', () => {});
  proc.stdout!.on('error', () => {});
  proc.on('error', (err) => {
    if (proc.pid === undefined) gone(`cannot start the spawner process: ${messageOf(err)}`);
  });
  // Gone once it has exited and its stdout has ended: every frame it sent has been taken. (Not
  // 'close', which waits for the pid socket too, never read through Node.)
  let exited: string | undefined;
  let drained = false;
  proc.stdout!.once('close', () => {
    drained = true;
    if (exited !== undefined) gone(exited);
  });
  proc.once('exit', (code, signal) => {
    exited = refused ?? `the spawner process ended (${signal ?? `exit code ${code}`})`;
    if (drained) gone(exited);
  });
  return {
    get pid() {
      return proc.pid;
    },
    pidFd: pids?.fd,
    send: write,
    close() {
      proc.stdin?.end();
    },
    ref() {
      proc.ref();
      (proc.stdout as { ref?: () => void } | null)?.ref?.();
    },
    unref() {
      proc.unref();
      (proc.stdout as { unref?: () => void } | null)?.unref?.();
      (proc.stdin as { unref?: () => void } | null)?.unref?.();
    },
    dispose() {
      pids?.stream.destroy();
    },
  };
}
