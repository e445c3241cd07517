/**
 * Pacing and the outbox state machine.
 * - `Pacer`: the client's token bucket, on a fake clock, and the margin it keeps for delivery jitter
 *   (checked against the gateway's own TokenBucket fed the same frames, delayed).
 * - `Outbox`: queued → sent → acked, requeue on a new connection, what storage keeps.
 * - The client against a scripted gateway that enforces the server's bucket and fence the way
 *   src/gateway/connection.ts does (rate_limited naming id/room, a refused pub fencing its room),
 *   in real time at small limits: pacing keeps it under the limit; with pacing off, resends by
 *   retry class still deliver everything once and in order; joins refused `later` are retried.
 * The same paths against real gateways at the default limits: test/e2e/client-limits.test.ts.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfabClient, MemoryStorage, Outbox, Pacer, type ClientError, type ClientOptions, type OutboxEntry } from '../../src/client/index.js';
import { TokenBucket } from '../../src/gateway/limits.js';
import { ErrorCodes } from '../../src/protocol/codes.js';
import { waitFor } from '../../src/procs/wait.js';

// ---- Pacer ------------------------------------------------------------------

function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

test('pacer: starts with its burst, then one token per 1/rate s, never above the burst', () => {
  const c = clock();
  const p = new Pacer(10, 4, c.now);
  for (let i = 0; i < 4; i++) assert.equal(p.take(), true, `burst token ${i}`);
  assert.equal(p.take(), false, 'empty');
  assert.equal(p.waitMs(), 100, 'one token every 100 ms at 10/s');
  c.advance(99);
  assert.equal(p.take(), false);
  c.advance(1);
  assert.equal(p.take(), true);
  c.advance(60_000); // a long idle time refills to the burst, not beyond
  assert.equal(Math.round(p.available()), 4);
  for (let i = 0; i < 4; i++) assert.equal(p.take(), true);
  assert.equal(p.take(), false);
  c.advance(1000);
  p.drain();
  assert.equal(p.available(), 0, 'drain: the server said its bucket is empty');
  assert.equal(p.waitMs(), 100);
  assert.equal(p.take(), false);
});

test('pacer: derived from welcome.limits (a share of rate and burst); no limits, no pacing', () => {
  const p = Pacer.forLimits({ ratePerSec: 20, rateBurst: 40 });
  assert.equal(p.rate, 19);
  assert.equal(p.burst, 20);
  assert.equal(p.limited, true);
  const q = Pacer.forLimits({ ratePerSec: 20, rateBurst: 40 }, { rateShare: 1, burstShare: 1 });
  assert.deepEqual([q.rate, q.burst], [20, 40]);
  assert.equal(Pacer.forLimits({ ratePerSec: 5, rateBurst: 1 }).burst, 1, 'at least one frame at a time');
  for (const l of [undefined, {}, { ratePerSec: 0, rateBurst: 40 }, { ratePerSec: 'x' }, { ratePerSec: -1 }]) {
    const u = Pacer.forLimits(l as { ratePerSec?: unknown });
    assert.equal(u.limited, false, JSON.stringify(l));
    for (let i = 0; i < 1000; i++) assert.equal(u.take(), true);
  }
});

/**
 * The gateway counts a frame when it reads it. Feed the gateway's own bucket the frames a client
 * paced by `Pacer.forLimits` sends, each read up to `maxDelayMs` later (random, in order, as TCP
 * delivers): with the default shares, nothing is refused for delays up to 1 s at the default limits;
 * a client that used the server's whole burst would be refused.
 */
function refusedUnderJitter(shares: { rateShare: number; burstShare: number }, maxDelayMs: number, seed: number): number {
  let s = seed;
  const rnd = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const c = clock(0);
  const client = Pacer.forLimits({ ratePerSec: 20, rateBurst: 40 }, shares, c.now);
  const server = new TokenBucket(20, 40, 0);
  let lastRead = 0;
  let refused = 0;
  // 60 s of a client that wants to send as fast as it may, with idle spells (the bucket refills, then bursts)
  for (let t = 0; t < 60_000; t += 5) {
    c.advance(5);
    if (Math.floor(t / 3000) % 3 === 2) continue; // idle one third of the time
    while (client.take()) {
      // each frame is read after its own delay, never before the one sent before it
      const read = Math.max(lastRead, c.now() + rnd() * maxDelayMs);
      lastRead = read;
      if (!server.take(read)) refused++;
    }
  }
  return refused;
}

test('pacer: the default shares leave room for a second of delivery jitter; the whole burst would not', () => {
  for (let seed = 1; seed <= 5; seed++) assert.equal(refusedUnderJitter({ rateShare: 0.95, burstShare: 0.5 }, 1000, seed), 0, `seed ${seed}`);
  const greedy = refusedUnderJitter({ rateShare: 1, burstShare: 1 }, 1000, 1);
  assert.ok(greedy > 0, `a client using the whole budget is refused under the same jitter (${greedy})`);
});

// ---- Outbox state machine ----------------------------------------------------------

const entry = (id: string, room = 'lobby'): OutboxEntry => ({ id, kind: 'msg', room, text: `t-${id}`, createdAt: 1 });

test('outbox: queued → sent → acked; a refusal or a new connection makes sent queued again; illegal moves are refused', () => {
  const o = new Outbox(new MemoryStorage(), 'k');
  o.add(entry('a'));
  o.add(entry('b'));
  o.add({ ...entry('c', 'other'), state: 'sent' }); // a caller's state is ignored: new entries are queued
  assert.deepEqual(o.list().map((e) => e.state), ['queued', 'queued', 'queued']);
  assert.equal(o.markSent('a'), true);
  assert.equal(o.markSent('a'), false, 'sent twice on one connection: no');
  assert.equal(o.markQueued('b'), false, 'b was never sent');
  assert.equal(o.markSent('b'), true);
  assert.equal(o.markSent('c'), true);
  assert.deepEqual([o.inFlight(), o.inFlight('lobby'), o.inFlight('other'), o.inFlight('nope')], [3, 2, 1, 0]);
  assert.equal(o.markQueued('a'), true, 'refused for a passing reason');
  assert.equal(o.stateOf('a'), 'queued');
  assert.equal(o.remove('b')?.id, 'b', 'acked');
  assert.equal(o.stateOf('b'), undefined);
  assert.equal(o.markSent('b'), false, 'an acked entry is gone');
  assert.equal(o.requeueAll(), 1, 'the connection ended: c was in flight');
  assert.deepEqual(o.list().map((e) => [e.id, e.state]), [['a', 'queued'], ['c', 'queued']]);
  assert.equal(o.inFlight(), 0);
  const copy = o.list()[0]!;
  copy.state = 'sent';
  assert.equal(o.stateOf('a'), 'queued', 'list() hands out copies');
});

test('outbox: storage keeps queued and sent entries (both unacknowledged), without their state; a reload reads all as queued', () => {
  const storage = new MemoryStorage();
  const o = new Outbox(storage, 'k');
  for (const id of ['1', '2', '3']) o.add(entry(id));
  o.markSent('1');
  o.markSent('2');
  o.remove('1'); // acked: the only way out besides a drop
  const stored = JSON.parse(storage.getItem('k')!) as Record<string, unknown>[];
  assert.deepEqual(stored.map((e) => e.id), ['2', '3'], 'the sent entry 2 is kept');
  assert.ok(stored.every((e) => !('state' in e)), 'the state is not persisted');
  const reloaded = new Outbox(storage, 'k');
  assert.deepEqual(reloaded.list().map((e) => [e.id, e.state]), [['2', 'queued'], ['3', 'queued']]);
});

// ---- the client against a scripted gateway ----------------------------------------------

type Frame = { t: string; id?: string; room?: string; text?: string; since?: unknown };
interface GatewayScript {
  limits: Record<string, number>;
  /** Answer joins with a `later` error this many times first (per room), e.g. bus trouble. */
  joinFailures?: number;
}

/**
 * One connection to a scripted gateway: the server's token bucket over every frame, `rate_limited`
 * answers naming id/room (typing dropped silently), a refused pub fencing its room until that id
 * comes again, a store that dedupes by id. Answers go out after the current task, like a network.
 */
class GatewaySocket {
  static script: GatewayScript;
  static all: GatewaySocket[] = [];
  /** The store: ids in the order stored (all rooms), shared by every connection like a real history. */
  static stored: string[] = [];
  static offsets = new Map<string, number>();
  static joinFailed = new Map<string, number>();
  readyState = 1;
  readonly url: string;
  readonly received: { f: Frame; at: number; limited: boolean }[] = [];
  onopen: ((ev: never) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: never) => void) | null = null;
  readonly #bucket: TokenBucket;
  readonly #rooms = new Set<string>();
  readonly #fences = new Map<string, string>();
  constructor(url: string) {
    this.url = url;
    GatewaySocket.all.push(this);
    const l = GatewaySocket.script.limits;
    this.#bucket = new TokenBucket(l.ratePerSec ?? 1e9, l.rateBurst ?? 1e9);
    this.#answer({ t: 'welcome', v: 1, node: 'n1', region: 'r1', version: 't', user: { id: 'u1', handle: 'ann' }, rooms: [], limits: l });
  }
  #answer(frame: object): void {
    setImmediate(() => {
      if (this.readyState === 1) this.onmessage?.({ data: JSON.stringify(frame) });
    });
  }
  #error(code: keyof typeof ErrorCodes, extra: { id?: string; room?: string }): void {
    this.#answer({ t: 'error', code, message: code, retry: ErrorCodes[code].retry, ...extra });
  }
  send(data: string): void {
    const f = JSON.parse(data) as Frame;
    const allowed = this.#bucket.take();
    this.received.push({ f, at: Date.now(), limited: !allowed });
    const room = f.t === 'alert' ? '_alerts' : f.room;
    if (!allowed) {
      if (f.t === 'typing') return;
      if ((f.t === 'pub' && this.#rooms.has(f.room!)) || f.t === 'alert') if (!this.#fences.has(room!)) this.#fences.set(room!, f.id!);
      return this.#error('rate_limited', { ...(f.id ? { id: f.id } : {}), ...(room ? { room } : {}) });
    }
    switch (f.t) {
      case 'join': {
        const n = GatewaySocket.joinFailed.get(f.room!) ?? 0;
        if (n < (GatewaySocket.script.joinFailures ?? 0)) {
          GatewaySocket.joinFailed.set(f.room!, n + 1);
          return this.#error('bus_unavailable', { room: f.room! });
        }
        this.#rooms.add(f.room!);
        return this.#answer({ t: 'joined', room: f.room, epoch: 'e1', last: 0, recovered: false, members: [], count: 1 });
      }
      case 'leave':
        this.#rooms.delete(f.room!);
        this.#fences.delete(f.room!);
        return this.#answer({ t: 'left', room: f.room });
      case 'pub':
      case 'alert': {
        if (!this.#rooms.has(room!)) return this.#error('not_joined', { id: f.id!, room: room! });
        const fence = this.#fences.get(room!);
        if (fence !== undefined && fence !== f.id) return this.#error('fenced', { id: f.id!, room: room! });
        this.#fences.delete(room!);
        const dup = GatewaySocket.offsets.has(f.id!);
        if (!dup) {
          GatewaySocket.stored.push(f.id!);
          GatewaySocket.offsets.set(f.id!, GatewaySocket.stored.length);
        }
        return this.#answer({ t: 'ack', id: f.id, room, offset: GatewaySocket.offsets.get(f.id!), epoch: 'e1', dup });
      }
      case 'ping':
        return this.#answer({ t: 'pong' });
      case 'rooms':
        return this.#answer({ t: 'rooms', rooms: [] });
      default:
        return;
    }
  }
  close(): void {
    this.readyState = 3;
  }
  drop(): void {
    this.readyState = 3;
    this.onclose?.({ code: 1006, reason: '' });
  }
  frames(t: string): Frame[] {
    return this.received.filter((r) => r.f.t === t).map((r) => r.f);
  }
  get limited(): number {
    return this.received.filter((r) => r.limited).length;
  }
}

const live: ConfabClient[] = [];
afterEach(() => {
  for (const c of live.splice(0)) c.close();
  GatewaySocket.all = [];
  GatewaySocket.stored = [];
  GatewaySocket.offsets = new Map();
  GatewaySocket.joinFailed = new Map();
});

function client(script: GatewayScript, extra: Partial<ClientOptions> = {}): { c: ConfabClient; errors: ClientError[] } {
  GatewaySocket.script = script;
  const c = new ConfabClient({ url: 'http://gw:1', token: 't', WebSocket: GatewaySocket, storage: new MemoryStorage(), watchNetwork: false, pingIntervalMs: 0, backoff: { minMs: 50, maxMs: 1000 }, probe: false, ...extra });
  live.push(c);
  const errors: ClientError[] = [];
  c.on('error', (e) => errors.push(e));
  return { c, errors };
}

const SMALL = { ratePerSec: 100, rateBurst: 10, maxRooms: 50, maxTextChars: 100, maxFrameBytes: 300, floodCloseAfter: 100, pingIntervalMs: 25000 };

test('client pacing: a burst of 150 sends stays inside the server bucket (nothing rate limited), all acked once, in send order', async () => {
  const { c, errors } = client({ limits: SMALL });
  c.connect();
  await c.join('lobby');
  const t0 = Date.now();
  const acks = await Promise.all(Array.from({ length: 150 }, (_, i) => c.send('lobby', `m${i}`)));
  const ms = Date.now() - t0;
  const s = GatewaySocket.all[0]!;
  assert.equal(s.limited, 0, 'no frame over the server limit');
  assert.deepEqual(errors.map((e) => e.code), []);
  assert.deepEqual(acks.map((a) => a.dup), Array<boolean>(150).fill(false));
  assert.ok(acks.every((a, i) => i === 0 || a.offset > acks[i - 1]!.offset), 'offsets increase in send order');
  assert.equal(s.frames('pub').length, 150, 'each message sent once');
  // paced: 150 pubs + 2 joins at 95/s after a burst of 5 take ≥ 1.5 s; unpaced it would take a few ms
  assert.ok(ms >= 1400, `took ${ms} ms`);
  assert.equal(GatewaySocket.all.length, 1, 'no reconnect');
});

test('client pacing off: the server refuses (rate_limited, then fenced); resends by retry class still store everything once, in order', async () => {
  const { c, errors } = client({ limits: SMALL }, { pacing: false });
  c.connect();
  await c.join('lobby');
  const sends = Array.from({ length: 60 }, (_, i) => c.send('lobby', `m${i}`));
  const acks = await Promise.all(sends);
  const s = GatewaySocket.all[0]!;
  assert.ok(s.limited > 0, 'the unpaced burst went over the limit');
  assert.ok(errors.some((e) => e.code === 'rate_limited' && e.retry === 'later' && e.id !== undefined), 'rate_limited reported with its id, class later');
  assert.ok(!errors.some((e) => e.code === 'fenced'), 'fenced is handled silently');
  const ids = acks.map((a) => a.id);
  assert.deepEqual(GatewaySocket.stored, ids, 'stored once each, in send order');
  assert.ok(acks.every((a) => !a.dup), 'no resend of something already stored');
  assert.equal(GatewaySocket.all.length, 1, 'no reconnect');
});

test('joins: 51 at once are paced (none refused); with pacing off every refused join is retried until joined', async () => {
  const rooms = Array.from({ length: 50 }, (_, i) => `r${i}`);
  {
    const { c, errors } = client({ limits: SMALL });
    c.connect();
    const joined = await Promise.all(rooms.map((r) => c.join(r)));
    assert.equal(joined.length, 50);
    assert.equal(GatewaySocket.all[0]!.limited, 0);
    assert.equal(GatewaySocket.all[0]!.frames('join').length, 51, '50 rooms and _alerts, each once');
    assert.deepEqual(errors, []);
    c.close();
  }
  GatewaySocket.all = [];
  {
    const { c, errors } = client({ limits: SMALL }, { pacing: false });
    c.connect();
    const joined = await Promise.all(rooms.map((r) => c.join(r)));
    assert.deepEqual(joined.map((j) => j.room), rooms);
    const s = GatewaySocket.all[0]!;
    assert.ok(s.limited > 0, 'unpaced joins were refused');
    assert.ok(errors.length > 0 && errors.every((e) => e.code === 'rate_limited' && e.retry === 'later'));
    await waitFor(() => c.ready, { what: 'every room (and _alerts) joined', timeoutMs: 5000 });
  }
});

test('joins refused later (bus trouble) are retried until joined; the join() promise waits for it', async () => {
  const { c, errors } = client({ limits: SMALL, joinFailures: 2 });
  c.connect();
  const j = await c.join('lobby');
  assert.equal(j.room, 'lobby');
  assert.equal(GatewaySocket.all[0]!.frames('join').filter((f) => f.room === 'lobby').length, 3);
  assert.ok(errors.every((e) => e.code === 'bus_unavailable' && e.retry === 'later'));
});

test('maxRooms: a join beyond it is refused locally (typed error, nothing sent); remembered rooms beyond it are not re-joined', async () => {
  const { c, errors } = client({ limits: { ...SMALL, maxRooms: 2 } });
  c.connect();
  await Promise.all([c.join('a'), c.join('b')]);
  await assert.rejects(c.join('c'), (e: ClientError) => e.code === 'too_many_rooms' && e.room === 'c' && e.retry === 'never');
  assert.ok(errors.some((e) => e.code === 'too_many_rooms'));
  const s = GatewaySocket.all[0]!;
  assert.deepEqual(s.frames('join').map((f) => f.room).sort(), ['_alerts', 'a', 'b'], 'c was never sent');
  assert.deepEqual(c.rooms, ['a', 'b']);
  // a storage remembering more rooms than a (stricter) server allows: the excess is refused on welcome
  const storage = new MemoryStorage();
  storage.setItem('confab:rooms', JSON.stringify({ _alerts: null, a: null, b: null, c: null, d: null }));
  c.close();
  GatewaySocket.all = [];
  const second = client({ limits: { ...SMALL, maxRooms: 3 } }, { storage });
  second.c.connect();
  await waitFor(() => second.c.ready, { what: 'rooms back', timeoutMs: 3000 });
  assert.deepEqual(second.c.rooms, ['a', 'b', 'c']);
  assert.deepEqual(GatewaySocket.all[0]!.frames('join').map((f) => f.room).sort(), ['_alerts', 'a', 'b', 'c']);
  assert.deepEqual(second.errors.map((e) => [e.code, e.room]), [['too_many_rooms', 'd']]);
});

test('a frame of class never is dropped with a typed error; the retry field of the frame decides, not a list of codes', async () => {
  GatewaySocket.script = { limits: {} };
  // an intercepting socket: the first pub is answered by the script below, not by the gateway
  const answers: Record<string, object> = {};
  class Intercept extends GatewaySocket {
    override send(data: string): void {
      const f = JSON.parse(data) as Frame;
      const a = f.text !== undefined ? answers[f.text] : undefined;
      if (a && f.id) {
        delete answers[f.text!];
        this.received.push({ f, at: Date.now(), limited: false });
        setImmediate(() => this.onmessage?.({ data: JSON.stringify({ t: 'error', id: f.id, room: f.room, ...a }) }));
        return;
      }
      super.send(data);
    }
  }
  const { c, errors } = client({ limits: {} }, { WebSocket: Intercept });
  c.connect();
  await c.join('lobby');
  answers.x = { code: 'store_failed', message: 'as never', retry: 'never' };
  answers.y = { code: 'brand_new_code', message: 'a newer server', retry: 'later' };
  answers.z = { code: 'brand_new_code', message: 'no class' };
  const [x, y, z] = [c.send('lobby', 'x'), c.send('lobby', 'y'), c.send('lobby', 'z')];
  await assert.rejects(x, (e: ClientError) => e.code === 'store_failed' && e.retry === 'never');
  await assert.rejects(z, (e: ClientError) => e.code === 'brand_new_code' && e.retry === 'never');
  const ack = await y; // resent after the jittered delay, then stored
  assert.equal(ack.dup, false);
  assert.deepEqual(GatewaySocket.all[0]!.frames('pub').map((f) => f.text), ['x', 'y', 'z', 'y']);
  assert.deepEqual(errors.map((e) => [e.code, e.retry]), [['store_failed', 'never'], ['brand_new_code', 'later'], ['brand_new_code', 'never']]);
  assert.equal(c.pending.length, 0);
});

test('in flight on a connection that ends: queued again, resent once on the next one, in order', async () => {
  GatewaySocket.script = { limits: {} };
  class Silent extends GatewaySocket {
    override send(data: string): void {
      const f = JSON.parse(data) as Frame;
      if (f.t === 'pub' && GatewaySocket.all.length === 1) return void this.received.push({ f, at: Date.now(), limited: false }); // lost with the connection
      super.send(data);
    }
  }
  const { c } = client({ limits: {} }, { WebSocket: Silent, backoff: { minMs: 20, maxMs: 40 } });
  c.connect();
  await c.join('lobby');
  const sends = ['a', 'b', 'c'].map((t) => c.send('lobby', t));
  await waitFor(() => GatewaySocket.all[0]!.frames('pub').length === 3, { what: 'three pubs out', timeoutMs: 2000 });
  assert.deepEqual(c.pending.map((e) => e.state), ['sent', 'sent', 'sent']);
  GatewaySocket.all[0]!.drop();
  assert.deepEqual(c.pending.map((e) => e.state), ['queued', 'queued', 'queued'], 'the connection ended: queued again');
  const acks = await Promise.all(sends);
  assert.deepEqual(GatewaySocket.all[1]!.frames('pub').map((f) => f.text), ['a', 'b', 'c'], 'each sent once on the new connection');
  assert.deepEqual(acks.map((a) => a.offset), [1, 2, 3]);
});

test('limits known from welcome: a text over maxTextChars or a frame over maxFrameBytes is dropped locally, not sent', async () => {
  const { c, errors } = client({ limits: SMALL });
  c.connect();
  await c.join('lobby');
  await assert.rejects(c.send('lobby', 'x'.repeat(101)), (e: ClientError) => e.code === 'text_too_long' && typeof e.id === 'string' && e.retry === 'never');
  // 100 characters (UTF-16), 300 bytes of UTF-8: the frame is over 300 bytes (the server would close the socket with 1009)
  await assert.rejects(c.send('lobby', '€'.repeat(100)), (e: ClientError) => e.code === 'too_large' && e.retry === 'never');
  const ok = await c.send('lobby', 'fine');
  assert.equal(ok.offset, 1);
  assert.deepEqual(GatewaySocket.all[0]!.frames('pub').map((f) => f.text), ['fine']);
  assert.deepEqual(errors.map((e) => e.code), ['text_too_long', 'too_large']);
});

test('typing is dropped while the bucket is low; a ping goes before queued messages', async () => {
  const { c } = client({ limits: { ...SMALL, ratePerSec: 20, rateBurst: 20 } }, { pingIntervalMs: 100 });
  c.connect();
  await c.join('lobby');
  c.typing('lobby'); // bucket 10 of the client's 10 minus 2 joins: above half, sent
  const s = GatewaySocket.all[0]!;
  assert.equal(s.frames('typing').length, 1);
  const sends = Array.from({ length: 30 }, (_, i) => c.send('lobby', `m${i}`)); // 7 now, 23 paced over ~1.2 s
  c.typing('lobby'); // a send resets the throttle, but the bucket is empty and messages wait: dropped
  assert.equal(s.frames('typing').length, 1);
  await waitFor(() => s.frames('ping').length > 0, { what: 'a ping', timeoutMs: 3000 });
  const pubsBeforePing = s.received.slice(0, s.received.findIndex((r) => r.f.t === 'ping')).filter((r) => r.f.t === 'pub').length;
  assert.ok(pubsBeforePing < 30, `the ping went out while messages waited (after ${pubsBeforePing} of 30)`);
  await Promise.all(sends);
  assert.equal(s.limited, 0);
});
