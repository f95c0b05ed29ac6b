import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ErrorCodes, TroupeError } from '../../src/errors.js';
import { expandHostRange } from '../../src/deploy/host-range.js';
import { loadInventory, parseInventory, selectHosts } from '../../src/deploy/inventory.js';

const FILE = '/etc/lab/troupe-hosts.yaml';
const ENV = { home: '/home/op', user: 'op' };

function inventoryError(text: string): TroupeError {
  try {
    parseInventory(text, FILE, ENV);
  } catch (err) {
    expect(err).to.be.instanceOf(TroupeError);
    expect((err as TroupeError).code).to.equal(ErrorCodes.INVENTORY);
    return err as TroupeError;
  }
  throw new Error('expected TROUPE_E_INVENTORY');
}

describe('deploy inventory', () => {
  it('expands ClusterShell host ranges, with padding and several brackets', () => {
    expect(expandHostRange('w[01-03].lab')).to.deep.equal(['w01.lab', 'w02.lab', 'w03.lab']);
    expect(expandHostRange('n[1,3,8-10]')).to.deep.equal(['n1', 'n3', 'n8', 'n9', 'n10']);
    expect(expandHostRange('r[1-2]n[1-2]')).to.deep.equal(['r1n1', 'r1n2', 'r2n1', 'r2n2']);
    expect(expandHostRange('db1')).to.deep.equal(['db1']);
    expect(() => expandHostRange('w[3-1]')).to.throw(/runs backwards/);
    expect(() => expandHostRange('w[1-2')).to.throw(/unbalanced/);
    expect(() => expandHostRange('w[1-100000]')).to.throw(/more than 10000/);
  });

  it('reads defaults, a deployed manager, workers from ranges, tags and groups', () => {
    const inv = parseInventory(
      [
        'defaults:',
        '  user: troupe',
        '  identity: keys/id_ed25519',
        '  dir: /srv/troupe/{name}',
        'knownHosts: ~/lab/known_hosts',
        'manager:',
        '  address: 10.0.0.5',
        '  hostnames: [mgr.lab]',
        'workers:',
        '  - name: w[01-03]',
        '    address: 10.0.1.[1-3]',
        '    tags: [gpu]',
        '    slots: 4',
        '  - name: db1',
        '    sshPort: 2222',
        '    user: admin',
        'groups:',
        '  odd: [w01, w03]',
      ].join('\n'),
      FILE,
      ENV,
    );
    expect(inv.manager).to.include({ name: 'manager', address: '10.0.0.5', port: 7400 });
    expect(inv.knownHosts).to.equal('/home/op/lab/known_hosts');
    expect(inv.hosts.map((h) => [h.name, h.role, h.address, h.sshPort, h.user, h.dir])).to.deep.equal([
      ['manager', 'manager', '10.0.0.5', 22, 'troupe', '/srv/troupe/manager'],
      ['w01', 'worker', '10.0.1.1', 22, 'troupe', '/srv/troupe/w01'],
      ['w02', 'worker', '10.0.1.2', 22, 'troupe', '/srv/troupe/w02'],
      ['w03', 'worker', '10.0.1.3', 22, 'troupe', '/srv/troupe/w03'],
      ['db1', 'worker', 'db1', 2222, 'admin', '/srv/troupe/db1'],
    ]);
    expect(inv.hosts[1]).to.include({ identity: '/etc/lab/keys/id_ed25519', slots: 4, node: 'node', service: 'auto' });
    expect(inv.hosts[1]!.tags).to.deep.equal(['gpu']);
    expect(inv.hosts[0]!.hostnames).to.deep.equal(['mgr.lab']);
    expect(selectHosts(inv, '@gpu').map((h) => h.name)).to.deep.equal(['w01', 'w02', 'w03']);
    expect(selectHosts(inv, '@odd,db1').map((h) => h.name)).to.deep.equal(['w01', 'w03', 'db1']);
    expect(selectHosts(inv, 'w[02-03]').map((h) => h.name)).to.deep.equal(['w02', 'w03']);
    expect(selectHosts(inv, undefined)).to.have.length(5);
    expect(() => selectHosts(inv, '@nope')).to.throw(/no group "nope"/);
    expect(() => selectHosts(inv, 'w09')).to.throw(/no host "w09"/);
  });

  it('a local manager is not a host; defaults apply without a defaults key', () => {
    const inv = parseInventory('manager:\n  local: true\n  address: 127.0.0.1\n  port: 7401\nworkers:\n  - name: a\n', FILE, ENV);
    expect(inv.manager).to.deep.equal({ name: 'manager', address: '127.0.0.1', port: 7401 });
    expect(inv.hosts.map((h) => [h.name, h.user, h.sshPort, h.dir, h.identity])).to.deep.equal([['a', 'op', 22, '.troupe', undefined]]);
  });

  it('names the file, the line and the key of each mistake', () => {
    const base = 'manager:\n  local: true\n  address: 10.0.0.5\nworkers:\n';
    expect(inventoryError(`${base}  - name: a\n    slots: many\n`).message).to.equal(`${FILE}:6: workers[0].slots: expected a whole number from 1 to 10000, got "many"`);
    expect(inventoryError(`${base}  - name: a\n    sslots: 2\n`).message).to.match(new RegExp(`^${FILE}:6: workers\\[0\\]\\.sslots: unknown key`));
    expect(inventoryError(`${base}  - name: w[1-2]\n  - name: w2\n`).message).to.equal(`${FILE}:6: name: "w2" is defined twice (also on line 5); node names must be unique`);
    expect(inventoryError(`${base}  - name: w[2-1]\n`).message).to.equal(`${FILE}:5: workers[0].name: "2-1" in "w[2-1]" runs backwards`);
    expect(inventoryError(`defaults:\n  sshPort: 70000\n${base}  - name: a\n`).message).to.equal(`${FILE}:2: defaults.sshPort: expected a whole number from 1 to 65535, got 70000`);
    expect(inventoryError(`${base}  - name: a\ngroups:\n  g: [b]\n`).message).to.equal(`${FILE}:7: groups.g[0]: expected names of hosts in this inventory, got "b"`);
    expect(inventoryError(`${base}  - name: a\n    service: docker\n`).message).to.match(/:6: workers\[0\]\.service: expected one of auto, systemd, process/);
    expect(inventoryError(`manager:\n  port: 7400\nworkers: []\n`).message).to.match(/:1: manager: expected an "address" key/);
    expect(inventoryError(`workers: [\n`).message).to.match(new RegExp(`^${FILE}:\\d+: not valid YAML`));
    expect(inventoryError(`${base}  - name: a\n    dir: ../../etc\n`).message).to.match(/:6: workers\[0\]\.dir: expected a directory path without "\.\."/);
  });

  it('a missing file is TROUPE_E_INVENTORY with a hint', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trp-inv-'));
    try {
      expect(() => loadInventory(path.join(dir, 'troupe-hosts.yaml'))).to.throw(/troupe-hosts\.yaml: no such file/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
