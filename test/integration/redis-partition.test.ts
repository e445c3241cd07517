/**
 * One gateway cut off from Redis (through a TCP proxy this test controls) while
 * another gateway keeps working: the cut-off gateway reports not ready and
 * rejects publishes with a typed error; the other one's messages are stored.
 * When the link heals, the cut-off gateway's members must get what was
 * published meanwhile, in order, without waiting for a later message.
 * Two of these tests first reproduced gateway gaps (quiet rooms not caught up
 * after a bus outage; `recovered` answered across an epoch change).
 */
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { loadConfig } from '../../src/config/config.js';
import { createRedisAdapters } from '../../src/redis/index.js';
import { createSession, startTestGateway, TEST_SECRET, type TestGateway } from '../../src/testkit/gateway.js';
import { RawClient } from '../../src/testkit/raw-client.js';
import { startRedis, type RedisServer } from '../../src/procs/redis.js';
import { waitFor } from '../../src/procs/wait.js';

const log = pino({ level: 'silent' });

/** A loopback TCP proxy that can cut every connection and refuse new ones until healed. */
async function startProxy(targetPort: number): Promise<{ url: string; cut(): void; heal(): void; close(): Promise<void> }> {
  const socks = new Set<Socket>();
  let blocked = false;
  const server: Server = createServer((client) => {
    if (blocked) return client.destroy();
    const upstream = connect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      socks.add(s);
      s.on('close', () => socks.delete(s));
      s.on('error', () => {});
    }
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `redis://127.0.0.1:${port}`,
    cut: () => {
      blocked = true;
      for (const s of socks) s.destroy();
    },
    heal: () => {
      blocked = false;
    },
    close: () => {
      for (const s of socks) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

type Proxy = Awaited<ReturnType<typeof startProxy>>;

/**
 * Two gateways on one redis-server, the second one reaching it through a proxy the test can cut.
 * Started before the suite, stopped after it.
 */
function partitionedPair(redisOpts: Parameters<typeof startRedis>[0], nodes: [string, string]) {
  const f = { redis: undefined as unknown as RedisServer, proxy: undefined as unknown as Proxy, gws: [] as TestGateway[], clients: [] as RawClient[] };
  before(async () => {
    f.redis = await startRedis(redisOpts);
    f.proxy = await startProxy(f.redis.port);
    for (const [node, url] of [[nodes[0], f.redis.url], [nodes[1], f.proxy.url]] as const) {
      const env = { REDIS_URL: url, CONFAB_SECRET: TEST_SECRET, CONFAB_NODE_ID: node, CONFAB_REDIS_RECONNECT_MAX_MS: '100', CONFAB_REDIS_CONNECT_TIMEOUT_MS: '2000' };
      const { bus, history } = await createRedisAdapters(loadConfig(env), log, { env });
      f.gws.push(await startTestGateway({ bus, history, env }));
    }
  });
  after(async () => {
    for (const c of f.clients) c.close();
    for (const g of f.gws) await g.close().catch(() => undefined);
    await f.proxy?.close();
    await f.redis?.close();
  });
  return f;
}

describe('one gateway partitioned from Redis', () => {
  const f = partitionedPair({ appendonly: 'always' }, ['near', 'far']);

  it('rejects with a typed error while cut off, and stays consistent with the other gateway', async () => {
    const [near, far] = f.gws;
    const a = await createSession(near!.url, 'p-near');
    const b = await createSession(far!.url, 'p-far');
    const cn = await RawClient.connect(near!.wsUrl, a.token);
    const cf = await RawClient.connect(far!.wsUrl, b.token);
    f.clients.push(cn, cf);
    for (const c of [cn, cf]) {
      c.send({ t: 'join', room: 'split' });
      await c.next('joined', (j) => j.room === 'split');
    }
    cn.send({ t: 'pub', id: 'before', room: 'split', text: 'before' });
    await cf.next('msg', (m) => m.id === 'before');
    f.proxy.cut();
    await waitFor(async () => (await fetch(`${far!.url}/readyz`)).status === 503, { what: 'far gateway not ready', timeoutMs: 10_000 });
    assert.equal((await fetch(`${near!.url}/readyz`)).status, 200, 'the other gateway is unaffected');
    cf.send({ t: 'pub', id: 'cut', room: 'split', text: 'cut' });
    const err = await cf.next('error', (e) => e.id === 'cut');
    assert.ok(err.code === 'bus_unavailable' || err.code === 'store_failed', err.code);
    for (let i = 0; i < 3; i++) cn.send({ t: 'pub', id: `during${i}`, room: 'split', text: `during${i}` });
    await cn.next('ack', (x) => x.id === 'during2');
    f.proxy.heal();
    await waitFor(async () => (await fetch(`${far!.url}/readyz`)).status === 200, { what: 'far gateway ready again', timeoutMs: 10_000 });
    // the history connection may come back a moment after the bus: resend like the SDK until acknowledged
    await waitFor(async () => {
      const from = cf.frames.length;
      cf.send({ t: 'pub', id: 'cut', room: 'split', text: 'cut' });
      await waitFor(() => cf.frames.slice(from).some((f) => (f.t === 'ack' || f.t === 'error') && f.id === 'cut'), { what: 'ack or typed error' });
      return cf.frames.slice(from).some((f) => f.t === 'ack' && f.id === 'cut');
    }, { what: 'resend acknowledged', timeoutMs: 10_000, intervalMs: 50 });
    await waitFor(() => cf.msgs('split').some((m) => m.id === 'cut') && cn.msgs('split').some((m) => m.id === 'cut'), { what: 'both see the resent message' });
    const order = (c: RawClient) => c.msgs('split').map((m) => m.id);
    assert.deepEqual(order(cf), ['before', 'during0', 'during1', 'during2', 'cut'], 'the far member got what it missed, in order, before its own message');
    assert.deepEqual(order(cn), order(cf));
  });

  it('delivers what was published during the partition as soon as it heals, without waiting for a later message', async () => {
    const [near, far] = f.gws;
    const a = await createSession(near!.url, 'q-near');
    const b = await createSession(far!.url, 'q-far');
    const cn = await RawClient.connect(near!.wsUrl, a.token);
    const cf = await RawClient.connect(far!.wsUrl, b.token);
    f.clients.push(cn, cf);
    for (const c of [cn, cf]) {
      c.send({ t: 'join', room: 'quiet' });
      await c.next('joined', (j) => j.room === 'quiet');
    }
    f.proxy.cut();
    await waitFor(async () => (await fetch(`${far!.url}/readyz`)).status === 503, { what: 'far gateway not ready', timeoutMs: 10_000 });
    cn.send({ t: 'pub', id: 'q1', room: 'quiet', text: 'q1' });
    await cn.next('ack', (x) => x.id === 'q1');
    f.proxy.heal();
    await waitFor(async () => (await fetch(`${far!.url}/readyz`)).status === 200, { what: 'far gateway ready again', timeoutMs: 10_000 });
    await cf.next('msg', (m) => m.id === 'q1', 5000);
  });
});

describe('a partitioned gateway, and Redis losing its tail meanwhile', () => {
  const f = partitionedPair({}, ['near2', 'far2']); // RDB only: SAVE by hand, then kill -9 loses what came after

  it('never answers `recovered` to a client whose offsets were lost and reused (G2)', async () => {
    const [near, far] = f.gws;
    const w = await RawClient.connect(near!.wsUrl, (await createSession(near!.url, 'e-writer')).token);
    const stay = await RawClient.connect(far!.wsUrl, (await createSession(far!.url, 'e-stay')).token);
    const readerSession = await createSession(far!.url, 'e-reader');
    const r = await RawClient.connect(far!.wsUrl, readerSession.token);
    f.clients.push(w, stay, r);
    for (const c of [w, stay, r]) {
      c.send({ t: 'join', room: 'ep' });
      await c.next('joined', (j) => j.room === 'ep');
    }
    for (let i = 0; i < 3; i++) w.send({ t: 'pub', id: `e${i}`, room: 'ep', text: `saved ${i}` });
    await w.next('ack', (a) => a.id === 'e2');
    assert.equal(await f.redis.command('SAVE'), 'OK');
    for (let i = 3; i < 5; i++) w.send({ t: 'pub', id: `e${i}`, room: 'ep', text: `lost ${i}` });
    await waitFor(() => r.msgs('ep').length === 5, { what: 'reader saw 1..5' });
    const seen = r.msgs('ep').at(-1)!;
    r.close();
    await r.closed();
    f.proxy.cut();
    await waitFor(async () => (await fetch(`${far!.url}/readyz`)).status === 503, { what: 'far cut off', timeoutMs: 10_000 });
    await f.redis.kill();
    await f.redis.start();
    // while the far gateway is cut off, offsets 4 and 5 are written again with other content
    for (const id of ['x0', 'x1']) {
      await waitFor(async () => {
        const from = w.frames.length;
        w.send({ t: 'pub', id, room: 'ep', text: `new ${id}` });
        await waitFor(() => w.frames.slice(from).some((f) => (f.t === 'ack' || f.t === 'error') && f.id === id), { what: `reply to ${id}` });
        return w.frames.slice(from).some((f) => f.t === 'ack' && f.id === id);
      }, { what: `${id} acknowledged`, timeoutMs: 10_000, intervalMs: 50 });
    }
    assert.equal(w.all('ack').find((a) => a.id === 'x1')!.offset, 5);
    f.proxy.heal();
    await waitFor(async () => (await fetch(`${far!.url}/readyz`)).status === 200, { what: 'far ready again', timeoutMs: 10_000 });
    const r2 = await RawClient.connect(far!.wsUrl, readerSession.token);
    f.clients.push(r2);
    // /readyz follows the bus; the history connection may still be reconnecting: a refused resume (retry
    // class later) is sent again, as the SDK does
    let j2: Extract<(typeof r2.frames)[number], { t: 'joined' }> | undefined;
    await waitFor(async () => {
      const from = r2.frames.length;
      r2.send({ t: 'join', room: 'ep', since: { epoch: seen.epoch, offset: seen.offset } });
      await waitFor(() => r2.frames.slice(from).some((f) => (f.t === 'joined' || f.t === 'error') && f.room === 'ep'), { what: 'an answer to the resume' });
      j2 = r2.frames.slice(from).find((f): f is NonNullable<typeof j2> => f.t === 'joined' && f.room === 'ep');
      return j2 !== undefined;
    }, { what: 'the resume joined', timeoutMs: 15_000, intervalMs: 100 });
    if (!j2) throw new Error('unreachable: waitFor resolved without a joined frame');
    assert.ok(!(j2.recovered && r2.msgs('ep').length === 0), `recovered with a hole: the reader never gets "new x0", "new x1" (joined ${JSON.stringify(j2)})`);
    assert.equal(j2.reset, true);
  });
});
