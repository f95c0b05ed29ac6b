import { expect } from 'chai';
import { CLIENT_PROTOCOL, isTerminal, protocolNamed, PROTOCOL_NAMES, reached, SERVER_PROTOCOL, stateIndex, workerStates, type RussulaProtocol } from '../../../protocols/russula/index.js';

describe('Russula protocols as data', () => {
  it('ships server and client, and nothing is found by a prototype name', () => {
    expect(PROTOCOL_NAMES).to.deep.equal(['server', 'client']);
    expect(protocolNamed('server')).to.equal(SERVER_PROTOCOL);
    expect(protocolNamed('toString')).to.equal(undefined);
    expect(protocolNamed('__proto__')).to.equal(undefined);
  });

  it('server: ready → running (peer, a held process) → stopping (peer, stop) → done (self)', () => {
    expect(workerStates(SERVER_PROTOCOL)).to.deep.equal(['ready', 'running', 'stopping', 'done', 'failed', 'stopped']);
    expect(SERVER_PROTOCOL.worker.states.running).to.deep.equal({ next: 'stopping', by: 'peer', process: 'start', until: 'hold' });
    expect(SERVER_PROTOCOL.worker.states.stopping).to.deep.equal({ next: 'done', by: 'self', process: 'stop' });
  });

  it('client: ready → running (peer, until the process exits) → done (self)', () => {
    expect(workerStates(CLIENT_PROTOCOL)).to.deep.equal(['ready', 'running', 'done', 'failed', 'stopped']);
    expect(CLIENT_PROTOCOL.worker.states.running).to.deep.equal({ next: 'done', by: 'self', process: 'start', until: 'exit' });
  });

  it('every machine is well formed: each next is a state, each coordinator state awaits a worker state', () => {
    for (const name of PROTOCOL_NAMES) {
      const p = protocolNamed(name)!;
      expect(p.worker.states, name).to.have.property(p.worker.initial);
      for (const [state, def] of Object.entries(p.worker.states)) {
        if (def.next !== undefined) expect(p.worker.states, `${name}.${state}.next`).to.have.property(def.next);
        expect(def.next === undefined, `${name}.${state}: a next and who takes it go together`).to.equal(def.by === undefined);
      }
      for (const def of Object.values(p.coordinator.states)) {
        if (def.awaits !== undefined) expect(p.worker.states).to.have.property(def.awaits);
        if (def.next !== undefined) expect(p.coordinator.states).to.have.property(def.next);
      }
    }
  });

  it('reached, stateIndex and isTerminal follow the path; failed and stopped are off it', () => {
    expect(stateIndex(SERVER_PROTOCOL, 'stopping')).to.equal(2);
    expect(stateIndex(SERVER_PROTOCOL, 'failed')).to.equal(-1);
    expect(reached(SERVER_PROTOCOL, 'done', 'running')).to.equal(true);
    expect(reached(SERVER_PROTOCOL, 'running', 'running')).to.equal(true);
    expect(reached(SERVER_PROTOCOL, 'ready', 'running')).to.equal(false);
    expect(reached(SERVER_PROTOCOL, 'failed', 'ready')).to.equal(false);
    expect(reached(SERVER_PROTOCOL, 'stopped', 'ready')).to.equal(false);
    expect(['ready', 'running', 'stopping', 'done', 'failed', 'stopped'].map((s) => isTerminal(SERVER_PROTOCOL, s))).to.deep.equal([false, false, false, true, true, true]);
  });

  it('a cycle in a machine cannot hang workerStates', () => {
    const loop: RussulaProtocol = { ...SERVER_PROTOCOL, worker: { initial: 'a', states: { a: { next: 'b', by: 'peer' }, b: { next: 'a', by: 'self' } } } };
    expect(workerStates(loop)).to.deep.equal(['a', 'b', 'failed', 'stopped']);
  });
});
