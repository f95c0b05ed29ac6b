/**
 * examples/grafana/troupe.json is importable as it is: valid dashboard JSON (unique panel ids, a
 * 24-column grid, a Prometheus datasource variable), every query a valid PromQL expression (real
 * `promtool check rules` on them, the dashboard's variables filled in), and every metric it asks for
 * one that a manager's registry really has.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { registerTaskMetrics } from '../../actors/tasks/task-metrics.js';
import { ClusterSystem } from '../../src/cluster/cluster-system.js';
import { metricsRegistry, registerClusterMetrics } from '../../src/cluster/cluster-metrics.js';
import { silentLogger } from '../../src/log.js';
import { testPki } from '../fixtures/pki.js';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const FILE = path.join(ROOT, 'examples', 'grafana', 'troupe.json');

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: { expr: string; refId: string }[];
}

describe('examples/grafana/troupe.json', () => {
  const dashboard = JSON.parse(fs.readFileSync(FILE, 'utf8')) as { title: string; uid: string; schemaVersion: number; panels: Panel[]; templating: { list: { name: string; type: string; query: unknown }[] } };
  const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
  const filled = (expr: string) => expr.replace(/\$__rate_interval/g, '1m').replace(/\$job/g, 'troupe').replace(/\$instance/g, '.*');

  it('is a dashboard with unique panel ids on a 24-column grid, a query in every panel, a Prometheus datasource variable', () => {
    expect(dashboard.title).to.equal('troupe');
    expect(dashboard.uid).to.match(/^[a-z0-9-]{1,40}$/);
    expect(dashboard.schemaVersion).to.be.a('number');
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).to.equal(ids.length);
    for (const p of dashboard.panels) {
      expect(p.gridPos.x + p.gridPos.w, p.title).to.be.at.most(24);
      if (p.type !== 'row') expect(p.targets?.length, p.title).to.be.greaterThan(0);
    }
    expect(dashboard.templating.list.find((v) => v.name === 'datasource')).to.include({ type: 'datasource', query: 'prometheus' });
    expect(exprs.length).to.be.greaterThan(20);
  });

  it('every query is valid PromQL (promtool check rules)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-grafana-'));
    try {
      const rules = ['groups:', '  - name: dashboard', '    rules:', ...exprs.flatMap((e, i) => [`      - record: troupe:dashboard:${i}`, `        expr: ${JSON.stringify(filled(e))}`]), ''].join('\n');
      fs.writeFileSync(path.join(dir, 'rules.yml'), rules);
      const check = spawnSync('promtool', ['check', 'rules', path.join(dir, 'rules.yml')], { encoding: 'utf8' });
      expect({ status: check.status, stderr: check.stderr }).to.deep.equal({ status: 0, stderr: '' });
      expect(check.stdout).to.include(`SUCCESS: ${exprs.length} rules found`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('asks only for metrics a manager exports', async () => {
    const system = await ClusterSystem.start({ identity: testPki().identity('manager'), listen: { host: '127.0.0.1', port: 0 }, log: silentLogger() });
    try {
      const registry = metricsRegistry();
      const detach = registerClusterMetrics(registry, system);
      registerTaskMetrics(registry);
      detach();
      const exported = new Set(registry.getMetricsAsArray().map((m) => m.name));
      const asked = new Set(exprs.flatMap((e) => e.match(/troupe_[a-z0-9_]+/g) ?? []).map((n) => n.replace(/_(bucket|sum|count)$/, '')));
      expect([...asked].filter((n) => !exported.has(n))).to.deep.equal([]);
    } finally {
      await system.shutdown();
    }
  });
});
