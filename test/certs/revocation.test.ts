/**
 * The revocation list: a real X.509 CRL signed by the CA (checked with the openssl binary, from the
 * test only), revoking in a certificates directory, and the manager's watcher of the file.
 */
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import {
  addCertificate,
  buildRevocationList,
  createAuthority,
  generateCertificates,
  readRevocationList,
  revokeCertificates,
  RevocationWatcher,
  type RevocationList,
} from '../../certs/index.js';
import { parseAuthority } from '../../certs/x509.js';
import type { CertificateError } from '../../src/errors.js';

const serialOf = (file: string) => new X509Certificate(fs.readFileSync(file)).serialNumber.toLowerCase();

describe('certs: revocation', function () {
  this.timeout(20_000);
  let dir: string;

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-crl-'));
    generateCertificates({ out: dir, workers: 2, clients: 1 });
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const ca = () => ({ cert: fs.readFileSync(path.join(dir, 'ca.crt'), 'utf8'), key: fs.readFileSync(path.join(dir, 'ca.key'), 'utf8') });
  const crlPath = () => path.join(dir, 'revoked.crl');

  describe('the list', () => {
    it('builds a v2 CRL that OpenSSL verifies against the CA, and reads it back', () => {
      const at = new Date('2026-06-01T12:00:00Z');
      const pem = buildRevocationList(parseAuthority(ca()), { number: 4, thisUpdate: at, nextUpdate: new Date('2060-01-01T00:00:00Z'), entries: [{ serial: 'FF', revokedAt: at }, { serial: '00aB12', revokedAt: at }] });
      expect(pem.startsWith('-----BEGIN X509 CRL-----\n')).to.equal(true);
      const file = path.join(dir, 'unit.crl');
      fs.writeFileSync(file, pem);
      const text = execFileSync('openssl', ['crl', '-in', file, '-CAfile', path.join(dir, 'ca.crt'), '-verify', '-noout', '-text'], { encoding: 'utf8', stdio: 'pipe' });
      expect(text).to.match(/Version 2 \(0x1\)/);
      expect(text).to.match(/X509v3 CRL Number: \n\s+4/);
      expect(text).to.match(/Serial Number: FF\n/);
      expect(text).to.match(/Serial Number: AB12\n/);
      expect(text).to.match(/Next Update: Jan  1 00:00:00 2060 GMT/);
      expect(readRevocationList(pem, ca().cert)).to.deep.equal({
        number: 4,
        thisUpdate: at,
        nextUpdate: new Date('2060-01-01T00:00:00Z'),
        entries: [{ serial: 'ff', revokedAt: at }, { serial: 'ab12', revokedAt: at }],
      } satisfies RevocationList);
    });

    it('refuses a list of another CA (same name), an altered one, and one that is not a CRL: TROUPE_E_CRL_INVALID', () => {
      const other = buildRevocationList(parseAuthority(createAuthority()), { number: 1, thisUpdate: new Date(), entries: [] });
      const refuse = (pem: string) => {
        try {
          readRevocationList(pem, ca().cert, 'x.crl');
        } catch (err) {
          expect((err as CertificateError).code).to.equal('TROUPE_E_CRL_INVALID');
          return (err as Error).message;
        }
        return expect.fail('accepted');
      };
      expect(refuse(other)).to.equal('x.crl: its signature does not verify against the cluster CA (signed by another key, or altered)');
      const mine = buildRevocationList(parseAuthority(ca()), { number: 1, thisUpdate: new Date(), entries: [{ serial: '01', revokedAt: new Date() }] });
      const der = Buffer.from(mine.split('\n').filter((l) => !l.startsWith('-----')).join(''), 'base64');
      const at = der.indexOf(Buffer.from([0x02, 0x01, 0x01]), 60); // the entry's serial, INTEGER 1
      der[at + 2] = 0x02;
      const altered = `-----BEGIN X509 CRL-----\n${der.toString('base64')}\n-----END X509 CRL-----\n`;
      expect(refuse(altered)).to.equal('x.crl: its signature does not verify against the cluster CA (signed by another key, or altered)');
      expect(refuse('hello')).to.match(/^x\.crl: not a PEM X\.509 CRL/);
      expect(refuse(ca().cert)).to.match(/^x\.crl: not a PEM X\.509 CRL \(expected one "BEGIN X509 CRL" block, found 0\)/);
    });
  });

  describe('revokeCertificates', () => {
    it('by name: the current certificate, then every replaced one; the list number grows; nothing twice', () => {
      const first = serialOf(path.join(dir, 'worker-1.crt'));
      const added = addCertificate({ out: dir, name: 'worker-1', role: 'worker', force: true });
      expect(added.replaced).to.include({ name: 'worker-1', role: 'worker', serial: first });
      const second = serialOf(path.join(dir, 'worker-1.crt'));

      const replaced = revokeCertificates({ out: dir, name: 'worker-1', replacedOnly: true });
      expect([replaced.number, replaced.total, replaced.revoked, replaced.already]).to.deep.equal([1, 1, [{ serial: first, name: 'worker-1', current: false }], []]);
      const all = revokeCertificates({ out: dir, name: 'worker-1' });
      expect([all.number, all.total, all.revoked, all.already]).to.deep.equal([2, 2, [{ serial: second, name: 'worker-1', current: true }], [{ serial: first, name: 'worker-1', current: false }]]);
      const again = revokeCertificates({ out: dir, name: 'worker-1' });
      expect([again.number, again.revoked.length, again.already.length]).to.deep.equal([2, 0, 2]);
      expect(readRevocationList(fs.readFileSync(crlPath(), 'utf8'), ca().cert).entries.map((e) => e.serial)).to.deep.equal([first, second]);
    });

    it('by serial; a name it knows nothing of, or both name and serial: clear errors', () => {
      const result = revokeCertificates({ out: dir, serials: ['0x00DEADBEEF'] });
      expect(result.revoked).to.deep.equal([{ serial: 'deadbeef' }]);
      expect(() => revokeCertificates({ out: dir, name: 'worker-9' })).to.throw(`${dir} has no certificate named "worker-9" (worker-9.crt), nor a record of one replaced; revoke by --serial instead`);
      expect(() => revokeCertificates({ out: dir, name: 'worker-2', replacedOnly: true })).to.throw(/has no record of a replaced certificate named "worker-2"/);
      expect(() => revokeCertificates({ out: dir, name: 'worker-2', serials: ['01'] })).to.throw(/either a node name or serial numbers/);
      expect(() => revokeCertificates({ out: dir, serials: ['xyz'] })).to.throw('"xyz" is not a serial number in hex');
    });

    it('a new CA removes the list and the record of replaced certificates: they were the old CA\'s', () => {
      const fresh = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-crl-new-'));
      try {
        generateCertificates({ out: fresh, workers: 1, clients: 0 });
        addCertificate({ out: fresh, name: 'worker-1', role: 'worker', force: true });
        revokeCertificates({ out: fresh, name: 'worker-1' });
        expect(fs.existsSync(path.join(fresh, 'revoked.crl')) && fs.existsSync(path.join(fresh, 'replaced.jsonl'))).to.equal(true);
        generateCertificates({ out: fresh, workers: 1, clients: 0, force: true });
        expect([fs.existsSync(path.join(fresh, 'revoked.crl')), fs.existsSync(path.join(fresh, 'replaced.jsonl'))]).to.deep.equal([false, false]);
      } finally {
        fs.rmSync(fresh, { recursive: true, force: true });
      }
    });
  });

  describe('RevocationWatcher', () => {
    let watched: string;
    let watcher: RevocationWatcher | undefined;
    beforeEach(() => {
      watched = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-crl-watch-'));
    });
    afterEach(() => {
      watcher?.stop();
      fs.rmSync(watched, { recursive: true, force: true });
    });

    const file = () => path.join(watched, 'revoked.crl');
    const write = (pem: string) => {
      fs.writeFileSync(`${file()}.tmp`, pem);
      fs.renameSync(`${file()}.tmp`, file());
    };
    const list = (number: number, serials: string[], signer = parseAuthority(ca())) => buildRevocationList(signer, { number, thisUpdate: new Date(), entries: serials.map((serial) => ({ serial, revokedAt: new Date() })) });

    it('no file: nothing revoked; a list written later is reloaded; a bad, older or deleted one is refused and the last good stays', async () => {
      watcher = RevocationWatcher.start({ file: file(), ca: ca().cert, pollMs: 60_000 });
      expect([watcher.list, watcher.isRevoked('0A')]).to.deep.equal([undefined, false]);
      write(list(2, ['0a', 'ff01']));
      const [loaded] = (await once(watcher, 'reloaded')) as [RevocationList];
      expect(loaded.number).to.equal(2);
      expect([watcher.isRevoked('0A'), watcher.isRevoked('00FF01'), watcher.isRevoked('0b')]).to.deep.equal([true, true, false]);

      write(list(3, [], parseAuthority(createAuthority())));
      const [forged] = (await once(watcher, 'invalid')) as [CertificateError];
      expect(forged.message).to.equal(`${file()}: its signature does not verify against the cluster CA (signed by another key, or altered); the last good list (number 2, 2 revoked) stays in force`);
      write(list(1, []));
      const [older] = (await once(watcher, 'invalid')) as [CertificateError];
      expect(older.message).to.equal(`${file()}: list number 1 is older than the one in force (2); the last good list (number 2, 2 revoked) stays in force`);
      fs.rmSync(file());
      const [gone] = (await once(watcher, 'invalid')) as [CertificateError];
      expect(gone.message).to.equal(`${file()}: gone; the last list read (number 2, 2 revoked) stays in force`);
      expect(watcher.isRevoked('0a')).to.equal(true);
      write(list(3, ['0a', 'ff01', '0b']));
      await once(watcher, 'reloaded');
      expect(watcher.isRevoked('0b')).to.equal(true);
    });

    it('a list that does not verify at start throws TROUPE_E_CRL_INVALID', () => {
      write(list(1, [], parseAuthority(createAuthority())));
      expect(() => RevocationWatcher.start({ file: file(), ca: ca().cert })).to.throw(`${file()}: its signature does not verify against the cluster CA (signed by another key, or altered)`);
    });
  });
});
