import { expect } from 'chai';
import { resolveConfig } from '../../src/core/config';
import { ConfigError } from '../../src/core/errors';

describe('app config', () => {
  it('applies documented defaults', () => {
    const c = resolveConfig();
    expect(c).to.deep.include({
      prefix: '',
      partitions: 4,
      host: '127.0.0.1',
      port: 8080,
      maxEventsPerRequest: 10_000,
      maxProfilesPerRequest: 100,
      maxFutureSkewMs: 300_000,
      readCount: 2000,
      blockMs: 2000,
      logLevel: 'info',
    });
    expect(c.redisUrl).to.equal(undefined);
    expect(c.tags.realtime).to.have.length(8);
  });

  it('keeps given values and ignores undefined ones', () => {
    const c = resolveConfig({ partitions: 16, port: undefined, prefix: 'ps:', redisUrl: 'redis://h:1' });
    expect([c.partitions, c.port, c.prefix, c.redisUrl]).to.deep.equal([16, 8080, 'ps:', 'redis://h:1']);
  });

  it('fails on bad values with a message naming the option', () => {
    expect(() => resolveConfig({ partitions: 0 })).to.throw(ConfigError, 'partitions must be an integer from 1 to 1024 (got 0)');
    expect(() => resolveConfig({ port: 70000 })).to.throw(ConfigError, 'port must be an integer');
    expect(() => resolveConfig({ prefix: 'a b' })).to.throw(ConfigError, 'prefix may hold');
    expect(() => resolveConfig({ logLevel: 'loud' })).to.throw(ConfigError, 'logLevel must be one of');
    expect(() => resolveConfig({ redisUrl: 'localhost:6379' })).to.throw(ConfigError, 'redis URL must start with redis://');
    expect(() => resolveConfig({ tagsFile: '/nonexistent/tags.json' })).to.throw(ConfigError, '/nonexistent/tags.json: cannot read');
  });
});
