import { expect } from 'chai';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import forge from 'node-forge';
import { createAuthority, makeSigningRequest, signRequest } from '../../certs/index.js';
import { ErrorCodes } from '../../src/errors.js';

describe('certs: signing requests (the key stays where it was made)', () => {
  const ca = createAuthority();
  let dir: string;
  before(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trp-csr-'))));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('makes the key once (0600), and the signer decides name and role, not the request', () => {
    const key = path.join(dir, 'certs', 'w1.key');
    const first = makeSigningRequest({ key, name: 'w1', role: 'manager' });
    expect(first.keyCreated).to.equal(true);
    expect(fs.statSync(key).mode & 0o777).to.equal(0o600);
    const again = makeSigningRequest({ key, name: 'w1', role: 'worker' });
    expect(again.keyCreated).to.equal(false);
    const pem = signRequest(ca, first.csr, { name: 'w1', role: 'worker' }); // the request asked for manager
    const cert = new X509Certificate(pem);
    expect(cert.subject).to.include('CN=w1').and.include('OU=worker');
    expect(cert.checkIssued(new X509Certificate(ca.cert))).to.equal(true);
    expect(cert.checkPrivateKey(createPrivateKey(fs.readFileSync(key, 'utf8')))).to.equal(true);
    const renewed = makeSigningRequest({ key, name: 'w1', role: 'worker', newKey: true });
    expect(renewed.keyCreated).to.equal(true);
  });

  it('refuses a request for a key its maker does not hold (the signature does not verify)', () => {
    const held = forge.pki.rsa.generateKeyPair({ bits: 1024 });
    const claimed = forge.pki.rsa.generateKeyPair({ bits: 1024 });
    const csr = forge.pki.createCertificationRequest();
    csr.publicKey = claimed.publicKey;
    csr.setSubject([{ name: 'commonName', value: 'w2' }]);
    csr.sign(held.privateKey, forge.md.sha256.create());
    const pem = forge.pki.certificationRequestToPem(csr);
    expect(() => signRequest(ca, pem, { name: 'w2', role: 'worker' })).to.throw(/does not verify/).with.property('code', ErrorCodes.CERT_INVALID);
    expect(() => signRequest(ca, 'not a request', { name: 'w2', role: 'worker' })).to.throw().with.property('code', ErrorCodes.CERT_INVALID);
  });
});
