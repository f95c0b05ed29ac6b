/**
 * `receptionist.listing(key, onListing)` as an embedder uses it: the first call comes after
 * listing() has returned, on the manager (whose registry is local and answers at once) as on a
 * worker, so the callback may unsubscribe from inside; after the unsubscribe, nothing more.
 */
import { expect } from 'chai';
import type { ActorRef } from '../../protocols/actor-ref.js';
import type { ListingEntry } from '../../protocols/cluster-messages.js';
import { ClusterSystem } from '../../src/cluster/cluster-system.js';
import { silentLogger } from '../../src/log.js';
import { testPki } from '../fixtures/pki.js';
import { spawnEcho } from '../fixtures/test-actors.js';
import { TEST_MESSAGES } from '../fixtures/test-protocol.js';

describe('receptionist.listing, on the manager and on a worker', function () {
  const systems: ClusterSystem[] = [];
  let manager: ClusterSystem;
  let worker: ClusterSystem;
  let echo: ActorRef;

  before(async function () {
    const pki = testPki();
    systems.push((manager = await ClusterSystem.start({ identity: pki.identity('manager'), listen: { host: '127.0.0.1', port: 0 }, messages: TEST_MESSAGES, log: silentLogger() })));
    systems.push((worker = await ClusterSystem.start({ identity: pki.identity('worker-1'), join: { host: '127.0.0.1', port: manager.address!.port }, messages: TEST_MESSAGES, log: silentLogger() })));
    await worker.ready();
    echo = spawnEcho(worker);
    worker.receptionist.checkIn('listing-test', echo, { n: 1 });
    await manager.receptionist.lookup('listing-test'); // the manager has it now
  });

  after(async function () {
    await Promise.all(systems.reverse().map((s) => s.shutdown()));
  });

  for (const side of ['manager', 'worker'] as const) {
    it(`on the ${side}: the first listing comes after listing() returns, and the callback may unsubscribe`, async function () {
      const system = side === 'manager' ? manager : worker;
      const calls: ListingEntry[][] = [];
      let returned = false;
      let firstCallAfterReturn: boolean | undefined;
      const seen = new Promise<void>((resolve) => {
        const stop = system.receptionist.listing('listing-test', (entries) => {
          firstCallAfterReturn ??= returned;
          calls.push(entries);
          stop(); // the natural pattern: a ReferenceError, before, on the manager
          resolve();
        });
        returned = true;
      });
      await seen;
      expect(firstCallAfterReturn).to.equal(true);
      expect(calls.map((entries) => entries.map((e) => e.ref.toString()))).to.deep.equal([[echo.toString()]]);
      // A change after the unsubscribe: a subscriber still listening hears it; the one that left does not.
      let stopControl: () => void = () => {};
      const controlSawTwo = new Promise<void>((resolve) => {
        stopControl = system.receptionist.listing('listing-test', (entries) => entries.length === 2 && resolve());
      });
      const other = worker.receiver(() => {});
      worker.receptionist.checkIn('listing-test', other, { n: 2 });
      await controlSawTwo;
      stopControl();
      expect(calls).to.have.length(1);
      worker.receptionist.checkOut('listing-test', other);
      worker.dropReceiver(other);
    });
  }
});
