import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import {
  addCertificate,
  ensureDevCertificates,
  generateCertificates,
  loadIdentity,
  runGenerateCommand,
  type WriteResult,
} from '../../certs/index.js';
import { ErrorCodes } from '../../src/errors.js';
import { expectCode } from '../fixtures/expect-code.js';

const SET_FILES = [
  'ca.crt', 'ca.key',
  'manager.crt', 'manager.key',
  'worker-1.crt', 'worker-1.key',
  'worker-2.crt', 'worker-2.key',
  'client-1.crt', 'client-1.key',
];

function mode(file: string): number {
  return fs.statSync(file).mode & 0o777;
}

describe('certs: certificates directory', () => {
  let tmp: string;
  let set: string;
  let result: WriteResult;

  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-certs-'));
    set = path.join(tmp, 'set');
    result = generateCertificates({ out: set, hostnames: ['host.example', '10.1.2.3'] });
  });

  after(() => {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  describe('generateCertificates', () => {
    it('writes a CA, a manager, 2 workers and 1 client by default', () => {
      expect(result.files).to.deep.equal(SET_FILES.map((f) => path.join(set, f)));
      expect(fs.readdirSync(set).sort()).to.deep.equal([...SET_FILES].sort());
      expect(result.nodes.map((n) => `${n.name}:${n.role}`)).to.deep.equal(['manager:manager', 'worker-1:worker', 'worker-2:worker', 'client-1:client']);
    });

    it('writes keys mode 0600, certificates 0644, a new directory 0700', () => {
      for (const file of SET_FILES) {
        expect(mode(path.join(set, file)), file).to.equal(file.endsWith('.key') ? 0o600 : 0o644);
      }
      expect(mode(set)).to.equal(0o700);
    });

    it('signs every node certificate with the new CA, with its name and role', () => {
      const ca = new X509Certificate(fs.readFileSync(path.join(set, 'ca.crt')));
      for (const node of result.nodes) {
        const cert = new X509Certificate(fs.readFileSync(path.join(set, `${node.name}.crt`)));
        expect(cert.verify(ca.publicKey), node.name).to.equal(true);
        expect(cert.subject).to.equal(`CN=${node.name}\nO=troupe\nOU=${node.role}`);
      }
    });

    it('gives the manager the hostnames given and the local ones, the others none', () => {
      const manager = new X509Certificate(fs.readFileSync(path.join(set, 'manager.crt')));
      expect(manager.subjectAltName).to.equal(
        'DNS:host.example, IP Address:10.1.2.3, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1',
      );
      expect(new X509Certificate(fs.readFileSync(path.join(set, 'worker-1.crt'))).subjectAltName).to.equal(undefined);
    });

    it('refuses to overwrite, naming the files, and changes nothing', () => {
      const before = fs.readFileSync(path.join(set, 'ca.crt'), 'utf8');
      const err = expectCode(() => generateCertificates({ out: set }), ErrorCodes.CERT_EXISTS);
      expect(err.message).to.equal(`refusing to overwrite ${SET_FILES.map((f) => path.join(set, f)).join(', ')}; pass --force to replace them`);
      expect(fs.readFileSync(path.join(set, 'ca.crt'), 'utf8')).to.equal(before);
    });

    it('refuses when any single target exists, even a dangling symlink', () => {
      const dir = path.join(tmp, 'partial');
      fs.mkdirSync(dir);
      fs.symlinkSync(path.join(tmp, 'nowhere'), path.join(dir, 'worker-1.key'));
      const err = expectCode(() => generateCertificates({ out: dir, workers: 1, clients: 0 }), ErrorCodes.CERT_EXISTS);
      expect(err.message).to.equal(`refusing to overwrite ${path.join(dir, 'worker-1.key')}; pass --force to replace them`);
      expect(fs.readdirSync(dir)).to.deep.equal(['worker-1.key']);
      expect(fs.existsSync(path.join(tmp, 'nowhere'))).to.equal(false);
    });

    it('overwrites with force, and a replaced key gets mode 0600 even if the old file was 0644', () => {
      const dir = path.join(tmp, 'forced');
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, 'manager.key'), 'old', { mode: 0o644 });
      fs.writeFileSync(path.join(dir, 'ca.crt'), 'old');
      const { files } = generateCertificates({ out: dir, workers: 0, clients: 0, force: true });
      expect(files.map((f) => path.basename(f))).to.deep.equal(['ca.crt', 'ca.key', 'manager.crt', 'manager.key']);
      expect(mode(path.join(dir, 'manager.key'))).to.equal(0o600);
      expect(fs.readFileSync(path.join(dir, 'ca.crt'), 'utf8')).to.match(/^-----BEGIN CERTIFICATE-----/);
      expect(loadIdentity({ dir, name: 'manager' }).role).to.equal('manager');
    });

    it('takes a manager name, and refuses one that collides with a worker or the CA', () => {
      expectCode(() => generateCertificates({ out: path.join(tmp, 'x'), managerName: 'worker-1' }), ErrorCodes.SETTING);
      expectCode(() => generateCertificates({ out: path.join(tmp, 'x'), managerName: 'ca' }), ErrorCodes.SETTING);
      expect(fs.existsSync(path.join(tmp, 'x'))).to.equal(false);
    });

    it('checks the counts, the days and the hostnames before writing anything', () => {
      const out = path.join(tmp, 'never');
      expect(expectCode(() => generateCertificates({ out, workers: -1 }), ErrorCodes.SETTING).message).to.equal(
        'workers: expected a whole number from 0 to 1000, got -1',
      );
      expectCode(() => generateCertificates({ out, workers: 1001 }), ErrorCodes.SETTING);
      expectCode(() => generateCertificates({ out, clients: 0.5 }), ErrorCodes.SETTING);
      expectCode(() => generateCertificates({ out, days: 0 }), ErrorCodes.SETTING);
      expectCode(() => generateCertificates({ out, hostnames: ['no such host!'] }), ErrorCodes.SETTING);
      expectCode(() => generateCertificates({ out: '' }), ErrorCodes.SETTING);
      expect(fs.existsSync(out)).to.equal(false);
    });
  });

  describe('addCertificate', () => {
    it('issues one more certificate from the CA in the directory', () => {
      const added = addCertificate({ out: set, name: 'worker-3', role: 'worker', hostnames: ['w3.example'] });
      expect(added.files).to.deep.equal([path.join(set, 'worker-3.crt'), path.join(set, 'worker-3.key')]);
      expect(mode(path.join(set, 'worker-3.key'))).to.equal(0o600);
      expect(mode(path.join(set, 'worker-3.crt'))).to.equal(0o644);
      const identity = loadIdentity({ dir: set, name: 'worker-3' });
      expect(identity).to.include({ name: 'worker-3', role: 'worker' });
      expect(new X509Certificate(identity.cert).subjectAltName).to.equal('DNS:w3.example');
    });

    it('refuses to overwrite a node without force and replaces it with force', () => {
      const err = expectCode(() => addCertificate({ out: set, name: 'worker-1', role: 'worker' }), ErrorCodes.CERT_EXISTS);
      expect(err.message).to.include(path.join(set, 'worker-1.crt'));
      const old = fs.readFileSync(path.join(set, 'client-1.crt'), 'utf8');
      addCertificate({ out: set, name: 'client-1', role: 'client', force: true });
      expect(fs.readFileSync(path.join(set, 'client-1.crt'), 'utf8')).to.not.equal(old);
      expect(loadIdentity({ dir: set, name: 'client-1' }).role).to.equal('client');
    });

    it('says where the CA is missing', () => {
      const empty = fs.mkdtempSync(path.join(tmp, 'empty-'));
      const err = expectCode(() => addCertificate({ out: empty, name: 'worker-9', role: 'worker' }), ErrorCodes.CERT_MISSING);
      expect(err.message).to.match(new RegExp(`^${path.join(empty, 'ca.crt')}: no such file; .*troupe generate-tls-certificates`));
    });

    it('refuses the name "ca" and a role that is not one', () => {
      expectCode(() => addCertificate({ out: set, name: 'ca', role: 'worker' }), ErrorCodes.SETTING);
      expectCode(() => addCertificate({ out: set, name: 'x', role: 'admin' as never }), ErrorCodes.SETTING);
    });
  });

  describe('ensureDevCertificates', () => {
    it('creates a set when ca.crt is absent and leaves an existing one alone', () => {
      const dir = path.join(tmp, 'dev', 'certs');
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'manager.key'), 'left over'); // useless without its CA: replaced
      expect(ensureDevCertificates(dir, { workers: 0, clients: 0 }).created).to.equal(true);
      expect(fs.readdirSync(dir).sort()).to.deep.equal(['ca.crt', 'ca.key', 'manager.crt', 'manager.key']);
      expect(loadIdentity({ dir, name: 'manager' }).role).to.equal('manager');
      const ca = fs.readFileSync(path.join(dir, 'ca.crt'), 'utf8');
      expect(ensureDevCertificates(dir)).to.deep.equal({ created: false, files: [] });
      expect(fs.readFileSync(path.join(dir, 'ca.crt'), 'utf8')).to.equal(ca);
    });
  });

  describe('runGenerateCommand', () => {
    it('returns a summary of the files and the next steps', () => {
      const dir = path.join(tmp, 'cli');
      const summary = runGenerateCommand({ out: dir, workers: 1, clients: 0 });
      expect(summary).to.include(`to ${dir}:`);
      expect(summary).to.match(/ca\.key +the CA private key \(0600\)/);
      expect(summary).to.match(/worker-1\.key +private key of "worker-1" \(0600\)/);
      expect(summary).to.include(`scp ${path.join(dir, 'ca.crt')} ${path.join(dir, 'worker-1.crt')} ${path.join(dir, 'worker-1.key')} HOST:`);
      expect(summary).to.include('valid only for localhost, 127.0.0.1, ::1');
      expect(summary).to.include(`--out ${dir} --add worker-2 --role worker`);
    });

    it('adds one certificate with --add and --role, and wants the role', () => {
      const dir = path.join(tmp, 'cli');
      const summary = runGenerateCommand({ out: dir, add: 'worker-2', role: 'worker' });
      expect(summary).to.include('Issued a certificate for node "worker-2" (role worker)');
      expect(fs.existsSync(path.join(dir, 'worker-2.key'))).to.equal(true);
      expectCode(() => runGenerateCommand({ out: dir, add: 'worker-3' }), ErrorCodes.SETTING);
    });
  });
});
