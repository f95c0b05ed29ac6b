/**
 * The prebuilt checks (protocols/prebuilt-checks.ts): current with the schemas the protocols
 * declare, found at run time for each of them, and TypeBox's verdicts. A schema without one (a
 * test's own message) is still checked, compiled with TypeBox.
 */
import fs from 'node:fs';
import { expect } from 'chai';
import { Type } from '@sinclair/typebox';
import { PREBUILT_CHECKS_FILE, prebuiltChecksSource, prebuiltSchemas } from '../../protocols/prebuilt-checks-writer.js';
import { materialize, SchemaCheck, typeBox } from '../../protocols/schema-check.js';
import { ActorRef, TActorRef } from '../../protocols/actor-ref.js';
import { Submit } from '../../protocols/tasks.js';
import { declaredSchema } from '../../protocols/message-catalog.js';

describe('prebuilt schema checks', () => {
  it('prebuilt-checks.ts is what the writer makes of the schemas now (else: npm run gen:checks)', () => {
    expect(fs.readFileSync(PREBUILT_CHECKS_FILE, 'utf8') === prebuiltChecksSource(), 'protocols/prebuilt-checks.ts is stale: run `npm run gen:checks`').to.equal(true);
  });

  it('every envelope and message schema of the protocols finds its prebuilt check', () => {
    const missing = prebuiltSchemas()
      .filter(([, schema]) => !new SchemaCheck(schema).prebuilt)
      .map(([name]) => name);
    expect(missing).to.deep.equal([]);
    expect(prebuiltSchemas().length).to.be.greaterThan(40);
  });

  it('a prebuilt check says what the TypeBox-compiled one says', () => {
    const prebuilt = new SchemaCheck(declaredSchema(Submit));
    expect(prebuilt.prebuilt).to.equal(true);
    const compiled = typeBox().compiler.TypeCompiler.Compile(materialize(declaredSchema(Submit)) as never);
    const ref = new ActorRef('client-1~ab12', '$q/1');
    const values: unknown[] = [
      { type: 'submit', replyTo: ref, command: 'true' },
      { type: 'submit', replyTo: ref, command: 'true', env: { A: 'b' }, timeoutMs: 5, selector: 'tag=gpu', retries: 1, broadcast: true, subscriber: ref, waitForWorkerMs: 0 },
      { type: 'submit', replyTo: { node: 'client-1', path: '$q/1' }, command: 'true' },
      { type: 'submit', replyTo: ref, command: 7 },
      { type: 'submit', replyTo: ref, command: 'true', timeoutMs: Number.NaN },
      { type: 'submit', replyTo: ref, command: 'true', env: { ['k'.repeat(257)]: 'v' } },
      { type: 'submit', replyTo: ref, command: 'x'.repeat(1024 * 1024 + 1) },
      { type: 'cancel', replyTo: ref, command: 'true' },
      [],
      null,
    ];
    for (const value of values) expect(prebuilt.test(value), JSON.stringify(value)?.slice(0, 80)).to.equal(compiled.Check(value));
    expect(values.filter((v) => prebuilt.test(v))).to.have.length(2);
  });

  it('a schema with no prebuilt check is compiled with TypeBox, and says what is wrong', () => {
    const check = new SchemaCheck(Type.Object({ n: Type.Integer(), ref: TActorRef() }));
    expect(check.prebuilt).to.equal(false);
    expect(check.test({ n: 1, ref: new ActorRef('a', 'b') })).to.equal(true);
    expect(check.test({ n: 1.5, ref: new ActorRef('a', 'b') })).to.equal(false);
    expect(check.firstError({ n: 1.5, ref: new ActorRef('a', 'b') })).to.deep.equal({ path: '/n', message: 'Expected integer' });
  });
});
