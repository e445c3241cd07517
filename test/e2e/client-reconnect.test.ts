/**
 * Reconnect policy of the SDK against real gateway processes (R14, G2, G4):
 *  - 200 Node SDK clients on one gateway; the gateway is killed and kept down 20 s, then started
 *    again on the same port and data dir: every client comes back, re-joins and resumes with
 *    nothing lost and nothing twice; messages queued during the outage are stored once, in order.
 *    The time from the server's return until 50/99/100 % are back is printed (not asserted).
 *  - a client given two gateway URLs whose first gateway is killed continues on the second
 *    (two gateways sharing a Redis bus and history), again with nothing lost.
 * Set CONFAB_R14_BASELINE=1 to also run the outage with the old policy (no probe, backoff cap
 * 20 s) and print its figures beside the new ones; CONFAB_R14_HAPROXY=1 runs both policies with
 * the clients behind an HAProxy that is the part taken down (the gateway stays up).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { ConfabClient, MemoryStorage, type AckEvent, type ChatMessage, type ClientOptions } from '../../src/client/index.js';
import { startHaproxy, type HaproxyProcess } from '../../src/procs/haproxy.js';
import { startRedis, type RedisServer } from '../../src/procs/redis.js';
import { waitFor } from '../../src/procs/wait.js';
import { GatewayProcess } from './support.js';

const SECRET = 'e2e-reconnect-secret-0123456789';

async function session(base: string, handle: string): Promise<string> {
  const res = await fetch(`${base}/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ handle }) });
  assert.equal(res.status, 200, `POST /api/session ${handle}: ${res.status}`);
  return ((await res.json()) as { token: string }).token;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

interface Member {
  c: ConfabClient;
  room: string;
  msgs: ChatMessage[];
  /** ms since the server's return when this client was connected again / re-joined every room. */
  connectedAt?: number;
  backAt?: number;
  viaProbe: boolean;
}

/**
 * The outage scenario; returns the figures. `opts` are the clients' reconnect options; `down` is
 * the part taken away: the gateway (killed, restarted on its port and data dir) or an HAProxy in
 * front of it (stopped, restarted on its port; the server's return is then HAProxy's spawn).
 */
async function outage(
  label: string,
  opts: Partial<ClientOptions>,
  { down = 'gateway', n = 200, rooms = 10, downMs = 20_000 }: { down?: 'gateway' | 'haproxy'; n?: number; rooms?: number; downMs?: number } = {},
): Promise<{ p50: number; p99: number; max: number; connectedP99: number; viaProbe: number }> {
  const gw = await GatewayProcess.create({ CONFAB_SECRET: SECRET, CONFAB_NODE_ID: `r14-${label}`, CONFAB_MAX_CONN_PER_IP: '2000', CONFAB_RATE_BURST: '200' });
  const members: Member[] = [];
  let hap: HaproxyProcess | undefined;
  try {
    await gw.start();
    if (down === 'haproxy') hap = await startHaproxy({ backends: [{ name: 'g1', port: gw.port }] });
    const entry = hap?.url ?? gw.url;
    const tokens = await Promise.all(Array.from({ length: n }, (_, i) => session(entry, `r14${label}-${i}`)));
    let returnAt = Infinity;
    for (let i = 0; i < n; i++) {
      const c = new ConfabClient({ url: entry, token: tokens[i]!, WebSocket, storage: new MemoryStorage(), watchNetwork: false, ...opts });
      const m: Member = { c, room: `r${i % rooms}`, msgs: [], viaProbe: false };
      c.on('message', (x) => m.msgs.push(x));
      c.on('state', (s) => {
        if (Date.now() < returnAt) return;
        if (s.state === 'connecting' && s.reason === 'server_ready' && m.connectedAt === undefined) m.viaProbe = true;
        if (s.state === 'connected') m.connectedAt ??= Date.now() - returnAt;
      });
      c.on('joined', () => {
        if (Date.now() >= returnAt && c.ready) m.backAt ??= Date.now() - returnAt;
      });
      members.push(m);
      c.connect();
    }
    await Promise.all(members.map((m) => m.c.join(m.room)));
    // before: every client says one thing; each room holds n/rooms messages
    await Promise.all(members.map((m, i) => m.c.send(m.room, `pre-${i}`)));
    const perRoom = n / rooms;
    await waitFor(() => members.every((m) => m.msgs.length === perRoom), { what: 'pre messages everywhere', timeoutMs: 30_000, intervalMs: 50 });

    if (hap) await hap.stop();
    else await gw.kill('SIGKILL');
    const killedAt = Date.now();
    await waitFor(() => members.every((m) => m.c.state !== 'connected'), { what: 'every client notices', timeoutMs: 15_000, intervalMs: 50 });
    // during: two writers per room queue two messages each (kept in the outbox)
    const queued: Promise<AckEvent>[] = [];
    const writers = members.filter((_, i) => i < rooms * 2);
    for (const [k, m] of writers.entries()) for (const j of [0, 1]) queued.push(m.c.send(m.room, `down-${k}-${j}`));
    await new Promise((r) => setTimeout(r, Math.max(0, killedAt + downMs - Date.now()))); // the outage itself: the scenario, not a synchronisation
    if (hap) {
      const port = hap.port;
      returnAt = Date.now();
      hap = await startHaproxy({ backends: [{ name: 'g1', port: gw.port }], port });
    } else {
      await gw.start();
      returnAt = Date.now();
    }

    await waitFor(() => members.every((m) => m.backAt !== undefined), { what: 'every client back and re-joined', timeoutMs: 90_000, intervalMs: 20 });
    const acks = await Promise.all(queued);
    assert.ok(acks.every((a) => !a.dup), 'each queued message stored once (no resend needed a dedupe)');
    const expected = perRoom + 4;
    await waitFor(() => members.every((m) => m.msgs.length >= expected), { what: 'every message everywhere', timeoutMs: 30_000, intervalMs: 50 });

    // nothing lost, nothing twice, one order per room, queued messages in each writer's send order
    const canon = new Map<string, string[]>();
    for (const m of members) {
      const ids = m.msgs.map((x) => x.id);
      assert.equal(m.msgs.length, expected, `${m.room}: ${m.msgs.length} messages, want ${expected}`);
      assert.equal(new Set(ids).size, ids.length, 'no duplicate delivered');
      assert.ok(m.msgs.every((x, i) => i === 0 || x.offset > m.msgs[i - 1]!.offset), 'in offset order');
      const first = canon.get(m.room);
      if (first) assert.deepEqual(ids, first, `${m.room}: every member sees the same sequence`);
      else canon.set(m.room, ids);
      for (const k of writers.keys()) {
        const mine = m.msgs.filter((x) => x.text.startsWith(`down-${k}-`)).map((x) => x.text);
        if (mine.length) assert.deepEqual(mine, [`down-${k}-0`, `down-${k}-1`]);
      }
    }
    assert.ok(members.every((m) => m.c.pending.length === 0), 'every outbox empty');

    const back = members.map((m) => m.backAt!).sort((a, b) => a - b);
    const conn = members.map((m) => m.connectedAt!).sort((a, b) => a - b);
    const r = { p50: percentile(back, 50), p99: percentile(back, 99), max: back.at(-1)!, connectedP99: percentile(conn, 99), viaProbe: members.filter((m) => m.viaProbe).length };
    console.log(
      `R14 [${label}] ${n} clients, ${down} down ${((returnAt - killedAt) / 1000).toFixed(1)} s: back and re-joined after the server's return ` +
        `p50 ${r.p50} ms, p99 ${r.p99} ms, 100% ${r.max} ms (connected p99 ${r.connectedP99} ms); ${r.viaProbe}/${n} reconnected on a probe`,
    );
    return r;
  } finally {
    for (const m of members) m.c.close();
    await hap?.stop();
    await gw.dispose();
  }
}

test('R14: 200 clients, gateway down 20 s: all come back, re-join and resume with nothing lost', async () => {
  const r = await outage('probe', {});
  assert.ok(r.viaProbe > 0, 'the readiness probe ended waits (it is on by default)');
});

test('R14 baseline (old policy: no probe, backoff cap 20 s), for comparison', { skip: !process.env.CONFAB_R14_BASELINE && 'set CONFAB_R14_BASELINE=1 to measure' }, async () => {
  const r = await outage('baseline', { probe: false, backoff: { minMs: 500, maxMs: 20_000 } });
  assert.equal(r.viaProbe, 0);
});

test('R14 behind HAProxy (HAProxy down 20 s), new and old policy', { skip: !process.env.CONFAB_R14_HAPROXY && 'set CONFAB_R14_HAPROXY=1 to measure' }, async () => {
  const r = await outage('haproxy-probe', {}, { down: 'haproxy' });
  assert.ok(r.viaProbe > 0);
  await outage('haproxy-baseline', { probe: false, backoff: { minMs: 500, maxMs: 20_000 } }, { down: 'haproxy' });
});

describe('failover between two gateway URLs (shared Redis bus and history)', () => {
  let redis: RedisServer;
  let a: GatewayProcess;
  let b: GatewayProcess;
  const clients: ConfabClient[] = [];
  before(async () => {
    redis = await startRedis();
    const env = (node: string) => ({ CONFAB_SECRET: SECRET, CONFAB_BUS: 'redis', REDIS_URL: redis.url, CONFAB_NODE_ID: node, CONFAB_REGION: node });
    a = await GatewayProcess.create(env('gw-a'));
    b = await GatewayProcess.create(env('gw-b'));
    await Promise.all([a.start(), b.start()]);
  });
  after(async () => {
    for (const c of clients) c.close();
    await Promise.all([a?.dispose(), b?.dispose()]);
    await redis?.close();
  });

  test('a client given [a, b] whose gateway a is killed continues on b: queued sends stored in order, missed messages delivered once', async () => {
    const mk = (url: string | string[], token: string): ConfabClient => {
      const c = new ConfabClient({ url, token, WebSocket, storage: new MemoryStorage(), watchNetwork: false, backoff: { minMs: 100, maxMs: 1000 } });
      clients.push(c);
      return c;
    };
    const subject = mk([a.url, b.url], await session(a.url, 'fo-subject'));
    const watcher = mk(b.url, await session(b.url, 'fo-watcher'));
    const got: ChatMessage[] = [];
    const seen: ChatMessage[] = [];
    subject.on('message', (m) => got.push(m));
    watcher.on('message', (m) => seen.push(m));
    subject.connect();
    watcher.connect();
    await Promise.all([subject.join('fo'), watcher.join('fo')]);
    assert.equal(subject.welcome?.node, 'gw-a');
    for (const t of ['s1', 's2']) await subject.send('fo', t);

    await a.kill('SIGKILL');
    await waitFor(() => subject.state !== 'connected', { what: 'the subject notices', timeoutMs: 10_000 });
    const queued = ['s3', 's4', 's5'].map((t) => subject.send('fo', t));
    for (const t of ['w1', 'w2']) await watcher.send('fo', t); // while the subject is away
    const acks = await Promise.all(queued);
    assert.equal(subject.welcome?.node, 'gw-b', 'continued on the second URL');
    assert.ok(acks.every((x, i) => i === 0 || x.offset > acks[i - 1]!.offset), 'queued sends stored in send order');

    await waitFor(() => got.length === 7 && seen.length === 7, { what: 'all 7 messages at both', timeoutMs: 15_000 });
    assert.deepEqual(got.map((m) => m.id), seen.map((m) => m.id), 'the same sequence at both, no duplicate');
    assert.deepEqual(got.map((m) => m.text).filter((t) => t.startsWith('s')), ['s1', 's2', 's3', 's4', 's5']);
    assert.deepEqual(got.map((m) => m.text).filter((t) => t.startsWith('w')), ['w1', 'w2']);
  });
});
