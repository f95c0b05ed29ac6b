/**
 * Reply refs of queries (pending-queries.ts): each one's tag is 48 random bits, used once, also
 * across the draws of random bits they are cut from; a reply ends its query exactly once.
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
});
