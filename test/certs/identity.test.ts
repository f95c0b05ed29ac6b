import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { expect } from 'chai';
import {
  createAuthority,
  generateCertificates,
  issueCertificate,
  loadIdentity,
  peerIdentity,
  type Identity,
  type Pem,
} from '../../certs/index.js';
import { ErrorCodes } from '../../src/errors.js';
import { expectCode } from '../fixtures/expect-code.js';

describe('certs: identity', () => {
  let tmp: string;
  let set: string;
  let ca: Pem;
  const file = (name: string) => path.join(tmp, name);

  function writePair(name: string, pem: Pem): { cert: string; key: string } {
    fs.writeFileSync(file(`${name}.crt`), pem.cert);
    fs.writeFileSync(file(`${name}.key`), pem.key, { mode: 0o600 });
    return { cert: file(`${name}.crt`), key: file(`${name}.key`) };
  }

  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-certs-'));
    set = path.join(tmp, 'set');
    generateCertificates({ out: set, workers: 1, clients: 1 });
    ca = { cert: fs.readFileSync(path.join(set, 'ca.crt'), 'utf8'), key: fs.readFileSync(path.join(set, 'ca.key'), 'utf8') };
    const day = 24 * 60 * 60 * 1000;
    writePair('expired', issueCertificate(ca, { name: 'expired', role: 'worker', notBefore: new Date(Date.now() - 10 * day), notAfter: new Date(Date.now() - day) }));
    writePair('future', issueCertificate(ca, { name: 'future', role: 'worker', notBefore: new Date(Date.now() + day) }));
    writePair('no-role', issueCertificate(ca, { name: 'no-role', role: null }));
    writePair('stranger', issueCertificate(createAuthority(), { name: 'worker-1', role: 'worker' }));
    fs.writeFileSync(file('garbage.pem'), 'this is not PEM\n');
  });

  after(() => {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  const caPath = () => path.join(set, 'ca.crt');

  describe('loadIdentity', () => {
    it('loads a node from a directory and a name', () => {
      const identity = loadIdentity({ dir: set, name: 'worker-1' });
      expect(identity).to.include({ name: 'worker-1', role: 'worker', certPath: path.join(set, 'worker-1.crt') });
      expect(identity.cert).to.equal(fs.readFileSync(path.join(set, 'worker-1.crt'), 'utf8'));
      expect(identity.key).to.equal(fs.readFileSync(path.join(set, 'worker-1.key'), 'utf8'));
      expect(identity.ca).to.equal(ca.cert);
      expect(identity.notBefore.getTime()).to.be.lessThan(Date.now());
      expect(identity.notAfter.getTime()).to.be.greaterThan(Date.now());
    });

    it('loads a node from three paths, its role from the OU', () => {
      const identity = loadIdentity({ cert: path.join(set, 'manager.crt'), key: path.join(set, 'manager.key'), ca: caPath() });
      expect(identity).to.include({ name: 'manager', role: 'manager' });
    });

    it('names a missing file and how to make one', () => {
      const err = expectCode(() => loadIdentity({ dir: set, name: 'worker-7' }), ErrorCodes.CERT_MISSING);
      expect(err.message).to.equal(`${path.join(set, 'worker-7.crt')}: no such file; create certificates with \`troupe generate-tls-certificates\``);
      expectCode(() => loadIdentity({ cert: path.join(set, 'worker-1.crt'), key: path.join(set, 'worker-1.key'), ca: file('nope.crt') }), ErrorCodes.CERT_MISSING);
    });

    it('takes only a node name with a directory, never a path', () => {
      expectCode(() => loadIdentity({ dir: set, name: '../set/worker-1' }), ErrorCodes.SETTING);
    });

    it('refuses a file that is not PEM', () => {
      const cert = expectCode(() => loadIdentity({ cert: file('garbage.pem'), key: path.join(set, 'worker-1.key'), ca: caPath() }), ErrorCodes.CERT_INVALID);
      expect(cert.message).to.match(new RegExp(`^${file('garbage.pem')}: not a PEM certificate`));
      const key = expectCode(() => loadIdentity({ cert: path.join(set, 'worker-1.crt'), key: file('garbage.pem'), ca: caPath() }), ErrorCodes.CERT_INVALID);
      expect(key.message).to.match(new RegExp(`^${file('garbage.pem')}: not an unencrypted PEM private key`));
      expectCode(() => loadIdentity({ cert: path.join(set, 'worker-1.crt'), key: path.join(set, 'worker-1.key'), ca: file('garbage.pem') }), ErrorCodes.CERT_INVALID);
    });

    it('refuses a CA file that is not a CA', () => {
      const err = expectCode(
        () => loadIdentity({ cert: path.join(set, 'worker-1.crt'), key: path.join(set, 'worker-1.key'), ca: path.join(set, 'manager.crt') }),
        ErrorCodes.CERT_INVALID,
      );
      expect(err.message).to.include('not a CA certificate');
    });

    it('refuses the key of another certificate', () => {
      const err = expectCode(
        () => loadIdentity({ cert: path.join(set, 'worker-1.crt'), key: path.join(set, 'client-1.key'), ca: caPath() }),
        ErrorCodes.CERT_KEY_MISMATCH,
      );
      expect(err.message).to.equal(`${path.join(set, 'client-1.key')}: is not the private key of ${path.join(set, 'worker-1.crt')}`);
    });

    it('refuses a certificate of another CA', () => {
      const err = expectCode(() => loadIdentity({ ...pathsOf('stranger'), ca: caPath() }), ErrorCodes.CERT_UNTRUSTED);
      expect(err.message).to.match(new RegExp(`^${file('stranger.crt')}: not signed by the CA in ${caPath()}`));
    });

    it('refuses an expired certificate, giving the date', () => {
      const err = expectCode(() => loadIdentity({ ...pathsOf('expired'), ca: caPath() }), ErrorCodes.CERT_EXPIRED);
      expect(err.message).to.match(new RegExp(`^${file('expired.crt')}: expired on \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z; issue a new one`));
      expect(err.message).to.include('--add expired --role worker --force');
    });

    it('refuses a certificate that is not valid yet', () => {
      const err = expectCode(() => loadIdentity({ ...pathsOf('future'), ca: caPath() }), ErrorCodes.CERT_NOT_YET_VALID);
      expect(err.message).to.match(new RegExp(`^${file('future.crt')}: not valid before `));
    });

    it('checks validity at the time given', () => {
      const later = new Date(Date.now() + 400 * 24 * 60 * 60 * 1000);
      expectCode(() => loadIdentity({ dir: set, name: 'manager' }, later), ErrorCodes.CERT_EXPIRED);
      expectCode(() => loadIdentity({ dir: set, name: 'manager' }, new Date(0)), ErrorCodes.CERT_NOT_YET_VALID);
    });

    it('refuses a certificate without a role', () => {
      const err = expectCode(() => loadIdentity({ ...pathsOf('no-role'), ca: caPath() }), ErrorCodes.CERT_NO_ROLE);
      expect(err.message).to.include('CN=no-role, O=troupe');
    });
  });

  describe('peerIdentity', () => {
    it('reads the name from CN and the role from OU', () => {
      expect(peerIdentity({ subject: { CN: 'worker-1', O: 'troupe', OU: 'worker' } } as unknown as tls.PeerCertificate)).to.deep.equal({
        name: 'worker-1',
        role: 'worker',
      });
    });

    it('is null without exactly one valid name and one role', () => {
      const peer = (subject: unknown) => peerIdentity({ subject } as unknown as tls.PeerCertificate);
      expect(peer({ CN: 'worker-1', O: 'troupe' })).to.equal(null);
      expect(peer({ CN: 'worker-1', OU: 'admin' })).to.equal(null);
      expect(peer({ CN: 'worker-1', OU: ['worker', 'manager'] })).to.equal(null);
      expect(peer({ CN: ['a', 'b'], OU: 'worker' })).to.equal(null);
      expect(peer({ CN: 'not a name', OU: 'worker' })).to.equal(null);
      expect(peer({ OU: 'worker' })).to.equal(null);
      expect(peer(undefined)).to.equal(null);
      expect(peerIdentity({} as tls.PeerCertificate)).to.equal(null); // what getPeerCertificate() gives without a certificate
      expect(peerIdentity(null)).to.equal(null);
    });
  });

  describe('mutual TLS with these certificates', () => {
    let manager: Identity;
    let worker: Identity;
    let server: tls.Server;
    const sockets: tls.TLSSocket[] = [];

    before(async () => {
      manager = loadIdentity({ dir: set, name: 'manager' });
      worker = loadIdentity({ dir: set, name: 'worker-1' });
      server = tls.createServer({ requestCert: true, rejectUnauthorized: true, ca: manager.ca, cert: manager.cert, key: manager.key });
      server.on('secureConnection', (socket) => sockets.push(socket));
      server.on('tlsClientError', () => {}); // the refused client below
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    });

    after(async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    });

    function connect(servername: string): tls.TLSSocket {
      const { port } = server.address() as AddressInfo;
      const socket = tls.connect({ host: '127.0.0.1', port, servername, ca: worker.ca, cert: worker.cert, key: worker.key });
      sockets.push(socket);
      return socket;
    }

    it('authorizes both sides and each reads the other\'s name and role', async () => {
      const accepted = new Promise<tls.TLSSocket>((resolve) => server.once('secureConnection', resolve));
      const client = connect('localhost');
      await new Promise<void>((resolve, reject) => {
        client.once('secureConnect', resolve);
        client.once('error', reject);
      });
      const serverSide = await accepted;
      expect(client.authorized, String(client.authorizationError)).to.equal(true);
      expect(serverSide.authorized, String(serverSide.authorizationError)).to.equal(true);
      expect(peerIdentity(serverSide.getPeerCertificate())).to.deep.equal({ name: 'worker-1', role: 'worker' });
      expect(peerIdentity(client.getPeerCertificate())).to.deep.equal({ name: 'manager', role: 'manager' });
    });

    it('refuses a worker certificate posing as the manager, even one valid for the hostname', async () => {
      const fake = issueCertificate(ca, { name: 'worker-9', role: 'worker', hostnames: ['localhost'] });
      const impostor = tls.createServer({ ca: ca.cert, cert: fake.cert, key: fake.key });
      impostor.on('tlsClientError', () => {});
      await new Promise<void>((resolve) => impostor.listen(0, '127.0.0.1', resolve));
      try {
        const { port } = impostor.address() as AddressInfo;
        const client = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: worker.ca, cert: worker.cert, key: worker.key });
        sockets.push(client);
        const err = await new Promise<NodeJS.ErrnoException>((resolve) => client.once('error', resolve));
        expect(err.code).to.equal('INVALID_PURPOSE');
      } finally {
        await new Promise((resolve) => impostor.close(resolve));
      }
    });

    it('refuses a manager reached by a name its certificate does not carry', async () => {
      const client = connect('elsewhere.example');
      const err = await new Promise<NodeJS.ErrnoException>((resolve) => client.once('error', resolve));
      expect(err.code).to.equal('ERR_TLS_CERT_ALTNAME_INVALID');
    });
  });

  function pathsOf(name: string): { cert: string; key: string } {
    return { cert: file(`${name}.crt`), key: file(`${name}.key`) };
  }
});
