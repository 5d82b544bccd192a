import { expect } from 'chai';
import { randomBytes } from 'crypto';
import IORedis from 'ioredis';
import { Redis, connectRedis } from '../../../src/redis/client';
import { RawConnection, encodeCommand } from '../../../src/redis/rawConnection';
import { testRedisUrl, uniquePrefix } from '../../helpers/context';

describe('RawConnection: pre-encoded bulk writes on a connection of their own (real Redis)', () => {
  let redis: Redis;
  before(async () => {
    redis = await connectRedis(testRedisUrl());
  });
  after(async () => {
    await redis.quit();
  });

  it('returns every reply in order across overlapping sends, error replies (inside EXEC too) as Errors', async () => {
    const p = uniquePrefix();
    const conn = await RawConnection.open(redis);
    try {
      const first = conn.send(encodeCommand(['SET', `${p}a`, 'ü']) + encodeCommand(['GET', `${p}a`]), 2);
      const second = conn.send(
        encodeCommand(['MULTI']) +
          encodeCommand(['HSET', `${p}h`, 'f', '1']) +
          encodeCommand(['INCR', `${p}h`]) +
          encodeCommand(['EXEC']) +
          encodeCommand(['NOSUCHCOMMAND']),
        5,
      );
      expect(await first).to.deep.equal(['OK', 'ü']);
      const [multi, queued1, queued2, exec, unknown] = await second;
      expect([multi, queued1, queued2]).to.deep.equal(['OK', 'QUEUED', 'QUEUED']);
      expect((exec as unknown[])[0]).to.equal(1);
      expect((exec as unknown[])[1])
        .to.be.instanceOf(Error)
        .with.property('message')
        .match(/^WRONGTYPE/);
      expect(unknown)
        .to.be.instanceOf(Error)
        .with.property('message')
        .match(/unknown command/);
      expect(await redis.hget(`${p}h`, 'f')).to.equal('1');
    } finally {
      conn.close();
    }
  });

  it('authenticates as the client does and fails clearly on a wrong password or a lost connection', async () => {
    const user = `raw-${randomBytes(4).toString('hex')}`;
    const p = uniquePrefix();
    await redis.call('ACL', 'SETUSER', user, 'on', '>s3cret', `~${p}*`, '+set', '+get');
    const port = redis.options.port;
    const authed = new IORedis({ port, username: user, password: 's3cret', lazyConnect: true, enableReadyCheck: false });
    const wrong = new IORedis({ port, username: user, password: 'nope', lazyConnect: true });
    try {
      const conn = await RawConnection.open(authed);
      expect(await conn.send(encodeCommand(['SET', `${p}k`, 'v']) + encodeCommand(['SET', 'elsewhere', 'v']), 2)).to.satisfy(
        (r: unknown[]) => r[0] === 'OK' && r[1] instanceof Error && /NOPERM/.test((r[1] as Error).message),
      );
      await redis.call('CLIENT', 'KILL', 'USER', user);
      let err: unknown;
      try {
        await conn.send(encodeCommand(['GET', `${p}k`]), 1);
        await conn.send(encodeCommand(['GET', `${p}k`]), 1);
      } catch (e) {
        err = e;
      }
      expect(err)
        .to.be.instanceOf(Error)
        .with.property('message')
        .match(/^bulk-write connection to Redis lost/);
      let authErr: unknown;
      await RawConnection.open(wrong).catch((e: unknown) => (authErr = e));
      expect(authErr)
        .to.be.instanceOf(Error)
        .with.property('message')
        .match(/WRONGPASS/);
    } finally {
      await redis.call('ACL', 'DELUSER', user);
      authed.disconnect();
      wrong.disconnect();
    }
  });
});
