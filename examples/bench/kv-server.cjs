// A small in-memory key-value server over HTTP: PUT /kv/KEY stores the body, GET /kv/KEY returns
// it (404 when absent). GET /metrics is its Prometheus text. Listens on a port the OS picks and
// prints `kv listening on HOST:PORT` (the scenario's readiness line).
'use strict';
const http = require('node:http');
const { counter, gauge } = require('./metrics.cjs');

const host = process.env.HOST || '127.0.0.1';
const store = new Map();
let requests = 0;
let misses = 0;

const server = http.createServer((req, res) => {
  if (req.url === '/metrics') {
    res.setHeader('content-type', 'text/plain; version=0.0.4');
    res.end([counter('kv_requests_total', 'Requests served.', requests), counter('kv_misses_total', 'GETs of absent keys.', misses), gauge('kv_keys', 'Keys stored.', store.size)].join('\n') + '\n');
    return;
  }
  const m = /^\/kv\/([^/?]{1,200})$/.exec(req.url || '');
  if (!m) {
    res.statusCode = 404;
    res.end();
    return;
  }
  requests += 1;
  if (req.method === 'PUT') {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      store.set(m[1], Buffer.concat(chunks).subarray(0, 4096));
      res.statusCode = 204;
      res.end();
    });
    return;
  }
  const value = store.get(m[1]);
  if (value === undefined) {
    misses += 1;
    res.statusCode = 404;
    res.end();
    return;
  }
  res.end(value);
});
server.keepAliveTimeout = 5000;
server.listen(0, host, () => console.log(`kv listening on ${host}:${server.address().port}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)).closeAllConnections());
