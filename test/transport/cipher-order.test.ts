/**
 * The listening side chooses AES-128-GCM (cipher-order.ts): real TLS on loopback, against a client
 * on Node's defaults (which put AES-256-GCM first).
 */
import { expect } from 'chai';
import tls from 'node:tls';
import { TransportServer } from '../../src/transport/websocket-server.js';
import { transportSettings } from '../../src/transport/settings.js';
import { LINK_CIPHERS } from '../../src/transport/cipher-order.js';
import { silentLogger } from '../../src/log.js';
import { testPki } from '../fixtures/pki.js';

describe('TLS cipher order: the listening side chooses AES-128-GCM', function () {
  const cleanups: (() => unknown)[] = [];
  afterEach(async function () {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('keeps exactly the suites of Node\'s default list, AES-128-GCM first', function () {
    expect(LINK_CIPHERS.split(':').sort()).to.deep.equal(tls.DEFAULT_CIPHERS.split(':').sort());
    expect(LINK_CIPHERS.split(':')[0]).to.equal('TLS_AES_128_GCM_SHA256');
  });

  it('the listening side chooses AES-128-GCM for a client on Node\'s defaults', async function () {
    const pki = testPki();
    const server = new TransportServer({
      tls: pki.identity('manager'),
      host: '127.0.0.1',
      port: 0,
      settings: transportSettings(),
      log: silentLogger(),
      welcome: () => {
        throw new Error('no hello is sent in this test');
      },
    });
    const { port } = await server.listen();
    cleanups.push(() => server.close());
    const client = pki.identity('worker-1');
    const socket = tls.connect({ host: '127.0.0.1', port, ca: client.ca, cert: client.cert, key: client.key, servername: '' });
    cleanups.push(() => socket.destroy());
    await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
    expect(socket.getCipher().standardName).to.equal('TLS_AES_128_GCM_SHA256');
  });
});
