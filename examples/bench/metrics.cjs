// Hand-written Prometheus text exposition for the bench example (no dependency to install): a
// counter and a histogram with the usual bucket, sum and count series.
'use strict';

const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

class Histogram {
  constructor(name, help) {
    this.name = name;
    this.help = help;
    this.counts = BUCKETS.map(() => 0);
    this.count = 0;
    this.sum = 0;
  }
  observe(seconds) {
    for (let i = 0; i < BUCKETS.length; i++) if (seconds <= BUCKETS[i]) this.counts[i] += 1;
    this.count += 1;
    this.sum += seconds;
  }
  text() {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    BUCKETS.forEach((le, i) => lines.push(`${this.name}_bucket{le="${le}"} ${this.counts[i]}`));
    lines.push(`${this.name}_bucket{le="+Inf"} ${this.count}`, `${this.name}_sum ${this.sum}`, `${this.name}_count ${this.count}`);
    return lines.join('\n');
  }
}

function counter(name, help, value) {
  return `# HELP ${name} ${help}\n# TYPE ${name} counter\n${name} ${value}`;
}

function gauge(name, help, value) {
  return `# HELP ${name} ${help}\n# TYPE ${name} gauge\n${name} ${value}`;
}

module.exports = { Histogram, counter, gauge };
