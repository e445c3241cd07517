/**
 * G10 / R5 / R11 on Redis: every kind of broker fault, and the gateway processes stay up.
 *
 * Two `confab start` processes on one redis-server (`appendonly yes`, `appendfsync
 * always`, so a kill -9 loses nothing acknowledged and keeps the epoch), gateway rA
 * through a fault proxy (src/testkit/faults.ts), rB directly. Faults: redis-server frozen
 * (SIGSTOP 15 s), killed (-9) and restarted, rA partitioned from it (connections cut, or
 * a black hole), and Redis slow for rA (every chunk it sends delayed 2 s).
 *
 * Per fault, writer clients on both gateways publish every second throughout; the
 * properties (a)–(f) asserted are listed in broker-faults-kit.ts. Gateway logs are written
 * to $TMPDIR/confab-broker-faults/.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startFaultProxy, type FaultProxy } from '../../src/testkit/faults.js';
import { startRedis, type RedisServer } from '../../src/procs/redis.js';
import { assertFault, falseLeaves, GatewaySet, runFault, type Gw } from './broker-faults-kit.js';

describe('Redis: every fault, the gateways stay up (G10, R5, R11)', () => {
  let redis: RedisServer;
  let proxy: FaultProxy;
  const set = new GatewaySet('redis');
  let a: Gw;
  let b: Gw;
  before(async () => {
    redis = await startRedis({ appendonly: 'always' });
    proxy = await startFaultProxy(redis.port);
    a = await set.spawn('rA', { REDIS_URL: proxy.url('redis') });
    b = await set.spawn('rB', { REDIS_URL: redis.url });
  });
  after(async () => {
    set.closeWriters();
    await set.stopAll();
    await proxy?.close();
    await redis?.close();
  });

  it('redis-server frozen (SIGSTOP) for 15 s, then SIGCONT', async (t) => {
    const r = await runFault(set, a, b, {
      tag: 'r-stop',
      holdMs: 15_000,
      inject: () => redis.pause(),
      heal: () => redis.resume(),
      cleanup: () => redis.resume(),
      ready: [[a, '503'], [b, '503']],
    });
    await assertFault(t, set, r);
  });

  it('redis-server killed (-9), restarted after 6 s', async (t) => {
    const r = await runFault(set, a, b, {
      tag: 'r-kill',
      holdMs: 6_000,
      inject: () => redis.kill(),
      heal: () => redis.start(),
      cleanup: () => redis.start(),
      ready: [[a, '503'], [b, '503']],
    });
    await assertFault(t, set, r);
  });

  it('gateway rA partitioned from Redis (connections cut, new ones refused) for 14 s', async (t) => {
    const r = await runFault(set, a, b, {
      tag: 'r-cut',
      holdMs: 14_000,
      inject: () => proxy.cut(),
      heal: () => proxy.restore(),
      cleanup: () => proxy.restore(),
      ready: [[a, '503'], [b, '200']],
    });
    await assertFault(t, set, r);
  });

  it('gateway rA black-holed from Redis (nothing forwarded, new connections hang) for 15 s', async (t) => {
    const r = await runFault(set, a, b, {
      tag: 'r-hole',
      holdMs: 15_000,
      inject: () => proxy.blackhole(),
      heal: () => proxy.restore(),
      cleanup: () => proxy.restore(),
      ready: [[a, '503'], [b, '200']],
    });
    await assertFault(t, set, r);
  });

  // A slow broker is not a down broker: a 2 s round trip stays inside the command timeout
  // and the health ping's (5 s each), so the right behaviour is to stay ready and
  // acknowledge every message, only later.
  it('Redis slow for rA (every chunk from the server delayed 2 s) for 10 s: stays ready, acknowledges everything', async (t) => {
    const r = await runFault(set, a, b, {
      tag: 'r-slow',
      holdMs: 10_000,
      inject: () => proxy.delay(2000, 'down'),
      heal: () => proxy.restore(),
      cleanup: () => proxy.restore(),
      ready: [[a, '200'], [b, '200']],
      noErrors: true,
    });
    await assertFault(t, set, r);
  });

  it('no presence leave for a user who never left, over the whole run', () => {
    assert.deepEqual(falseLeaves(set), []);
  });
});
