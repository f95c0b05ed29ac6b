/**
 * Large writes go to the TLS socket alone (large-writes.ts): on a real TLS connection on loopback, a
 * corked batch's large buffers reach the socket's `_write` as the very buffers given (no copy into
 * one buffer with their neighbours), the small ones between them joined, every byte in order.
 */
import { expect } from 'chai';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { LARGE_WRITE_BYTES, partsOf, writeLargeAlone } from '../../src/transport/large-writes.js';
import { testPki } from '../fixtures/pki.js';

describe('large writes go to the TLS socket alone', function () {
  const cleanups: (() => unknown)[] = [];
  afterEach(async function () {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('a batch without a large buffer (or with a string) is left to be written as one', function () {
    const small = (n: number) => ({ chunk: Buffer.alloc(n), encoding: 'buffer' as const });
    expect(partsOf([small(10), small(LARGE_WRITE_BYTES - 1)])).to.equal(undefined);
    expect(partsOf([small(10), { chunk: 'x'.repeat(LARGE_WRITE_BYTES), encoding: 'utf8' }])).to.equal(undefined);
    expect(partsOf(Object.assign([small(LARGE_WRITE_BYTES)], { allBuffers: false }))).to.equal(undefined);
  });

  it('a corked batch: each large buffer is written as it is, the small ones between them joined, every byte in order', async function () {
    const pki = testPki();
    const manager = pki.identity('manager');
    const received: Buffer[] = [];
    const server = tls.createServer({ cert: manager.cert, key: manager.key });
    const ended = new Promise<Buffer>((resolve) => {
      server.on('secureConnection', (socket) => {
        socket.on('data', (d: Buffer) => received.push(d));
        socket.on('end', () => resolve(Buffer.concat(received)));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => server.close(resolve)));
    const socket = tls.connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, ca: manager.ca, servername: '', checkServerIdentity: () => undefined });
    cleanups.push(() => socket.destroy());
    await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
    writeLargeAlone(socket);
    writeLargeAlone(socket); // idempotent
    const written: Buffer[] = [];
    const s = socket as unknown as { _write: (d: Buffer, e: string, cb: () => void) => void };
    const write = s._write;
    s._write = function (this: unknown, d, e, cb) {
      written.push(d);
      write.call(this, d, e, cb);
    };

    const a = Buffer.from('frame header');
    const large1 = Buffer.alloc(100 * 1024, 7);
    const b = Buffer.from('raw header');
    const c = Buffer.from('another header');
    const large2 = Buffer.alloc(LARGE_WRITE_BYTES, 9);
    const all = [a, large1, b, c, large2];
    const called: number[] = [];
    socket.cork();
    all.forEach((buffer, i) => socket.write(buffer, () => called.push(i)));
    socket.uncork();
    await new Promise<void>((resolve) => socket.end(resolve));

    expect(await ended).to.deep.equal(Buffer.concat(all));
    expect(called.sort()).to.deep.equal([0, 1, 2, 3, 4]);
    expect(written).to.have.length(4);
    expect(written[0]).to.deep.equal(a);
    expect(written[1]).to.equal(large1);
    expect(written[2]).to.deep.equal(Buffer.concat([b, c]));
    expect(written[3]).to.equal(large2);
  });
});
