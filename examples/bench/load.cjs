// An open-loop load generator for kv-server.cjs: `--rate N` requests a second (half PUTs, half
// GETs, round robin over $SERVERS = host:port,host:port) for `--warmup W` + `--duration D` + 1
// seconds, then exits 0. Its metrics (requests_total, errors_total, request_duration_seconds, a
// histogram) are on http://127.0.0.1:PORT/metrics; it prints `metrics on 127.0.0.1:PORT` first.
'use strict';
const http = require('node:http');
const { Histogram, counter, gauge } = require('./metrics.cjs');

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const rate = arg('rate', 100);
const seconds = arg('warmup', 1) + arg('duration', 5) + 1;
const maxInFlight = arg('max-in-flight', 256);
const servers = (process.env.SERVERS || '').split(',').filter(Boolean).map((a) => ({ host: a.slice(0, a.lastIndexOf(':')), port: Number(a.slice(a.lastIndexOf(':') + 1)) }));
if (servers.length === 0 || !(rate > 0)) {
  console.error('usage: SERVERS=host:port,... node load.cjs --rate N [--warmup S] [--duration S]');
  process.exit(2);
}

const latency = new Histogram('request_duration_seconds', 'Request latency, seconds.');
let requests = 0;
let errors = 0;
let inFlight = 0;
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

const metrics = http.createServer((req, res) => {
  res.setHeader('content-type', 'text/plain; version=0.0.4');
  res.end([counter('requests_total', 'Requests answered.', requests), counter('errors_total', 'Requests failed or dropped.', errors), gauge('in_flight', 'Requests waiting for an answer.', inFlight), latency.text()].join('\n') + '\n');
});

let n = 0;
function one() {
  if (inFlight >= maxInFlight) {
    errors += 1; // the servers are not keeping up: an open loop drops, it does not wait
    return;
  }
  const server = servers[n % servers.length];
  const key = `k${n % 1000}`;
  const put = n % 2 === 0;
  n += 1;
  inFlight += 1;
  const t0 = process.hrtime.bigint();
  const req = http.request({ host: server.host, port: server.port, path: `/kv/${key}`, method: put ? 'PUT' : 'GET', agent, timeout: 5000 }, (res) => {
    res.resume();
    res.on('end', () => {
      inFlight -= 1;
      if (res.statusCode >= 500) errors += 1;
      else {
        requests += 1;
        latency.observe(Number(process.hrtime.bigint() - t0) / 1e9);
      }
    });
  });
  req.on('timeout', () => req.destroy(new Error('timeout')));
  req.on('error', () => {
    inFlight -= 1;
    errors += 1;
  });
  req.end(put ? `value of ${key}` : undefined);
}

metrics.listen(0, '127.0.0.1', () => {
  console.log(`metrics on 127.0.0.1:${metrics.address().port}`);
  const start = Date.now();
  let sent = 0;
  const timer = setInterval(() => {
    const due = Math.floor(((Date.now() - start) / 1000) * rate);
    while (sent < due) {
      one();
      sent += 1;
    }
  }, 5);
  setTimeout(() => {
    clearInterval(timer);
    console.log(`sent ${sent}, answered ${requests}, errors ${errors}`);
    agent.destroy();
    metrics.close();
    process.exit(0);
  }, seconds * 1000);
});
