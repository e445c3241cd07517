/**
 * Gateway processes (`confab start` with REDIS_URL) over one redis-server:
 * the gateway a client is on is killed with SIGKILL while another client keeps
 * writing; the client resumes on the other process with exactly the messages it
 * missed, once, in order, then live ones (G2). A bad Redis setting stops the
 * process at start with a message naming the variable.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createSession, spawnGateway, type GatewayProcess } from '../../src/testkit/gateway.js';
import { RawClient } from '../../src/testkit/raw-client.js';
import { startRedis, type RedisServer } from '../../src/procs/redis.js';
import { waitFor } from '../../src/procs/wait.js';

describe('gateway processes over Redis', () => {
  let redis: RedisServer;
  let dir: string;
  const procs: GatewayProcess[] = [];
  const clients: RawClient[] = [];
  const env = (node: string) => ({ REDIS_URL: redis.url, PORT: '0', CONFAB_NODE_ID: node, CONFAB_DATA_DIR: join(dir, node), CONFAB_REDIS_RECONNECT_MAX_MS: '200' });

  before(async () => {
    redis = await startRedis({ appendonly: 'always' });
    dir = mkdtempSync(join(tmpdir(), 'confab-redis-proc-'));
  });
  after(async () => {
    for (const c of clients) c.close();
    for (const p of procs) await p.kill();
    await redis?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('resumes on another gateway after kill -9 of the one the client was on (G2)', async () => {
    const a = await spawnGateway(env('pa'));
    const b = await spawnGateway(env('pb'));
    procs.push(a, b);
    const reader = await createSession(a.url, 'reader');
    const writer = await createSession(b.url, 'writer');
    const r = await RawClient.connect(a.url.replace(/^http/, 'ws') + '/ws', reader.token);
    const w = await RawClient.connect(b.url.replace(/^http/, 'ws') + '/ws', writer.token);
    clients.push(r, w);
    r.send({ t: 'join', room: 'lobby' });
    const j = await r.next('joined', (f) => f.room === 'lobby');
    w.send({ t: 'join', room: 'lobby' });
    await w.next('joined', (f) => f.room === 'lobby');
    for (let i = 0; i < 10; i++) w.send({ t: 'pub', id: `k${i}`, room: 'lobby', text: `k${i}` });
    await waitFor(() => r.msgs('lobby').length === 10, { what: 'first ten at the reader' });
    const lastSeen = r.msgs('lobby').at(-1)!.offset;
    await a.kill();
    await r.closed();
    for (let i = 10; i < 20; i++) w.send({ t: 'pub', id: `k${i}`, room: 'lobby', text: `k${i}` });
    await w.next('ack', (f) => f.id === 'k19');
    const r2 = await RawClient.connect(b.url.replace(/^http/, 'ws') + '/ws', reader.token);
    clients.push(r2);
    r2.send({ t: 'join', room: 'lobby', since: { epoch: j.epoch, offset: lastSeen } });
    const j2 = await r2.next('joined', (f) => f.room === 'lobby');
    assert.equal(j2.recovered, true);
    assert.equal(j2.gap, undefined);
    assert.equal(j2.reset, undefined);
    w.send({ t: 'pub', id: 'live', room: 'lobby', text: 'live' });
    await r2.next('msg', (m) => m.id === 'live');
    const got = r2.msgs('lobby');
    assert.deepEqual(got.map((m) => m.text), [...Array.from({ length: 10 }, (_, i) => `k${i + 10}`), 'live']);
    assert.equal(got[0]!.prev, lastSeen);
    for (let i = 1; i < got.length; i++) assert.equal(got[i]!.prev, got[i - 1]!.offset, 'no hole');
  });

  it('refuses to start with a bad Redis setting, naming the variable', async () => {
    await assert.rejects(spawnGateway({ ...env('bad'), CONFAB_REDIS_DEDUPE_S: 'forever' }), /CONFAB_REDIS_DEDUPE_S/);
  });
});
