/**
 * A node's Prometheus endpoint (`troupe manager --metrics HOST:PORT`, the same on `worker`): plain
 * HTTP, off unless asked for, bound to loopback unless a host is given (the metrics name workers and
 * tell the load; put a reverse proxy with TLS in front to expose them further).
 *
 *   GET /metrics  the registry in the Prometheus text format (collected at each scrape, written by
 *                 metrics-exposition.ts: prom-client's text at a fraction of its cost)
 *   GET /healthz  200 while the process serves at all
 *   GET /readyz   200 once the node is part of the cluster (manager: listening; others: joined), else 503
 *
 * Nothing here can take the node down: a collector that fails answers that scrape with 500 and is
 * logged once per message; a client that goes away mid-answer is ignored.
 */
import http from 'node:http';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { ErrorCodes, settingError, TroupeError } from '../errors.js';
import { Exposition } from './metrics-exposition.js';

/** The host `--metrics PORT` (or `:PORT`) binds to: loopback, so nothing is exposed by accident. */
export const DEFAULT_METRICS_HOST = '127.0.0.1';

const HOSTNAME = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*$/;

export interface MetricsAddress {
  host: string;
  port: number;
}

/** `HOST:PORT`, `[v6]:PORT`, `:PORT` or `PORT` (both on loopback). Port 0 picks a free one. */
export function parseMetricsAddress(option: string, value: unknown): MetricsAddress {
  const expected = 'HOST:PORT, [IPv6]:PORT or PORT (on loopback), e.g. 127.0.0.1:9464 or 0.0.0.0:9464';
  if (typeof value !== 'string') throw settingError(option, value, expected);
  const text = value.trim();
  let host = DEFAULT_METRICS_HOST;
  let portText: string;
  const v6 = /^\[([^\]]+)\]:(\d+)$/.exec(text);
  if (v6) {
    if (isIP(v6[1]!) !== 6) throw settingError(option, value, expected);
    [host, portText] = [v6[1]!, v6[2]!];
  } else if (/^:?\d+$/.test(text)) {
    portText = text.replace(':', '');
  } else {
    const colon = text.lastIndexOf(':');
    if (colon <= 0) throw settingError(option, value, expected);
    [host, portText] = [text.slice(0, colon), text.slice(colon + 1)];
    // An IPv6 address goes in brackets: `::1:9464` is ambiguous.
    if (!/^\d+$/.test(portText) || isIP(host) === 6 || (isIP(host) === 0 && !HOSTNAME.test(host))) throw settingError(option, value, expected);
  }
  const port = Number(portText);
  if (port > 65535) throw settingError(option, value, 'a port number from 0 to 65535');
  return { host, port };
}

export interface MetricsServerOptions {
  at: MetricsAddress;
  registry: Registry;
  /** For /readyz. */
  ready: () => boolean;
  log: Logger;
}

export class MetricsServer {
  readonly #server: http.Server;
  readonly #address: MetricsAddress;

  private constructor(server: http.Server, address: MetricsAddress) {
    this.#server = server;
    this.#address = address;
  }

  /** Listens; rejects with TROUPE_E_METRICS_LISTEN (the system error as its cause). */
  static async start(options: MetricsServerOptions): Promise<MetricsServer> {
    const logged = new Set<string>();
    const exposition = new Exposition(options.registry);
    const server = http.createServer((req, res) => {
      res.on('error', () => {});
      const url = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') return answer(res, 405, 'text/plain', 'only GET\n');
      if (url === '/healthz') return answer(res, 200, 'text/plain', 'ok\n');
      if (url === '/readyz') return options.ready() ? answer(res, 200, 'text/plain', 'ready\n') : answer(res, 503, 'text/plain', 'not ready\n');
      if (url !== '/metrics') return answer(res, 404, 'text/plain', 'not found: try /metrics, /healthz or /readyz\n');
      exposition.text().then(
        (text) => answer(res, 200, exposition.contentType, text),
        (err: unknown) => {
          const message = err instanceof Error ? err.message : String(err);
          if (!logged.has(message)) {
            logged.add(message);
            options.log.warn({ err: message }, 'a metrics collector failed');
          }
          answer(res, 500, 'text/plain', 'collecting the metrics failed\n');
        },
      );
    });
    // Scrapers keep their connection; it must not keep a stopping node alive.
    server.keepAliveTimeout = 65_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => reject(listenError(err, options.at)));
      server.listen(options.at.port, options.at.host, () => resolve());
    });
    server.on('error', (err) => options.log.warn({ err: err.message }, 'metrics server error'));
    const a = server.address() as { address: string; port: number };
    return new MetricsServer(server, { host: a.address, port: a.port });
  }

  get address(): MetricsAddress {
    return this.#address;
  }

  /** `http://127.0.0.1:9464/metrics` */
  get url(): string {
    const { host, port } = this.#address;
    return `http://${isIP(host) === 6 ? `[${host}]` : host}:${port}/metrics`;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }
}

function answer(res: http.ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function listenError(err: NodeJS.ErrnoException, at: MetricsAddress): TroupeError {
  const why =
    err.code === 'EADDRINUSE'
      ? 'the address is in use (another troupe node or exporter? choose another port, or 0 for a free one)'
      : err.code === 'EACCES'
        ? 'permission denied (ports below 1024 need privileges)'
        : err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN'
          ? 'no such local address'
          : err.message;
  const shown = isIP(at.host) === 6 ? `[${at.host}]:${at.port}` : `${at.host}:${at.port}`;
  return new TroupeError(ErrorCodes.METRICS_LISTEN, `--metrics: cannot listen on ${shown}: ${why}`, { cause: err });
}
