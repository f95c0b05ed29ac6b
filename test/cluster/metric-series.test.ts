/**
 * A series written in place (src/cluster/metric-series.ts) reads, by prom-client's own writer, as
 * the collect's `reset()` and `inc` / `set` it replaces would: values, label order, series order;
 * and after the registry resets its metrics, the next write makes the entry again.
 */
import { expect } from 'chai';
import promClient from 'prom-client';
import { series } from '../../src/cluster/metric-series.js';

const ROLES = ['manager', 'worker', 'client'];

/** A counter by role and a label-less gauge, collected from `values` the way `inPlace` says. */
function registry(values: { byRole: number[]; one: number }, inPlace: boolean): promClient.Registry {
  const registry = new promClient.Registry();
  let perRole: ReturnType<typeof series>[] | undefined;
  let one: ReturnType<typeof series> | undefined;
  new promClient.Counter({
    name: 'x_bytes_total', help: 'Bytes, by role', labelNames: ['peer_role'], registers: [registry],
    collect() {
      if (inPlace) {
        perRole ??= ROLES.map((role) => series(this, { peer_role: role }));
        perRole.forEach((s, i) => s.set(values.byRole[i]!));
      } else {
        this.reset();
        ROLES.forEach((role, i) => this.inc({ peer_role: role }, values.byRole[i]!));
      }
    },
  });
  new promClient.Gauge({
    name: 'x_pending', help: 'Pending', registers: [registry],
    collect() {
      if (inPlace) (one ??= series(this, {})).set(values.one);
      else this.set(values.one);
    },
  });
  new promClient.Gauge({
    name: 'x_members', help: 'Members by role and status', labelNames: ['status', 'role'], registers: [registry],
    collect() {
      // Label names declared out of alphabetical order: the hash sorts them, as prom-client's does.
      if (inPlace) series(this, { status: 'up', role: 'worker' }).set(values.one * 2);
      else this.set({ status: 'up', role: 'worker' }, values.one * 2);
    },
  });
  return registry;
}

describe('unit: metric series written in place', () => {
  it("read as prom-client's reset and inc would give, scrape after scrape and after a reset", async () => {
    const values = { byRole: [0, 0, 0], one: 0 };
    const ours = registry(values, true);
    const theirs = registry(values, false);
    const expected = [
      '# HELP x_bytes_total Bytes, by role',
      '# TYPE x_bytes_total counter',
      'x_bytes_total{peer_role="manager"} 10',
      'x_bytes_total{peer_role="worker"} 2.5',
      'x_bytes_total{peer_role="client"} 0',
      '',
      '# HELP x_pending Pending',
      '# TYPE x_pending gauge',
      'x_pending 7',
      '',
      '# HELP x_members Members by role and status',
      '# TYPE x_members gauge',
      'x_members{status="up",role="worker"} 14',
      '',
    ].join('\n');
    for (const step of [
      { byRole: [10, 2.5, 0], one: 7 },
      { byRole: [12, 3, 1], one: 0 },
    ]) {
      Object.assign(values, step);
      const text = await ours.metrics();
      expect(text).to.equal(await theirs.metrics());
      if (step.one === 7) expect(text).to.equal(expected);
    }
    ours.resetMetrics();
    values.byRole = [5, 6, 7];
    expect(await ours.metrics()).to.equal(await theirs.metrics());
    expect(await ours.metrics()).to.include('x_bytes_total{peer_role="client"} 7');
  });
});
