import { expect } from 'chai';
import { expandTemplates, MAX_TEMPLATE_VALUE_CHARS, scanTemplates, templatesIn } from '../../../protocols/russula/templates.js';
import { RussulaAdvance } from '../../../protocols/russula/messages.js';
import { MessageCatalog } from '../../../protocols/message-catalog.js';
import { typeOf } from '../../../protocols/message-type.js';
import { workerTraits } from '../../../protocols/worker-meta.js';

describe('protocols: Russula ${group.field} templates', function () {
  it('scans well-formed and malformed templates alike, naming the malformed ones', function () {
    expect(scanTemplates('${servers.addresses} ${servers.nope} ${a.b.c} ${x}')).to.deep.equal([
      { whole: '${servers.addresses}', group: 'servers', field: 'addresses', key: 'servers.addresses' },
      { whole: '${servers.nope}' },
      { whole: '${a.b.c}' },
      { whole: '${x}' },
    ]);
  });

  it('expands each well-formed template from its key, and leaves the rest', function () {
    expect(templatesIn('${s.hosts}:${s.ports}').map((t) => t.key)).to.deep.equal(['s.hosts', 's.ports']);
    expect(expandTemplates('H=${s.hosts} P=${s.ports} $HOME ${odd}', (k) => `<${k}>`)).to.equal('H=<s.hosts> P=<s.ports> $HOME ${odd}');
  });

  it('the value limit is the one russulaAdvance enforces', function () {
    const catalog = new MessageCatalog([RussulaAdvance]);
    const ok = (value: string) =>
      catalog.check({ type: 'russulaAdvance', run: 'r', member: 'g/0', to: 'running', values: { 's.addresses': value } }, 'manager').ok;
    const address = 'h:1,';
    const atLimit = address.repeat(MAX_TEMPLATE_VALUE_CHARS / address.length).slice(0, -1) + '1';
    expect(atLimit.length).to.equal(MAX_TEMPLATE_VALUE_CHARS);
    expect(ok(atLimit)).to.equal(true);
    expect(ok(atLimit + '1')).to.equal(false);
  });
});

describe('protocols: typeOf and workerTraits', function () {
  it('typeOf names a message by its type, anything else by typeof', function () {
    expect([typeOf({ type: 'ping' }), typeOf({ type: 3 }), typeOf(null), typeOf('x'), typeOf(undefined)]).to.deep.equal(['ping', 'object', 'object', 'string', 'undefined']);
  });

  it('workerTraits reads what a worker checked in with, with a default for each malformed field', function () {
    expect(workerTraits('node-1', { name: 'w', tags: ['gpu', 3], platform: 'linux', arch: 'x64', slots: 4 })).to.deep.equal({ name: 'w', tags: ['gpu'], platform: 'linux', arch: 'x64', slots: 4 });
    expect(workerTraits('node-1', { name: 7, tags: 'gpu', slots: -1 })).to.deep.equal({ name: 'node-1', tags: [], platform: '', arch: '', slots: 1 });
    expect(workerTraits('node-1', { slots: 0 }).slots).to.equal(0);
  });
});
