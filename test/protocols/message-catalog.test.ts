import { expect } from 'chai';
import { Type } from '@sinclair/typebox';
import { defineMessage, MessageCatalog, type CatalogVerdict } from '../../protocols/message-catalog.js';
import { CLUSTER_MESSAGES } from '../../protocols/cluster-messages.js';
import { ActorRef, TActorRef } from '../../protocols/actor-ref.js';
import { ErrorCodes } from '../../src/errors.js';
import { ROLES } from '../../protocols/roles.js';

const Ping = defineMessage('ping', { n: Type.Integer(), replyTo: TActorRef() });
const Shutdown = defineMessage('shutdown', { reason: Type.String({ maxLength: 16 }) }, { allow: ['manager'] });
const Note = defineMessage('note', { text: Type.String() }, { allow: ['manager', 'client'] });

function refused(verdict: CatalogVerdict): { code: string; reason: string } {
  expect(verdict.ok, JSON.stringify(verdict)).to.equal(false);
  return verdict as { code: string; reason: string };
}

describe('unit: protocols message catalog', () => {
  const catalog = new MessageCatalog([Ping, Shutdown, Note]);

  it('defineMessage adds the type tag to the schema and keeps the allowed roles', () => {
    expect(Ping.type).to.equal('ping');
    expect(Ping.allow).to.equal(undefined);
    expect(Shutdown.allow).to.deep.equal(['manager']);
    expect(Object.keys(Ping.schema.properties).sort()).to.deep.equal(['n', 'replyTo', 'type']);
    expect(Ping.schema.properties.type.const).to.equal('ping');
  });

  it('has tells the declared types', () => {
    expect(catalog.has('ping')).to.equal(true);
    expect(catalog.has('pong')).to.equal(false);
  });

  it('a type may be declared once', () => {
    expect(() => new MessageCatalog([Ping, Ping])).to.throw(TypeError, 'message type "ping" is declared twice');
    expect(() => new MessageCatalog([Ping]).add(defineMessage('ping', {}))).to.throw(TypeError, 'message type "ping" is declared twice');
  });

  it('add returns the catalog, for chaining', () => {
    const c = new MessageCatalog();
    expect(c.add(Ping).add(Note)).to.equal(c);
    expect([c.has('ping'), c.has('note')]).to.deep.equal([true, true]);
  });

  it('a valid message from any role when no roles are declared', () => {
    for (const role of ROLES) {
      expect(catalog.check({ type: 'ping', n: 1, replyTo: new ActorRef('n', '$q/1') }, role)).to.deep.equal({ ok: true });
    }
  });

  it('not a map with a string "type": TROUPE_E_INVALID_MESSAGE', () => {
    for (const msg of [null, undefined, 42, 'ping', ['ping'], {}, { type: 5 }, { type: null }]) {
      expect(refused(catalog.check(msg, 'worker')), JSON.stringify(msg)).to.deep.equal({
        ok: false,
        code: ErrorCodes.INVALID_MESSAGE,
        reason: 'a message must be a map with a string "type"',
      });
    }
  });

  it('a type not declared: TROUPE_E_UNKNOWN_MESSAGE, its name cut to 64 characters', () => {
    expect(refused(catalog.check({ type: 'pong' }, 'worker'))).to.deep.equal({
      ok: false,
      code: ErrorCodes.UNKNOWN_MESSAGE,
      reason: 'unknown message type "pong"',
    });
    expect(refused(catalog.check({ type: 'x'.repeat(1000) }, 'worker')).reason).to.equal(`unknown message type "${'x'.repeat(64)}"`);
    for (const type of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
      expect(refused(catalog.check({ type }, 'manager')).code, type).to.equal(ErrorCodes.UNKNOWN_MESSAGE);
    }
  });

  it('a role not allowed: TROUPE_E_FORBIDDEN naming the role and the type', () => {
    expect(refused(catalog.check({ type: 'shutdown', reason: 'now' }, 'worker'))).to.deep.equal({
      ok: false,
      code: ErrorCodes.FORBIDDEN,
      reason: 'a worker may not send "shutdown"',
    });
    expect(refused(catalog.check({ type: 'shutdown', reason: 'now' }, 'client')).code).to.equal(ErrorCodes.FORBIDDEN);
    expect(catalog.check({ type: 'shutdown', reason: 'now' }, 'manager')).to.deep.equal({ ok: true });
    expect(catalog.check({ type: 'note', text: 'hi' }, 'client')).to.deep.equal({ ok: true });
    expect(refused(catalog.check({ type: 'note', text: 'hi' }, 'worker')).reason).to.equal('a worker may not send "note"');
  });

  it('a forbidden role is told so even when its message is malformed', () => {
    expect(refused(catalog.check({ type: 'shutdown' }, 'worker')).code).to.equal(ErrorCodes.FORBIDDEN);
  });

  it('the wrong shape: TROUPE_E_INVALID_MESSAGE naming the field', () => {
    expect(refused(catalog.check({ type: 'ping', n: 1.5, replyTo: new ActorRef('n', 'a') }, 'worker'))).to.deep.equal({
      ok: false,
      code: ErrorCodes.INVALID_MESSAGE,
      reason: 'message "ping" at /n: Expected integer',
    });
    expect(refused(catalog.check({ type: 'ping', n: 1 }, 'worker')).reason).to.equal('message "ping" at /replyTo: Expected required property');
    expect(refused(catalog.check({ type: 'ping', n: 1, replyTo: { node: 'n', path: 'a' } }, 'worker')).reason).to.match(
      /^message "ping" at \/replyTo: /,
    );
    expect(refused(catalog.check({ type: 'shutdown', reason: 'x'.repeat(17) }, 'manager')).reason).to.equal(
      'message "shutdown" at /reason: Expected string length less or equal to 16',
    );
  });

  describe('the cluster messages', () => {
    const cluster = new MessageCatalog(CLUSTER_MESSAGES);
    const ref = new ActorRef('worker-1', 'job');

    it('declares terminated, listing and member', () => {
      expect(CLUSTER_MESSAGES.map((m) => m.type)).to.deep.equal(['terminated', 'listing', 'member']);
    });

    it('terminated: a ref and a reason of stopped or node-down', () => {
      expect(cluster.check({ type: 'terminated', ref, reason: 'stopped' }, 'worker')).to.deep.equal({ ok: true });
      expect(cluster.check({ type: 'terminated', ref, reason: 'node-down' }, 'manager')).to.deep.equal({ ok: true });
      expect(refused(cluster.check({ type: 'terminated', ref, reason: 'crashed' }, 'worker')).code).to.equal(ErrorCodes.INVALID_MESSAGE);
      expect(refused(cluster.check({ type: 'terminated', ref: 'worker-1/job', reason: 'stopped' }, 'worker')).code).to.equal(ErrorCodes.INVALID_MESSAGE);
    });

    it('listing: entries of a ref and a meta map', () => {
      expect(cluster.check({ type: 'listing', key: 'k', entries: [{ ref, meta: { a: 1 } }] }, 'manager')).to.deep.equal({ ok: true });
      expect(refused(cluster.check({ type: 'listing', key: 'k', entries: [{ ref }] }, 'manager')).reason).to.equal(
        'message "listing" at /entries/0/meta: Expected required property',
      );
      expect(refused(cluster.check({ type: 'listing', key: 'k'.repeat(129), entries: [] }, 'manager')).code).to.equal(ErrorCodes.INVALID_MESSAGE);
    });

    it('member: a known role and status', () => {
      const member = { type: 'member', node: 'worker-1', role: 'worker', incarnation: 'i', status: 'up', meta: {} };
      expect(cluster.check(member, 'manager')).to.deep.equal({ ok: true });
      expect(refused(cluster.check({ ...member, status: 'gone' }, 'manager')).reason).to.match(/^message "member" at \/status: /);
      expect(refused(cluster.check({ ...member, role: 'admin' }, 'manager')).reason).to.match(/^message "member" at \/role: /);
    });
  });
});
