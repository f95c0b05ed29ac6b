/**
 * Reply refs of queries (pending-queries.ts): each one's tag is 48 random bits, used once, also
 * across the draws of random bits they are cut from; a reply ends its query exactly once; a node
 * going down fails exactly the queries asked of it.
 */
import { expect } from 'chai';
import type { ActorRef } from '../../protocols/actor-ref.js';
import { PendingQueries, QUERY_TAGS_PER_DRAW } from '../../src/cluster/pending-queries.js';

describe('pending queries: reply refs', function () {
  it('every reply ref is $q/N.<12 hex digits>, no tag twice over more than two draws, each answered once', async () => {
    const receivers = new Map<string, (msg: unknown) => void>();
    const queries = new PendingQueries('node-1', receivers);
    const refs: ActorRef[] = [];
    const answers: Promise<unknown>[] = [];
    for (let i = 0; i < 2 * QUERY_TAGS_PER_DRAW + 3; i++) answers.push(queries.ask('node-2', 60_000, 'a test query', (replyTo) => (refs.push(replyTo), true)));
    expect(refs.every((r) => r.node === 'node-1' && /^\$q\/\d+\.[0-9a-f]{12}$/.test(r.path))).to.equal(true);
    const tags = refs.map((r) => r.path.split('.')[1]);
    expect(new Set(tags).size).to.equal(tags.length);
    expect(receivers.size).to.equal(refs.length);
    refs.forEach((r, i) => receivers.get(r.path)!(i));
    expect(await Promise.all(answers)).to.deep.equal(refs.map((_, i) => i));
    expect(receivers.size).to.equal(0);
  });

  it('failNode fails exactly the queries asked of that node, each once; the rest still get their answers', async () => {
    const receivers = new Map<string, (msg: unknown) => void>();
    const queries = new PendingQueries('node-1', receivers);
    const asked: { node: string; replyTo: ActorRef; outcome: Promise<unknown> }[] = [];
    for (let i = 0; i < 30; i++) {
      const node = `node-${2 + (i % 3)}`;
      let replyTo!: ActorRef;
      const outcome = queries.ask(node, 60_000, `query ${i}`, (r) => ((replyTo = r), true)).then(
        (answer) => ({ answer }),
        (err: Error & { code?: string }) => ({ code: err.code, message: err.message }),
      );
      asked.push({ node, replyTo, outcome });
    }
    // One of node-2's queries is answered first: it is no longer pending when node-2 goes down.
    receivers.get(asked[0]!.replyTo.path)!('early');
    expect([queries.size('node-2'), queries.size('node-3'), queries.size()]).to.deep.equal([9, 10, 29]);
    queries.failNode('node-2');
    queries.failNode('node-2');
    queries.failNode('node-9');
    expect([queries.size('node-2'), queries.size('node-3'), queries.size()]).to.deep.equal([0, 10, 20]);
    for (const { node, replyTo } of asked) expect(receivers.has(replyTo.path)).to.equal(node !== 'node-2');
    asked.forEach(({ node, replyTo }, i) => node !== 'node-2' && receivers.get(replyTo.path)!(i));
    const outcomes = await Promise.all(asked.map((a) => a.outcome));
    expect(outcomes).to.deep.equal(
      asked.map(({ node }, i) => (i === 0 ? { answer: 'early' } : node === 'node-2' ? { code: 'TROUPE_E_NODE_DOWN', message: 'node node-2 went down' } : { answer: i })),
    );
    expect([receivers.size, queries.size()]).to.deep.equal([0, 0]);
  });
});
