/** `--metrics` addresses: loopback unless a host is given; anything else is TROUPE_E_SETTING naming it. */
import { expect } from 'chai';
import { parseMetricsAddress } from '../../src/cluster/metrics-server.js';

describe('unit: parseMetricsAddress', () => {
  it('PORT and :PORT bind to loopback; HOST:PORT and [v6]:PORT as given', () => {
    expect(parseMetricsAddress('metrics', '9464')).to.deep.equal({ host: '127.0.0.1', port: 9464 });
    expect(parseMetricsAddress('metrics', ':0')).to.deep.equal({ host: '127.0.0.1', port: 0 });
    expect(parseMetricsAddress('metrics', '0.0.0.0:9464')).to.deep.equal({ host: '0.0.0.0', port: 9464 });
    expect(parseMetricsAddress('metrics', 'mgr.example.com:9100')).to.deep.equal({ host: 'mgr.example.com', port: 9100 });
    expect(parseMetricsAddress('metrics', '[::1]:9464')).to.deep.equal({ host: '::1', port: 9464 });
  });

  it('refuses what is not an address, naming the option and the value', () => {
    for (const bad of ['', 'nowhere', 'host:', 'host:port', 'a b:1', '::1:9464', '[nope]:1', '1.2.3.4:70000', 'http://x:1']) {
      expect(() => parseMetricsAddress('metrics', bad), bad).to.throw(/^metrics: expected /).with.property('code', 'TROUPE_E_SETTING');
    }
  });
});
