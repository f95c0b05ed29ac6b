/**
 * Whether a TCP port accepts connections: how `testbed deploy` knows an instance's sshd is up
 * without speaking SSH (that is src/deploy's business). Resolves false on refusal, reset,
 * unreachable or timeout; never rejects.
 */
import net from 'node:net';

/** One connection attempt waits this long: 3 seconds. */
export const DEFAULT_PROBE_TIMEOUT_MS = 3000;

export type PortProbe = (host: string, port: number) => Promise<boolean>;

export function tcpAccepts(host: string, port: number, timeoutMs = DEFAULT_PROBE_TIMEOUT_MS): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      socket.removeAllListeners();
      socket.on('error', () => {});
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
