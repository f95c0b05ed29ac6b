import { expect } from 'chai';
import { bucketQuantile, histogramOf, parsePrometheusText, parseSeriesKey, parseValue, seriesKey, sumSeries } from '../../protocols/prometheus-text.js';
import { ErrorCodes } from '../../src/errors.js';
import { expectCode } from '../fixtures/expect-code.js';

const EXPOSITION = `# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400"}    3 1395066363000

# A plain comment
msdos_file_access_time_seconds{path="C:\\\\DIR\\\\FILE.TXT",error="Cannot find file:\\n\\"FILE.TXT\\""} 1.458255915e9
metric_without_timestamp_and_labels 12.47
something_weird{problem="division by zero"} +Inf -3982045
# HELP http_request_duration_seconds A histogram of the request duration.\\nSecond line.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.05"} 24054
http_request_duration_seconds_bucket{le="0.1"} 33444
http_request_duration_seconds_bucket{le="0.2"} 100392
http_request_duration_seconds_bucket{le="0.5"} 129389
http_request_duration_seconds_bucket{le="1"} 133988
http_request_duration_seconds_bucket{le="+Inf"} 144320
http_request_duration_seconds_sum 53423
http_request_duration_seconds_count 144320
# TYPE temperature gauge
temperature NaN
`;

describe('the Prometheus text parser', () => {
  it('reads counters, gauges, histograms, labels with escapes, timestamps, NaN and +Inf', () => {
    const { families, samples } = parsePrometheusText(EXPOSITION);
    expect(families.http_requests_total).to.deep.equal({ name: 'http_requests_total', type: 'counter', help: 'The total number of HTTP requests.' });
    expect(families.http_request_duration_seconds!.help).to.equal('A histogram of the request duration.\nSecond line.');
    expect(families.temperature!.type).to.equal('gauge');
    expect(samples).to.have.length(14);
    expect(samples[0]).to.deep.equal({ name: 'http_requests_total', family: 'http_requests_total', labels: { method: 'post', code: '200' }, value: 1027, timestampMs: 1395066363000 });
    expect(samples[2]!.labels).to.deep.equal({ path: 'C:\\DIR\\FILE.TXT', error: 'Cannot find file:\n"FILE.TXT"' });
    expect(samples[2]!.value).to.equal(1458255915);
    expect(samples[3]).to.deep.equal({ name: 'metric_without_timestamp_and_labels', family: 'metric_without_timestamp_and_labels', labels: {}, value: 12.47 });
    expect(samples[4]!.value).to.equal(Infinity);
    expect(samples[4]!.timestampMs).to.equal(-3982045);
    expect(samples[5]).to.deep.include({ name: 'http_request_duration_seconds_bucket', family: 'http_request_duration_seconds', labels: { le: '0.05' }, value: 24054 });
    expect(samples[11]!.family).to.equal('http_request_duration_seconds');
    expect(samples[13]!.value).to.be.NaN;
  });

  it('refuses a malformed line with TROUPE_E_METRICS_PARSE and its line number', () => {
    for (const [text, line] of [
      ['ok 1\nbad{le="1" 2', 2],
      ['x{a="1"', 1],
      ['x{a="\\q"} 1', 1],
      ['x{a="1",a="2"} 1', 1],
      ['x one', 1],
      ['# TYPE x thing', 1],
      ['x 1 2 3', 1],
      ['{a="1"} 1', 1],
    ] as const) {
      const err = expectCode(() => parsePrometheusText(text), ErrorCodes.METRICS_PARSE);
      expect(err.message, text).to.match(new RegExp(`^line ${line}: `));
    }
  });

  it('parses values as the format spells them', () => {
    expect(parseValue('1e3')).to.equal(1000);
    expect(parseValue('-Inf')).to.equal(-Infinity);
    expect(parseValue('.5')).to.equal(0.5);
    expect(parseValue('0x10')).to.equal(undefined);
    expect(parseValue('')).to.equal(undefined);
  });

  it('keys a series by name and sorted labels, and reads the key back', () => {
    const key = seriesKey('a_total', { z: 'q"x\n', b: 'back\\slash' });
    expect(key).to.equal('a_total{b="back\\\\slash",z="q\\"x\\n"}');
    expect(parseSeriesKey(key)).to.deep.equal({ name: 'a_total', labels: { b: 'back\\slash', z: 'q"x\n' } });
    expect(seriesKey('plain', {})).to.equal('plain');
  });

  it('sums series over labels and gathers a histogram\'s buckets', () => {
    const values: Record<string, number> = {};
    for (const s of parsePrometheusText(EXPOSITION).samples) if (Number.isFinite(s.value)) values[seriesKey(s.name, s.labels)] = s.value;
    expect(sumSeries(values, 'http_requests_total')).to.equal(1030);
    expect(sumSeries(values, 'http_requests_total', (l) => l.code === '400')).to.equal(3);
    expect(sumSeries(values, 'absent_total')).to.equal(undefined);
    const buckets = histogramOf(values, 'http_request_duration_seconds');
    expect(buckets.map((b) => b.le)).to.deep.equal([0.05, 0.1, 0.2, 0.5, 1, Infinity]);
    expect(buckets[5]!.count).to.equal(144320);
  });

  it('computes quantiles from buckets as histogram_quantile does', () => {
    const buckets = [
      { le: 0.1, count: 50 },
      { le: 0.2, count: 90 },
      { le: 0.4, count: 100 },
      { le: Infinity, count: 100 },
    ];
    expect(bucketQuantile(0.5, buckets)).to.be.closeTo(0.1, 1e-12);
    expect(bucketQuantile(0.25, buckets)).to.be.closeTo(0.05, 1e-12);
    expect(bucketQuantile(0.7, buckets)).to.be.closeTo(0.15, 1e-12);
    expect(bucketQuantile(0.99, buckets)).to.be.closeTo(0.38, 1e-12);
    // Falling in +Inf: the highest finite bound.
    expect(bucketQuantile(0.99, [{ le: 1, count: 10 }, { le: Infinity, count: 100 }])).to.equal(1);
    expect(bucketQuantile(0.5, [{ le: 1, count: 0 }, { le: Infinity, count: 0 }])).to.equal(undefined);
    expect(bucketQuantile(0.5, [])).to.equal(undefined);
  });
});
