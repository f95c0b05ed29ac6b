import { expect } from 'chai';
import { DEFAULT_LOG_LEVEL, levelFromEnv } from '../src/log.js';

describe('log level from TROUPE_LOG', function () {
  it('unset or empty: the fallback (info unless told otherwise)', function () {
    expect(levelFromEnv({})).to.equal(DEFAULT_LOG_LEVEL);
    expect(DEFAULT_LOG_LEVEL).to.equal('info');
    expect(levelFromEnv({ TROUPE_LOG: '  ' }, 'warn')).to.equal('warn');
  });

  it('a level in any case, spaces trimmed', function () {
    expect(levelFromEnv({ TROUPE_LOG: 'DEBUG ' })).to.equal('debug');
    expect(levelFromEnv({ TROUPE_LOG: 'trace' }, 'warn')).to.equal('trace');
  });

  it('a value that names no level: TROUPE_E_SETTING naming the variable, the value and the levels', function () {
    try {
      levelFromEnv({ TROUPE_LOG: 'verbose' });
      expect.fail('no error');
    } catch (err) {
      expect((err as { code?: string }).code).to.equal('TROUPE_E_SETTING');
      expect((err as Error).message).to.equal('TROUPE_LOG: expected one of trace, debug, info, warn, error, fatal, silent, got "verbose"');
    }
  });
});
