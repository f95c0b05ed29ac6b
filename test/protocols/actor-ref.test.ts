import { expect } from 'chai';
import { Type } from '@sinclair/typebox';
import { ACTOR_PATH, ActorRef, certificateName, MAX_PATH_LENGTH, NODE_NAME, TActorRef } from '../../protocols/actor-ref.js';
import { SchemaCheck } from '../../protocols/schema-check.js';

describe('unit: protocols ActorRef', () => {
  describe('parse (untrusted parts)', () => {
    it('accepts valid node names and paths', () => {
      for (const [node, path] of [
        ['manager', 'echo'],
        ['worker-1', 'pool/worker/3'],
        ['W.node_2', '$q/17'],
        ['a'.repeat(63), 'x'],
        ['n', `a/${'b'.repeat(MAX_PATH_LENGTH - 2)}`],
        ['0n', "a-b_c.d+e!f*g'h(i),j$"],
      ]) {
        const ref = ActorRef.parse(node, path);
        expect(ref, `${node} ${path}`).to.be.instanceOf(ActorRef);
        expect([ref!.node, ref!.path]).to.deep.equal([node, path]);
      }
    });

    it('refuses bad node names', () => {
      for (const node of ['', '-lead', '.lead', 'has space', 'a/b', 'a'.repeat(64), 'nodé', 'a\nb']) {
        expect(ActorRef.parse(node, 'x'), JSON.stringify(node)).to.equal(undefined);
      }
    });

    it('refuses bad paths', () => {
      for (const path of ['', '/a', 'a/', 'a//b', 'a b', 'a\u0000b', 'a?b', 'a#b', 'é', `a/${'b'.repeat(MAX_PATH_LENGTH - 1)}`]) {
        expect(ActorRef.parse('n', path), JSON.stringify(path.slice(0, 20))).to.equal(undefined);
      }
    });

    it('refuses parts that are not strings', () => {
      for (const [node, path] of [[1, 'a'], ['n', 1], [null, 'a'], ['n', undefined], [['n'], 'a'], [{}, {}]]) {
        expect(ActorRef.parse(node, path)).to.equal(undefined);
      }
    });

    it('the exported patterns are the ones parse uses', () => {
      expect(NODE_NAME.test('worker-1')).to.equal(true);
      expect(NODE_NAME.test('-x')).to.equal(false);
      expect(ACTOR_PATH.test('$q/1')).to.equal(true);
      expect(ACTOR_PATH.test('a//b')).to.equal(false);
    });

    it('a client\'s node name carries its session after "~"; certificateName gives back the certificate\'s', () => {
      expect(ActorRef.parse('client-1~0a1b2c3d4e5f', '$r/1')?.toString()).to.equal('client-1~0a1b2c3d4e5f/$r/1');
      for (const node of ['client-1~', '~abc', 'a~b~c', 'a~b.c', `a~${'b'.repeat(17)}`]) expect(ActorRef.parse(node, 'x'), node).to.equal(undefined);
      expect([certificateName('client-1~0a1b2c3d4e5f'), certificateName('worker-1')]).to.deep.equal(['client-1', 'worker-1']);
    });
  });

  describe('a value', () => {
    it('compares by value', () => {
      const a = new ActorRef('n', 'a');
      expect(a.equals(new ActorRef('n', 'a'))).to.equal(true);
      expect(a.equals(new ActorRef('n', 'b'))).to.equal(false);
      expect(a.equals(new ActorRef('m', 'a'))).to.equal(false);
      expect(a.equals(undefined)).to.equal(false);
    });

    it('prints as node/path and serialises to JSON as {node, path}', () => {
      const a = new ActorRef('worker-1', 'pool/3');
      expect(a.toString()).to.equal('worker-1/pool/3');
      expect(`${a}`).to.equal('worker-1/pool/3');
      expect(JSON.stringify({ a })).to.equal('{"a":{"node":"worker-1","path":"pool/3"}}');
    });
  });

  describe('TActorRef (schema)', () => {
    // Its kind is registered in the TypeBox troupe loads (schema-check.ts), which checks every schema.
    const check = new SchemaCheck(Type.Object({ ref: TActorRef(), q: Type.Optional(TActorRef()) }));

    it('accepts an ActorRef instance only, not a look-alike', () => {
      expect(check.test({ ref: new ActorRef('n', 'a') })).to.equal(true);
      expect(check.test({ ref: new ActorRef('n', 'a'), q: new ActorRef('m', '$q/1') })).to.equal(true);
      expect(check.test({ ref: { node: 'n', path: 'a' } })).to.equal(false);
      expect(check.test({ ref: 'n/a' })).to.equal(false);
      expect(check.test({ ref: new ActorRef('n', 'a'), q: 'n/a' })).to.equal(false);
      expect(check.test({})).to.equal(false);
    });
  });
});
