import { expect } from 'chai';
import { checkEnvelope, checkHandshake, HUB_ONLY, MEMBER_STATUSES, TERMINATION_REASONS, type Invalid } from '../../protocols/wire.js';
import { ActorRef } from '../../protocols/actor-ref.js';
import { PROTOCOL_VERSION } from '../../protocols/version.js';
import { ErrorCodes } from '../../src/errors.js';

const a = new ActorRef('worker-1', 'job');
const b = new ActorRef('manager', 'pool');

const hello = { t: 'hello', protocol: PROTOCOL_VERSION, node: 'worker-1', role: 'worker', incarnation: 'abc', meta: { pid: 1 } };

/** One valid envelope of each tag. */
const VALID: Record<string, Record<string, unknown>> = {
  send: { t: 'send', to: a, msg: { type: 'ping', n: 1 } },
  undeliverable: { t: 'undeliverable', to: a, code: 'TROUPE_E_NO_SUCH_ACTOR', reason: 'no actor' },
  error: { t: 'error', code: 'TROUPE_E_DECODE', reason: '' },
  member: { t: 'member', node: 'worker-1', role: 'worker', incarnation: 'abc', status: 'up', meta: {} },
  watch: { t: 'watch', watcher: b, target: a },
  unwatch: { t: 'unwatch', watcher: b, target: a },
  checkIn: { t: 'checkIn', key: 'worker', ref: a, meta: { slots: 4 } },
  checkOut: { t: 'checkOut', key: 'worker', ref: a },
  subscribe: { t: 'subscribe', key: 'worker', subscriber: b },
  unsubscribe: { t: 'unsubscribe', key: 'worker', subscriber: b },
  lookup: { t: 'lookup', key: 'worker', replyTo: b },
};

function invalid(result: Invalid | undefined): Invalid {
  expect(result, 'expected the check to refuse it').to.not.equal(undefined);
  return result!;
}

describe('unit: protocols wire envelopes', () => {
  it('the protocol version is 1, and the statuses and reasons are as documented', () => {
    expect(PROTOCOL_VERSION).to.equal(2);
    expect(MEMBER_STATUSES).to.deep.equal(['up', 'unreachable', 'down']);
    expect(TERMINATION_REASONS).to.deep.equal(['stopped', 'node-down']);
    expect([...HUB_ONLY]).to.deep.equal(['member']);
  });

  describe('checkEnvelope', () => {
    for (const [tag, envelope] of Object.entries(VALID)) {
      it(`accepts a valid "${tag}"`, () => {
        expect(checkEnvelope(envelope)).to.equal(undefined);
      });
    }

    it('accepts a send with a query reply ref, any message value', () => {
      expect(checkEnvelope({ ...VALID.send, q: b })).to.equal(undefined);
      expect(checkEnvelope({ ...VALID.send, msg: null })).to.equal(undefined);
      expect(checkEnvelope({ ...VALID.send, msg: undefined })).to.equal(undefined);
    });

    it('not a map with a string tag: TROUPE_E_INVALID_MESSAGE', () => {
      for (const value of [null, undefined, 0, 'send', [], ['send'], {}, { t: 1 }, { t: null }]) {
        expect(invalid(checkEnvelope(value)), JSON.stringify(value)).to.deep.equal({
          code: ErrorCodes.INVALID_MESSAGE,
          reason: 'an envelope must be a map with a string tag "t"',
        });
      }
    });

    it('an unknown tag: TROUPE_E_UNKNOWN_MESSAGE, the tag cut to 64 characters', () => {
      expect(invalid(checkEnvelope({ t: 'launch' }))).to.deep.equal({ code: ErrorCodes.UNKNOWN_MESSAGE, reason: 'unknown envelope type "launch"' });
      expect(invalid(checkEnvelope({ t: 'y'.repeat(500) })).reason).to.equal(`unknown envelope type "${'y'.repeat(64)}"`);
    });

    it('inherited names are not tags', () => {
      for (const t of ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf']) {
        expect(invalid(checkEnvelope({ t })).code, t).to.equal(ErrorCodes.UNKNOWN_MESSAGE);
      }
    });

    it('handshake envelopes are not envelopes after the handshake', () => {
      expect(invalid(checkEnvelope(hello))).to.deep.equal({ code: ErrorCodes.UNKNOWN_MESSAGE, reason: 'unknown envelope type "hello"' });
      expect(invalid(checkEnvelope({ ...hello, t: 'welcome' })).code).to.equal(ErrorCodes.UNKNOWN_MESSAGE);
      expect(invalid(checkEnvelope({ t: 'reject', code: 'X', reason: '' })).code).to.equal(ErrorCodes.UNKNOWN_MESSAGE);
    });

    it('a ref field must be an ActorRef, not a look-alike map or string', () => {
      expect(invalid(checkEnvelope({ ...VALID.send, to: { node: 'worker-1', path: 'job' } }))).to.deep.equal({
        code: ErrorCodes.INVALID_MESSAGE,
        reason: "envelope \"send\" at /to: Expected kind 'troupe:ActorRef'",
      });
      expect(invalid(checkEnvelope({ ...VALID.send, q: 'manager/$q/1' })).reason).to.match(/^envelope "send" at \/q: /);
      expect(invalid(checkEnvelope({ ...VALID.watch, target: 'worker-1/job' })).reason).to.match(/^envelope "watch" at \/target: /);
    });

    it('a missing field: TROUPE_E_INVALID_MESSAGE naming it', () => {
      expect(invalid(checkEnvelope({ t: 'send', to: a }))).to.deep.equal({
        code: ErrorCodes.INVALID_MESSAGE,
        reason: 'envelope "send" at /msg: Expected required property',
      });
      expect(invalid(checkEnvelope({ t: 'checkIn', key: 'k', ref: a })).reason).to.equal('envelope "checkIn" at /meta: Expected required property');
      expect(invalid(checkEnvelope({ t: 'lookup', key: 'k' })).reason).to.equal('envelope "lookup" at /replyTo: Expected required property');
    });

    it('string bounds: key 1..128, code 1..64, reason ≤ 2048, node a node name (1..63, a client\'s with ~SESSION)', () => {
      expect(checkEnvelope({ ...VALID.checkIn, key: 'k'.repeat(128) })).to.equal(undefined);
      expect(invalid(checkEnvelope({ ...VALID.checkIn, key: 'k'.repeat(129) })).reason).to.match(/^envelope "checkIn" at \/key: /);
      expect(invalid(checkEnvelope({ ...VALID.subscribe, key: '' })).reason).to.match(/^envelope "subscribe" at \/key: /);
      expect(checkEnvelope({ ...VALID.error, code: 'C'.repeat(64), reason: 'r'.repeat(2048) })).to.equal(undefined);
      expect(invalid(checkEnvelope({ ...VALID.error, code: 'C'.repeat(65) })).reason).to.match(/^envelope "error" at \/code: /);
      expect(invalid(checkEnvelope({ ...VALID.error, code: '' })).reason).to.match(/^envelope "error" at \/code: /);
      expect(invalid(checkEnvelope({ ...VALID.undeliverable, reason: 'r'.repeat(2049) })).reason).to.match(/^envelope "undeliverable" at \/reason: /);
      expect(invalid(checkEnvelope({ ...VALID.member, node: '' })).reason).to.match(/^envelope "member" at \/node: /);
      expect(invalid(checkEnvelope({ ...VALID.member, node: 'n'.repeat(64) })).reason).to.match(/^envelope "member" at \/node: /);
      // A client's node name: its certificate's (up to 63), "~", a session of up to 16 letters or digits.
      expect(checkEnvelope({ ...VALID.member, role: 'client', node: `${'n'.repeat(63)}~${'s'.repeat(16)}` })).to.equal(undefined);
      for (const node of [`n~${'s'.repeat(17)}`, 'n~', '~s', 'n~s~t', 'n~s-t']) {
        expect(invalid(checkEnvelope({ ...VALID.member, node })).reason, node).to.match(/^envelope "member" at \/node: /);
      }
    });

    it('member: a known role and status only', () => {
      for (const status of MEMBER_STATUSES) expect(checkEnvelope({ ...VALID.member, status })).to.equal(undefined);
      expect(invalid(checkEnvelope({ ...VALID.member, status: 'gone' })).reason).to.match(/^envelope "member" at \/status: /);
      expect(invalid(checkEnvelope({ ...VALID.member, role: 'root' })).reason).to.match(/^envelope "member" at \/role: /);
      expect(invalid(checkEnvelope({ ...VALID.member, incarnation: '' })).reason).to.match(/^envelope "member" at \/incarnation: /);
    });

    it('meta must be a map', () => {
      expect(invalid(checkEnvelope({ ...VALID.checkIn, meta: 'x' })).reason).to.match(/^envelope "checkIn" at \/meta: /);
      expect(invalid(checkEnvelope({ ...VALID.checkIn, meta: null })).code).to.equal(ErrorCodes.INVALID_MESSAGE);
    });
  });

  describe('checkHandshake', () => {
    it('accepts a valid hello, welcome and reject', () => {
      expect(checkHandshake(hello)).to.equal(undefined);
      expect(checkHandshake({ ...hello, t: 'welcome', node: 'manager', role: 'manager' })).to.equal(undefined);
      expect(checkHandshake({ t: 'reject', code: 'TROUPE_E_PROTOCOL_VERSION', reason: 'peer speaks 2' })).to.equal(undefined);
    });

    it('other envelopes are not handshakes', () => {
      expect(invalid(checkHandshake(VALID.send))).to.deep.equal({ code: ErrorCodes.UNKNOWN_MESSAGE, reason: 'unknown envelope type "send"' });
      expect(invalid(checkHandshake('hello'))).to.deep.equal({ code: ErrorCodes.INVALID_MESSAGE, reason: 'an envelope must be a map with a string tag "t"' });
    });

    it('a hello of the wrong shape: TROUPE_E_INVALID_MESSAGE naming the field', () => {
      expect(invalid(checkHandshake({ ...hello, protocol: 1.5 }))).to.deep.equal({
        code: ErrorCodes.INVALID_MESSAGE,
        reason: 'envelope "hello" at /protocol: Expected integer',
      });
      expect(invalid(checkHandshake({ ...hello, protocol: '1' })).reason).to.match(/^envelope "hello" at \/protocol: /);
      expect(invalid(checkHandshake({ ...hello, role: 'admin' })).reason).to.match(/^envelope "hello" at \/role: /);
      expect(invalid(checkHandshake({ ...hello, node: 'n'.repeat(64) })).reason).to.match(/^envelope "hello" at \/node: /);
      expect(invalid(checkHandshake({ ...hello, incarnation: 'i'.repeat(65) })).reason).to.match(/^envelope "hello" at \/incarnation: /);
      const { meta: _meta, ...noMeta } = hello;
      expect(invalid(checkHandshake(noMeta)).reason).to.equal('envelope "hello" at /meta: Expected required property');
    });

    it('a version other than ours is still a well-formed hello (the handshake rejects it, with both versions)', () => {
      expect(checkHandshake({ ...hello, protocol: PROTOCOL_VERSION + 1 })).to.equal(undefined);
    });
  });

  it('a meta key longer than 64 characters is refused', () => {
    const meta = { ['k'.repeat(65)]: 1 };
    expect(checkEnvelope({ t: 'checkIn', key: 'worker', ref: new ActorRef('worker-1', 'w'), meta })?.code).to.equal(ErrorCodes.INVALID_MESSAGE);
    expect(checkHandshake({ t: 'hello', protocol: PROTOCOL_VERSION, node: 'worker-1', role: 'worker', incarnation: 'i', meta })?.code).to.equal(ErrorCodes.INVALID_MESSAGE);
    expect(checkEnvelope({ t: 'checkIn', key: 'worker', ref: new ActorRef('worker-1', 'w'), meta: { ['k'.repeat(64)]: 1 } })).to.equal(undefined);
  });
});
