import { createPrivateKey, X509Certificate } from 'node:crypto';
import { expect } from 'chai';
import forge from 'node-forge';
import { createAuthority, issueCertificate, type Pem } from '../../certs/index.js';
import { ErrorCodes } from '../../src/errors.js';
import { expectCode } from '../fixtures/expect-code.js';

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const DAY_MS = 24 * 60 * 60 * 1000;

describe('certs: authority and node certificates', () => {
  let ca: Pem;
  let otherCa: Pem;
  let manager: Pem;
  let worker: Pem;
  let caX509: X509Certificate;

  before(() => {
    ca = createAuthority();
    otherCa = createAuthority({ days: 2 }); // the same subject, another key, a short life
    caX509 = new X509Certificate(ca.cert);
    manager = issueCertificate(ca, { name: 'manager', role: 'manager', hostnames: ['host.example', '10.1.2.3'] });
    worker = issueCertificate(ca, { name: 'worker-1', role: 'worker' });
  });

  describe('createAuthority', () => {
    it('makes a self-signed CA named troupe CA, valid 10 years', () => {
      expect(caX509.subject).to.equal('CN=troupe CA\nO=troupe');
      expect(caX509.issuer).to.equal(caX509.subject);
      expect(caX509.ca).to.equal(true);
      expect(caX509.verify(caX509.publicKey)).to.equal(true);
      const days = (Date.parse(caX509.validTo) - Date.now()) / DAY_MS;
      expect(days).to.be.closeTo(3650, 1);
      expect(ca.key).to.match(/^-----BEGIN PRIVATE KEY-----\n/);
      expect(ca.cert).to.not.include('\r');
    });

    it('uses RSA 2048 and a positive 128-bit serial number', () => {
      expect(caX509.publicKey.asymmetricKeyType).to.equal('rsa');
      expect(caX509.publicKey.asymmetricKeyDetails?.modulusLength).to.equal(2048);
      expect(caX509.serialNumber).to.match(/^[4-7][0-9A-F]{31}$/);
    });

    it('rejects an empty common name and a bad lifetime before generating anything', () => {
      expect(expectCode(() => createAuthority({ commonName: '' }), ErrorCodes.SETTING).message).to.equal(
        'commonName: expected a non-empty name of at most 64 characters, got ""',
      );
      expectCode(() => createAuthority({ days: 0 }), ErrorCodes.SETTING);
      expectCode(() => createAuthority({ days: 1.5 }), ErrorCodes.SETTING);
    });
  });

  describe('issueCertificate', () => {
    it('names the node in CN and its role in OU', () => {
      expect(new X509Certificate(manager.cert).subject).to.equal('CN=manager\nO=troupe\nOU=manager');
      expect(new X509Certificate(worker.cert).subject).to.equal('CN=worker-1\nO=troupe\nOU=worker');
      expect(new X509Certificate(worker.cert).issuer).to.equal('CN=troupe CA\nO=troupe');
    });

    it('gives a manager SANs for its hostnames plus localhost, 127.0.0.1 and ::1', () => {
      expect(new X509Certificate(manager.cert).subjectAltName).to.equal(
        'DNS:host.example, IP Address:10.1.2.3, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1',
      );
    });

    it('gives a worker no SAN unless hostnames are given', () => {
      expect(new X509Certificate(worker.cert).subjectAltName).to.equal(undefined);
    });

    it('writes IPv6 literals (bracketed or not, embedded IPv4 too) as IP entries, once each', () => {
      const pem = issueCertificate(ca, {
        name: 'client-1',
        role: 'client',
        hostnames: ['[fe80::1]', 'FE80::1', '2001:db8::10:0:1', '::ffff:10.0.0.1', 'Node.Example'],
      });
      expect(new X509Certificate(pem.cert).subjectAltName).to.equal(
        'IP Address:FE80:0:0:0:0:0:0:1, IP Address:2001:DB8:0:0:0:10:0:1, IP Address:0:0:0:0:0:FFFF:A00:1, DNS:node.example',
      );
    });

    it('allows client auth alone to a worker, so it cannot pose as a manager', () => {
      expect(new X509Certificate(worker.cert).keyUsage).to.deep.equal([CLIENT_AUTH]);
    });

    it('makes a manager a leaf for both server and client auth, with key identifiers', () => {
      const x509 = new X509Certificate(manager.cert);
      expect(x509.ca).to.equal(false);
      expect(x509.keyUsage).to.deep.equal([SERVER_AUTH, CLIENT_AUTH]); // Node's name for extKeyUsage
      const days = (Date.parse(x509.validTo) - Date.now()) / DAY_MS;
      expect(days).to.be.closeTo(365, 1);

      const cert = forge.pki.certificateFromPem(manager.cert);
      const keyUsage = cert.getExtension('keyUsage') as Record<string, unknown>;
      expect(keyUsage).to.include({ critical: true, digitalSignature: true, keyEncipherment: true, keyCertSign: false });
      expect(cert.getExtension('basicConstraints')).to.include({ critical: true, cA: false });
      const ski = (forge.pki.certificateFromPem(ca.cert).getExtension('subjectKeyIdentifier') as { subjectKeyIdentifier: string }).subjectKeyIdentifier;
      const aki = cert.getExtension('authorityKeyIdentifier') as { value: string };
      expect(forge.util.bytesToHex(aki.value)).to.equal(`301680${'14'}${ski}`); // SEQUENCE { [0] keyIdentifier }
    });

    it('verifies against its CA and not against another CA with the same name', () => {
      const x509 = new X509Certificate(worker.cert);
      const other = new X509Certificate(otherCa.cert);
      expect(x509.checkIssued(caX509)).to.equal(true);
      expect(x509.verify(caX509.publicKey)).to.equal(true);
      expect(x509.checkIssued(other)).to.equal(false); // authorityKeyIdentifier differs
      expect(x509.verify(other.publicKey)).to.equal(false);
    });

    it('leaves the OU out for role null', () => {
      const pem = issueCertificate(ca, { name: 'nobody', role: null });
      expect(new X509Certificate(pem.cert).subject).to.equal('CN=nobody\nO=troupe');
    });

    it('takes explicit validity dates', () => {
      const notBefore = new Date('2020-01-01T00:00:00Z');
      const notAfter = new Date('2020-06-01T00:00:00Z');
      const x509 = new X509Certificate(issueCertificate(ca, { name: 'old', role: 'worker', notBefore, notAfter }).cert);
      expect(new Date(x509.validFrom).toISOString()).to.equal(notBefore.toISOString());
      expect(new Date(x509.validTo).toISOString()).to.equal(notAfter.toISOString());
    });

    it('certifies a given key instead of making one (a renewal keeps its key)', () => {
      const renewed = issueCertificate(ca, { name: 'worker-1', role: 'worker', key: worker.key, days: 30 });
      expect(renewed.key).to.equal(worker.key);
      const [a, b] = [worker, renewed].map((p) => new X509Certificate(p.cert));
      expect(b!.publicKey.export({ format: 'pem', type: 'spki' })).to.equal(a!.publicKey.export({ format: 'pem', type: 'spki' }));
      expect(b!.serialNumber).to.not.equal(a!.serialNumber);
      expect(b!.checkPrivateKey(createPrivateKey(worker.key))).to.equal(true);
      expect(expectCode(() => issueCertificate(ca, { name: 'worker-1', role: 'worker', key: 'not a key' }), ErrorCodes.SETTING).message).to.match(/^key: expected an RSA private key in PEM/);
    });

    it('never outlives its CA', () => {
      const x509 = new X509Certificate(issueCertificate(otherCa, { name: 'worker-1', role: 'worker', days: 365 }).cert);
      expect(x509.validTo).to.equal(new X509Certificate(otherCa.cert).validTo);
    });

    it('checks every option before generating a key', () => {
      const bad = (opts: object) => expectCode(() => issueCertificate(ca, { name: 'worker-1', role: 'worker', ...opts }), ErrorCodes.SETTING);
      expect(bad({ name: '-worker' }).message).to.match(/^name: expected a node name.*got "-worker"$/);
      bad({ name: 'a'.repeat(64) });
      bad({ name: 'worker 1' });
      expect(bad({ role: 'admin' }).message).to.equal('role: expected one of "manager", "worker", "client", got "admin"');
      bad({ days: 0 });
      bad({ days: 36501 });
      expect(bad({ hostnames: ['bad host'] }).message).to.match(/^hostnames: expected a DNS name or an IPv4 \/ IPv6 address.*got "bad host"$/);
      bad({ hostnames: ['https://host.example'] });
      bad({ hostnames: ['host.example:7400'] });
      bad({ hostnames: 'host.example' });
      bad({ notBefore: new Date('nonsense') });
      bad({ notBefore: new Date('2020-01-02'), notAfter: new Date('2020-01-01') });
    });

    it('refuses a CA that does not parse or whose key is not its own', () => {
      expectCode(() => issueCertificate({ cert: 'garbage', key: ca.key }, { name: 'w', role: 'worker' }), ErrorCodes.CERT_INVALID);
      expectCode(() => issueCertificate({ cert: ca.cert, key: 'garbage' }, { name: 'w', role: 'worker' }), ErrorCodes.CERT_INVALID);
      expectCode(() => issueCertificate({ cert: ca.cert, key: otherCa.key }, { name: 'w', role: 'worker' }), ErrorCodes.CERT_KEY_MISMATCH);
      expectCode(() => issueCertificate(worker, { name: 'w', role: 'worker' }), ErrorCodes.CERT_INVALID); // not a CA
    });
  });
});
