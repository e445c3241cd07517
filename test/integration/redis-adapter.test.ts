/**
 * Redis adapter behaviour beyond the shared contracts: config validation,
 * connection failures as typed errors, what survives which Redis restart (G8:
 * the epoch changes exactly when acknowledged messages may have been lost),
 * flush() semantics, subscriber-only loss, dedupe key expiry, WAIT for replicas.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { ConfigError, loadConfig } from '../../src/config/config.js';
import type { AppendInput } from '../../src/history/types.js';
import { ConfabError } from '../../src/protocol/codes.js';
import { createRedisAdapters, readRedisSettings } from '../../src/redis/index.js';
import { freePort } from '../../src/procs/nats.js';
import { startRedis, type RedisServer } from '../../src/procs/redis.js';
import { waitFor } from '../../src/procs/wait.js';

const log = pino({ level: 'silent' });
let seq = 0;
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

function envFor(url: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    REDIS_URL: url,
    CONFAB_SECRET: 'integration-secret-0123456789',
    CONFAB_NODE_ID: `it${seq++}`,
    CONFAB_REDIS_PREFIX: `it${process.pid}x${seq++}`,
    CONFAB_REDIS_RECONNECT_MAX_MS: '200',
    ...extra,
  };
}

async function adapters(env: Record<string, string>) {
  return createRedisAdapters(loadConfig(env), log, { env });
}

const msg = (room: string, id: string, user = 'u1'): AppendInput => ({
  room, id, kind: 'msg', text: `text ${id}`, from: { user, handle: `h-${user}`, node: 'n1', region: 'local' }, ts: Date.now(),
});

const isCode = (code: string) => (e: unknown) => e instanceof ConfabError && e.code === code;

describe('Redis settings', () => {
  const cfg = { redisUrl: 'redis://127.0.0.1:6379', historyLimit: 100 };
  it('names the variable of every bad value', () => {
    const bad: [Record<string, string>, string][] = [
      [{ CONFAB_REDIS_PREFIX: 'a b' }, 'CONFAB_REDIS_PREFIX'],
      [{ CONFAB_REDIS_DEDUPE_S: '0' }, 'CONFAB_REDIS_DEDUPE_S'],
      [{ CONFAB_REDIS_DEDUPE_S: 'ten' }, 'CONFAB_REDIS_DEDUPE_S'],
      [{ CONFAB_REDIS_EPOCH: 'sometimes' }, 'CONFAB_REDIS_EPOCH'],
      [{ CONFAB_REDIS_WAIT_REPLICAS: '-1' }, 'CONFAB_REDIS_WAIT_REPLICAS'],
      [{ CONFAB_REDIS_COMMAND_TIMEOUT_MS: '5s' }, 'CONFAB_REDIS_COMMAND_TIMEOUT_MS'],
    ];
    for (const [env, variable] of bad) {
      assert.throws(() => readRedisSettings(cfg, env), (e: unknown) => e instanceof ConfigError && e.variable === variable, variable);
    }
    for (const url of ['http://x:1', 'not a url', 'redis://h:1/abc']) {
      assert.throws(() => readRedisSettings({ ...cfg, redisUrl: url }, {}), (e: unknown) => e instanceof ConfigError && e.variable === 'REDIS_URL', url);
    }
    const ok = readRedisSettings(cfg, {});
    assert.equal(ok.prefix, 'confab');
    assert.equal(ok.historyLimit, 100);
    assert.equal(ok.epochPolicy, 'auto');
  });

  it('fails with bus_unavailable when Redis cannot be reached', async () => {
    const port = await freePort();
    await assert.rejects(adapters(envFor(`redis://127.0.0.1:${port}`, { CONFAB_REDIS_CONNECT_TIMEOUT_MS: '1000' })), isCode('bus_unavailable'));
  });
});

describe('Redis adapter against one server without persistence', () => {
  let server: RedisServer;
  before(async () => {
    server = await startRedis();
  });
  after(async () => {
    await server?.close();
  });

  it('flush() resolves only after the SUBSCRIBE was acknowledged: one publish right after is delivered', async () => {
    const prefix = `fl${seq++}`;
    const a = await adapters(envFor(server.url, { CONFAB_REDIS_PREFIX: prefix }));
    const b = await adapters(envFor(server.url, { CONFAB_REDIS_PREFIX: prefix }));
    try {
      for (let i = 0; i < 20; i++) {
        const got: string[] = [];
        b.bus.subscribe(`room.f${i}`, (d) => got.push(dec(d)));
        await b.bus.flush();
        a.bus.publish(`room.f${i}`, enc(`once${i}`));
        await waitFor(() => got.length === 1, { what: `delivery ${i}`, timeoutMs: 5000 });
        assert.deepEqual(got, [`once${i}`]);
      }
    } finally {
      await Promise.all([a.bus.close(), b.bus.close(), a.history.close(), b.history.close()]);
    }
  });

  it('goes down when only the subscriber connection is killed, and resubscribes before reporting up', async () => {
    const prefix = `sk${seq++}`;
    const a = await adapters(envFor(server.url, { CONFAB_REDIS_PREFIX: prefix }));
    const b = await adapters(envFor(server.url, { CONFAB_REDIS_PREFIX: prefix }));
    try {
      const got: string[] = [];
      b.bus.subscribe('room.k', (d) => got.push(dec(d)));
      await b.bus.flush();
      const seen: string[] = [];
      b.bus.onStatus((s) => seen.push(s));
      const killed = Number(await server.command(`CLIENT KILL TYPE pubsub`));
      assert.ok(killed >= 1, 'a subscriber connection was killed');
      await waitFor(() => seen.includes('down') && b.bus.status === 'up', { what: 'down then up', timeoutMs: 10_000 });
      // up means the subscription is back: a single publish arrives without probing
      a.bus.publish('room.k', enc('after-kill'));
      await waitFor(() => got.includes('after-kill'), { what: 'delivery after resubscribe', timeoutMs: 5000 });
      assert.equal(b.bus.subscriptionCount(), 1);
    } finally {
      await Promise.all([a.bus.close(), b.bus.close(), a.history.close(), b.history.close()]);
    }
  });

  it('keeps one chain when two nodes append to one room concurrently', async () => {
    const prefix = `cc${seq++}`;
    const a = await adapters(envFor(server.url, { CONFAB_REDIS_PREFIX: prefix }));
    const b = await adapters(envFor(server.url, { CONFAB_REDIS_PREFIX: prefix }));
    try {
      const res = await Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 ? a : b).history.append(msg('shared', `c${i}`))));
      assert.deepEqual(res.map((r) => r.message.offset).sort((x, y) => x - y), Array.from({ length: 100 }, (_, i) => i + 1));
      const read = (await a.history.read('shared', 0, 200)).messages;
      assert.equal(read.length, 100);
      read.forEach((m, i) => assert.equal(m.prev, i, 'contiguous chain'));
      assert.equal(new Set(read.map((m) => m.epoch)).size, 1);
    } finally {
      await Promise.all([a.bus.close(), b.bus.close(), a.history.close(), b.history.close()]);
    }
  });

  it('sets the dedupe key with the configured expiry', async () => {
    const env = envFor(server.url, { CONFAB_REDIS_DEDUPE_S: '77' });
    const a = await adapters(env);
    try {
      await a.history.append(msg('ttl', 'x1', 'user:1'));
      const ttl = Number(await server.command(`TTL ${env.CONFAB_REDIS_PREFIX}:id:ttl:user%3A1:x1`));
      assert.ok(ttl > 0 && ttl <= 77, `ttl ${ttl}`);
    } finally {
      await Promise.all([a.bus.close(), a.history.close()]);
    }
  });

  it('notices a hung Redis (SIGSTOP) by its health ping: down, typed errors, then up and delivering after SIGCONT', async () => {
    const fast = { CONFAB_REDIS_PING_MS: '100', CONFAB_REDIS_COMMAND_TIMEOUT_MS: '300' };
    const prefix = `hung${seq++}`;
    const a = await adapters(envFor(server.url, { ...fast, CONFAB_REDIS_PREFIX: prefix }));
    const b = await adapters(envFor(server.url, { ...fast, CONFAB_REDIS_PREFIX: prefix }));
    try {
      const got: string[] = [];
      b.bus.subscribe('room.h', (d) => got.push(dec(d)));
      await b.bus.flush();
      server.pause();
      try {
        await waitFor(() => a.bus.status === 'down' && b.bus.status === 'down', { what: 'both buses down', timeoutMs: 5000 });
        assert.throws(() => a.bus.publish('room.h', enc('x')), isCode('bus_unavailable'));
        await assert.rejects(a.history.append(msg('hung', 'h1')), isCode('bus_unavailable'));
      } finally {
        server.resume();
      }
      await waitFor(() => a.bus.status === 'up' && b.bus.status === 'up', { what: 'both buses up', timeoutMs: 10_000 });
      a.bus.publish('room.h', enc('back'));
      await waitFor(() => got.includes('back'), { what: 'delivery after resume' });
      let stored = false;
      await waitFor(async () => (stored = (await a.history.append(msg('hung', 'h2')).catch(() => undefined)) !== undefined), { what: 'append after resume', timeoutMs: 10_000 });
      assert.ok(stored);
    } finally {
      await Promise.all([a.bus.close(), b.bus.close(), a.history.close(), b.history.close()]);
    }
  });

  it('rejects appends with a typed error while Redis is down and works again after', async () => {
    const a = await adapters(envFor(server.url));
    try {
      const first = await a.history.append(msg('down', 'd1'));
      await server.kill();
      await waitFor(() => a.bus.status === 'down', { what: 'bus down' });
      await assert.rejects(a.history.append(msg('down', 'd2')), isCode('bus_unavailable'));
      await assert.rejects(a.history.read('down', 0, 10), isCode('bus_unavailable'));
      assert.throws(() => a.bus.publish('room.down', enc('x')), isCode('bus_unavailable'));
      await server.start();
      await waitFor(() => a.bus.status === 'up', { what: 'bus up', timeoutMs: 10_000 });
      let r: Awaited<ReturnType<typeof a.history.append>> | undefined;
      await waitFor(async () => {
        r = await a.history.append(msg('down', 'd3')).catch(() => undefined);
        return r !== undefined;
      }, { what: 'append after restart', timeoutMs: 10_000 });
      // nothing was persisted: Redis lost everything, so the epoch is new and offsets restart
      assert.notEqual(r!.message.epoch, first.message.epoch);
      assert.equal(r!.message.offset, 1);
      assert.equal(r!.message.prev, 0);
    } finally {
      await Promise.all([a.bus.close(), a.history.close()]);
    }
  });
});

describe('what survives a Redis restart (G8)', () => {
  it('appendfsync everysec: messages survive a graceful restart, but the epoch changes (auto policy), also on read', async () => {
    const server = await startRedis({ appendonly: 'everysec' });
    try {
      const env = envFor(server.url);
      let a = await adapters(env);
      assert.equal(a.history.epochPolicy, 'restart');
      const stored = [];
      for (let i = 0; i < 5; i++) stored.push((await a.history.append(msg('ev', `e${i}`))).message);
      await Promise.all([a.bus.close(), a.history.close()]);
      await server.restart();
      a = await adapters(env);
      const info = await a.history.info('ev');
      assert.notEqual(info.epoch, stored[0]!.epoch, 'a restart that may have lost writes starts a new epoch');
      assert.equal(info.last, 5);
      const read = await a.history.read('ev', 0, 10);
      assert.deepEqual(read.messages.map((m) => [m.id, m.offset, m.epoch]), stored.map((m) => [m.id, m.offset, info.epoch]));
      const next = await a.history.append(msg('ev', 'e5'));
      assert.equal(next.message.prev, 5);
      assert.equal(next.message.epoch, info.epoch);
      await Promise.all([a.bus.close(), a.history.close()]);
    } finally {
      await server.close();
    }
  });

  it('a running adapter sees the new epoch after Redis restarted under it', async () => {
    const server = await startRedis({ appendonly: 'everysec' });
    try {
      const a = await adapters(envFor(server.url));
      const before = (await a.history.append(msg('live', 'l1'))).message;
      await server.restart();
      let info: Awaited<ReturnType<typeof a.history.info>> | undefined;
      await waitFor(async () => {
        info = await a.history.info('live').catch(() => undefined);
        return info !== undefined;
      }, { what: 'info after restart', timeoutMs: 10_000 });
      assert.notEqual(info!.epoch, before.epoch);
      assert.equal(info!.last, 1);
      await Promise.all([a.bus.close(), a.history.close()]);
    } finally {
      await server.close();
    }
  });

  it('RDB snapshots: a crash loses what came after the last snapshot, and the epoch changes so offsets are never reused within one epoch', async () => {
    const server = await startRedis();
    try {
      const env = envFor(server.url);
      let a = await adapters(env);
      const stored = [];
      for (let i = 0; i < 3; i++) stored.push((await a.history.append(msg('rdb', `s${i}`))).message);
      assert.equal(await server.command('SAVE'), 'OK');
      for (let i = 3; i < 5; i++) stored.push((await a.history.append(msg('rdb', `s${i}`))).message);
      await Promise.all([a.bus.close(), a.history.close()]);
      await server.kill();
      await server.start();
      a = await adapters(env);
      const info = await a.history.info('rdb');
      assert.equal(info.last, 3, 'the two acknowledged messages after the snapshot are gone');
      assert.notEqual(info.epoch, stored[0]!.epoch, 'so the epoch is new: a client at offset 5 is told reset');
      const next = (await a.history.append(msg('rdb', 'n4'))).message;
      assert.equal(next.offset, 4);
      assert.notEqual(next.epoch, stored[3]!.epoch, 'offset 4 exists twice only across two epochs');
      await Promise.all([a.bus.close(), a.history.close()]);
    } finally {
      await server.close();
    }
  });

  it('CONFAB_REDIS_EPOCH=keep keeps the epoch across a graceful restart', async () => {
    const server = await startRedis({ appendonly: 'everysec' });
    try {
      const env = envFor(server.url, { CONFAB_REDIS_EPOCH: 'keep' });
      let a = await adapters(env);
      const m = (await a.history.append(msg('kp', 'k1'))).message;
      await Promise.all([a.bus.close(), a.history.close()]);
      await server.restart();
      a = await adapters(env);
      assert.equal((await a.history.info('kp')).epoch, m.epoch);
      await Promise.all([a.bus.close(), a.history.close()]);
    } finally {
      await server.close();
    }
  });
});

describe('CONFAB_REDIS_WAIT_REPLICAS', () => {
  it('acknowledges once a replica has the write, and reports store_failed (retryable, stored once) without one', async () => {
    const primary = await startRedis({ args: ['--repl-diskless-sync-delay', '0'] });
    const replica = await startRedis({ args: ['--replicaof', '127.0.0.1', String(primary.port)] });
    try {
      const env = envFor(primary.url, { CONFAB_REDIS_WAIT_REPLICAS: '1', CONFAB_REDIS_WAIT_TIMEOUT_MS: '5000' });
      const patient = await adapters(env);
      await waitFor(async () => /slave0:.*state=online/.test(await primary.command('INFO replication')), { what: 'replica online', timeoutMs: 10_000 });
      const ok = await patient.history.append(msg('w', 'w1'));
      assert.equal(ok.duplicate, false);
      await Promise.all([patient.bus.close(), patient.history.close()]);
      const a = await adapters({ ...env, CONFAB_REDIS_WAIT_TIMEOUT_MS: '100' });
      await replica.kill();
      await waitFor(async () => /connected_slaves:0/.test(await primary.command('INFO replication')), { what: 'replica gone', timeoutMs: 10_000 });
      await assert.rejects(a.history.append(msg('w', 'w2')), isCode('store_failed'));
      // a resend is deduped: WAIT still fails, but nothing is stored twice
      await assert.rejects(a.history.append(msg('w', 'w2')), isCode('store_failed'));
      const read = await a.history.read('w', 0, 10);
      assert.deepEqual(read.messages.map((x) => x.id), ['w1', 'w2']);
      await Promise.all([a.bus.close(), a.history.close()]);
    } finally {
      await replica.close();
      await primary.close();
    }
  });
});
