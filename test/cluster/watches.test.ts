import { expect } from 'chai';
import { WatchBook } from '../../src/cluster/watches.js';
import { ActorRef } from '../../protocols/actor-ref.js';

const ref = (node: string, path: string): ActorRef => new ActorRef(node, path);
const ids = (refs: ActorRef[]): string[] => refs.map(String).sort();
const pairs = (list: { watcher: ActorRef; target: ActorRef }[]): string[] => list.map((p) => `${p.watcher} -> ${p.target}`).sort();

describe('unit: cluster watches (WatchBook)', () => {
  let book: WatchBook;
  beforeEach(() => {
    book = new WatchBook();
  });

  describe('watchers of local targets', () => {
    it('takeWatchers returns each watcher once, by value, and forgets them', () => {
      book.addWatcher('job', ref('manager', 'w'));
      book.addWatcher('job', ref('manager', 'w')); // the same ref, another object
      book.addWatcher('job', ref('client-1', 'w'));
      book.addWatcher('other', ref('manager', 'x'));
      expect(ids(book.takeWatchers('job'))).to.deep.equal(['client-1/w', 'manager/w']);
      expect(book.takeWatchers('job')).to.deep.equal([]);
      expect(ids(book.takeWatchers('other'))).to.deep.equal(['manager/x']);
    });

    it('takeWatchers of an actor nobody watches is empty', () => {
      expect(book.takeWatchers('nobody')).to.deep.equal([]);
    });

    it('removeWatcher removes that watcher only; removing an unknown one is harmless', () => {
      book.addWatcher('job', ref('manager', 'w'));
      book.addWatcher('job', ref('client-1', 'w'));
      book.removeWatcher('job', ref('manager', 'w'));
      book.removeWatcher('job', ref('manager', 'never'));
      book.removeWatcher('nothing', ref('manager', 'w'));
      expect(ids(book.takeWatchers('job'))).to.deep.equal(['client-1/w']);
    });

    it('dropWatchersOn forgets the watchers that lived on a node, on every target', () => {
      book.addWatcher('a', ref('client-1', 'w'));
      book.addWatcher('a', ref('manager', 'w'));
      book.addWatcher('b', ref('client-1', 'v'));
      book.dropWatchersOn('client-1');
      expect(ids(book.takeWatchers('a'))).to.deep.equal(['manager/w']);
      expect(book.takeWatchers('b')).to.deep.equal([]);
    });
  });

  describe('outgoing watches on remote targets', () => {
    it('addOutgoing is true the first time only; outgoing lists each pair once', () => {
      expect(book.addOutgoing(ref('manager', 'w'), ref('worker-1', 'job'))).to.equal(true);
      expect(book.addOutgoing(ref('manager', 'w'), ref('worker-1', 'job'))).to.equal(false);
      expect(book.addOutgoing(ref('manager', 'v'), ref('worker-1', 'job'))).to.equal(true);
      expect(book.addOutgoing(ref('manager', 'w'), ref('worker-2', 'job'))).to.equal(true);
      expect(pairs(book.outgoing())).to.deep.equal([
        'manager/v -> worker-1/job',
        'manager/w -> worker-1/job',
        'manager/w -> worker-2/job',
      ]);
    });

    it('removeOutgoing is true when there was such a watch', () => {
      book.addOutgoing(ref('manager', 'w'), ref('worker-1', 'job'));
      expect(book.removeOutgoing(ref('manager', 'w'), ref('worker-1', 'job'))).to.equal(true);
      expect(book.removeOutgoing(ref('manager', 'w'), ref('worker-1', 'job'))).to.equal(false);
      expect(book.removeOutgoing(ref('manager', 'w'), ref('worker-9', 'job'))).to.equal(false);
      expect(book.outgoing()).to.deep.equal([]);
      expect(book.addOutgoing(ref('manager', 'w'), ref('worker-1', 'job'))).to.equal(true);
    });

    it('takeOutgoingTo returns and forgets the watches on a node\'s actors, and no others', () => {
      book.addOutgoing(ref('manager', 'w'), ref('worker-1', 'a'));
      book.addOutgoing(ref('manager', 'v'), ref('worker-1', 'b'));
      book.addOutgoing(ref('manager', 'w'), ref('worker-2', 'a'));
      expect(pairs(book.takeOutgoingTo('worker-1'))).to.deep.equal(['manager/v -> worker-1/b', 'manager/w -> worker-1/a']);
      expect(book.takeOutgoingTo('worker-1')).to.deep.equal([]);
      expect(pairs(book.outgoing())).to.deep.equal(['manager/w -> worker-2/a']);
    });

    it('takeOutgoingOf returns and forgets the watches a stopped local actor held, on every node', () => {
      book.addOutgoing(ref('manager', 'w'), ref('worker-1', 'a'));
      book.addOutgoing(ref('manager', 'w'), ref('worker-2', 'a'));
      book.addOutgoing(ref('manager', 'w/child'), ref('worker-2', 'b'));
      expect(pairs(book.takeOutgoingOf('w'))).to.deep.equal(['manager/w -> worker-1/a', 'manager/w -> worker-2/a']);
      expect(book.takeOutgoingOf('w')).to.deep.equal([]);
      expect(pairs(book.outgoing())).to.deep.equal(['manager/w/child -> worker-2/b']);
    });

    it('pairs are told apart by the whole ref: a/b watching c is not a watching b/c', () => {
      expect(book.addOutgoing(ref('n', 'a/b'), ref('m', 'c'))).to.equal(true);
      expect(book.addOutgoing(ref('n', 'a'), ref('m', 'b/c'))).to.equal(true);
      expect(book.outgoing()).to.have.length(2);
    });
  });
});
