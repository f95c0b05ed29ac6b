/**
 * A Russula member's metrics, scraped by its own worker on this host (a step's `metrics`): its
 * Prometheus endpoint on 127.0.0.1 (the step's port, else its reported address's), or a file in
 * its directory, every `intervalMs` from when it is ready, one scrape at a time.
 *
 * - The samples (parsed, protocols/prometheus-text.ts) are kept by the member until its process is
 *   over; the worker sends them once, in the terminal russulaState. Nothing is sent while it runs.
 * - Bounded: an answer is cut at 4 MiB, a sample keeps at most MAX_SERIES series, a member at most
 *   MAX_SAMPLES samples and MAX_SAMPLE_VALUES values; what is dropped, and every failed scrape, is
 *   counted in `scrapeErrors` (with the first reason), never thrown.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { parsePrometheusText, seriesKey } from '../../protocols/prometheus-text.js';
import { MAX_SAMPLES, MAX_SERIES, type MetricsSpec, type Sample } from '../../protocols/russula/index.js';

/**
 * Values (series × samples) one member keeps at most: 200 000, so that its last russulaState stays
 * well under the transport's frame limit (about 40 bytes a value with its key).
 */
const MAX_SAMPLE_VALUES = 200_000;
/** A scrape's answer is cut here: 4 MiB. */
const MAX_SCRAPE_BYTES = 4 * 1024 * 1024;

/** What of a member the scraping reads and keeps. */
export interface ScrapedMember {
  step: { metrics?: MetricsSpec };
  process?: { cwd: string };
  address?: string;
  samples: Sample[];
  sampleValues: number;
  scrapeErrors: { count: number; first: string };
  scrapeTimer?: NodeJS.Timeout;
  scraping: boolean;
}

/** One scrape's answer (the text, or why there is none), at this worker's clock. */
export type Scraped = { at: number; text?: string; error?: string };

/** Starts scraping now and every intervalMs (once per member); `scrape` is called for each. */
export function startScraping(m: ScrapedMember, scrape: () => void): void {
  if (!m.step.metrics || m.scrapeTimer !== undefined) return;
  const tick = () => {
    scrape();
    m.scrapeTimer = setTimeout(tick, m.step.metrics!.intervalMs);
  };
  m.scrapeTimer = setTimeout(tick, 0);
}

/** One scrape of the member's metrics on this host; the answer goes to `done` (never throws). */
export function scrapeMember(m: ScrapedMember, done: (answer: Scraped) => void): void {
  const spec = m.step.metrics!;
  if (m.scraping || m.process === undefined) return;
  const at = Date.now();
  const finish = (text?: string, error?: string) => {
    m.scraping = false;
    done({ at, ...(text !== undefined && { text }), ...(error !== undefined && { error }) });
  };
  m.scraping = true;
  if (spec.file !== undefined) {
    fs.promises.readFile(path.join(m.process.cwd, spec.file), 'utf8').then(
      (text) => finish(text.slice(0, MAX_SCRAPE_BYTES)),
      (err: NodeJS.ErrnoException) => finish(undefined, `cannot read ${spec.file}: ${err.code ?? err.message}`),
    );
    return;
  }
  const port = spec.port ?? Number(m.address?.slice(m.address.lastIndexOf(':') + 1));
  if (!Number.isInteger(port) || port < 1) return finish(undefined, 'no port to scrape (the member reported no address)');
  const req = http.get({ host: '127.0.0.1', port, path: spec.path, timeout: Math.max(100, spec.intervalMs) }, (res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_SCRAPE_BYTES) chunks.push(c);
    });
    res.on('end', () => (res.statusCode === 200 ? finish(Buffer.concat(chunks).toString('utf8')) : finish(undefined, `http://127.0.0.1:${port}${spec.path} answered ${res.statusCode}`)));
    res.on('error', (err) => finish(undefined, err.message));
  });
  req.on('timeout', () => req.destroy(new Error(`no answer within ${Math.max(100, spec.intervalMs)} ms`)));
  req.on('error', (err: NodeJS.ErrnoException) => finish(undefined, `http://127.0.0.1:${port}${spec.path}: ${err.code ?? err.message}`));
}

/** Keeps one scrape's answer as a sample of the member, or counts why it cannot. */
export function keepSample(m: ScrapedMember, msg: Scraped): void {
  const scrapeError = (why: string) => {
    m.scrapeErrors.count += 1;
    if (m.scrapeErrors.first === '') m.scrapeErrors.first = why.slice(0, 1024);
  };
  if (msg.text === undefined) return scrapeError(msg.error ?? 'no answer');
  let values: Record<string, number>;
  try {
    values = {};
    let n = 0;
    for (const s of parsePrometheusText(msg.text).samples) {
      if (!Number.isFinite(s.value)) continue;
      const key = seriesKey(s.name, s.labels);
      if (key.length > 1024 || (!Object.hasOwn(values, key) && n >= MAX_SERIES)) continue;
      if (!Object.hasOwn(values, key)) n += 1;
      values[key] = s.value;
    }
  } catch (err) {
    return scrapeError((err as Error).message);
  }
  if (m.samples.length >= MAX_SAMPLES) return scrapeError(`more than ${MAX_SAMPLES} samples: the later ones are dropped`);
  const n = Object.keys(values).length;
  if (m.sampleValues + n > MAX_SAMPLE_VALUES) return scrapeError(`more than ${MAX_SAMPLE_VALUES} values in all: the later samples are dropped`);
  m.sampleValues += n;
  m.samples.push({ at: msg.at, values });
}
