/**
 * The SDK's side of sender order (G9), URL failover and the readiness probe's wiring, against a
 * scripted socket: the test plays the server frame by frame (welcome, joined, ack, error codes
 * including `fenced`), so every interleaving is exact. The same paths against a real gateway:
 * test/e2e/client-reconnect.test.ts.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfabClient, MemoryStorage, retryClassOf, type ClientError, type ClientOptions, type FetchLike, type StateChange } from '../../src/client/index.js';
import { ErrorCodes } from '../../src/protocol/codes.js';
import { waitFor } from '../../src/procs/wait.js';

type Frame = { t: string; id?: string; room?: string; text?: string; since?: unknown };

/** One socket the client opened; the test answers for the server. */
class ScriptedSocket {
  static all: ScriptedSocket[] = [];
  readyState = 1;
  readonly url: string;
  readonly sent: Frame[] = [];
  onopen: ((ev: never) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: never) => void) | null = null;
  constructor(url: string) {
    this.url = url;
    ScriptedSocket.all.push(this);
  }
  send(data: string): void {
    const f = JSON.parse(data) as Frame;
    this.sent.push(f);
    if (f.t === 'join' && this.autoJoin) this.serve({ t: 'joined', room: f.room, epoch: 'e1', last: 0, recovered: false, members: [], count: 0 });
  }
  close(): void {
    this.readyState = 3;
  }
  autoJoin = true;
  serve(frame: object): void {
    queueMicrotask(() => this.onmessage?.({ data: JSON.stringify(frame) }));
  }
  welcome(): void {
    this.serve({ t: 'welcome', v: 1, node: 'n1', region: 'r1', version: 't', user: { id: 'u1', handle: 'ann' }, rooms: [], limits: {} });
  }
  /** The connection drops (server gone). */
  drop(code = 1006): void {
    this.readyState = 3;
    this.onclose?.({ code, reason: '' });
  }
  pubs(room?: string): Frame[] {
    return this.sent.filter((f) => (f.t === 'pub' || f.t === 'alert') && (room === undefined || f.room === room || (f.t === 'alert' && room === '_alerts')));
  }
  ack(id: string, room = 'lobby', offset = 1): void {
    this.serve({ t: 'ack', id, room, offset, epoch: 'e1', dup: false });
  }
  refuse(id: string, code: string, room = 'lobby'): void {
    this.serve({ t: 'error', code, message: code, id, room });
  }
}

const live: ConfabClient[] = [];
afterEach(() => {
  for (const c of live.splice(0)) c.close();
  ScriptedSocket.all = [];
});

function client(extra: Partial<ClientOptions> = {}): { c: ConfabClient; errors: ClientError[]; states: StateChange[] } {
  const c = new ConfabClient({
    url: 'http://gw-a:1',
    token: 't',
    WebSocket: ScriptedSocket,
    storage: new MemoryStorage(),
    watchNetwork: false,
    pingIntervalMs: 0,
    backoff: { minMs: 50, maxMs: 2000 },
    probe: false,
    ...extra,
  });
  live.push(c);
  const errors: ClientError[] = [];
  const states: StateChange[] = [];
  c.on('error', (e) => errors.push(e));
  c.on('state', (s) => states.push(s));
  return { c, errors, states };
}

async function connected(c: ConfabClient, rooms: string[] = ['lobby']): Promise<ScriptedSocket> {
  const n = ScriptedSocket.all.length;
  c.connect();
  await waitFor(() => ScriptedSocket.all.length > n, { what: 'socket opened', timeoutMs: 2000 });
  const s = ScriptedSocket.all.at(-1)!;
  s.welcome();
  await Promise.all(rooms.map((r) => c.join(r)));
  return s;
}

const texts = (fs: Frame[]): (string | undefined)[] => fs.map((f) => f.text);

test("the SDK has no code list of its own: a frame's retry class, else the protocol table's", () => {
  assert.ok('fenced' in ErrorCodes, 'src/protocol/codes.ts has fenced');
  assert.equal(ErrorCodes.fenced.close, null);
  for (const [code, row] of Object.entries(ErrorCodes)) assert.equal(retryClassOf({ code }), row.retry, code);
  for (const code of ['fenced', 'rate_limited', 'store_failed', 'bus_unavailable', 'internal']) assert.equal(retryClassOf({ code }), 'later', code);
  assert.equal(retryClassOf({ code: 'store_failed', retry: 'never' }), 'never', "the frame's class wins");
  assert.equal(retryClassOf({ code: 'from_a_newer_server', retry: 'later' }), 'later');
  assert.equal(retryClassOf({ code: 'from_a_newer_server' }), 'never', 'unknown and unclassed: not resent blindly');
  assert.equal(retryClassOf({ code: 'rate_limited', retry: 'bogus' }), 'later', 'a bad class falls back to the table');
});

test('a refused send holds its room: later sends wait, then the room is resent in send order; other rooms keep flowing', async () => {
  const { c, errors } = client();
  const s = await connected(c, ['lobby', 'other']);
  const p1 = c.send('lobby', 'a1');
  const p2 = c.send('lobby', 'a2');
  for (const p of [p1, p2]) p.catch(() => {});
  assert.deepEqual(texts(s.pubs('lobby')), ['a1', 'a2'], 'pipelined while all is well');
  const [a1, a2] = s.pubs('lobby');
  s.refuse(a1!.id!, 'store_failed');
  s.refuse(a2!.id!, 'fenced');
  await waitFor(() => errors.length > 0, { what: 'store_failed reported', timeoutMs: 2000 });
  const p3 = c.send('lobby', 'a3');
  const pb = c.send('other', 'b1');
  assert.deepEqual(texts(s.pubs('lobby')), ['a1', 'a2'], 'a3 is held behind the refused a1');
  assert.deepEqual(texts(s.pubs('other')), ['b1'], 'another room is not held');
  s.ack(s.pubs('other')[0]!.id!, 'other');
  await pb;
  await waitFor(() => s.pubs('lobby').length === 5, { what: 'the resend round', timeoutMs: 3000 });
  assert.deepEqual(texts(s.pubs('lobby')), ['a1', 'a2', 'a1', 'a2', 'a3'], 'resent from the refused one, in send order');
  for (const [i, f] of s.pubs('lobby').slice(2).entries()) s.ack(f.id!, 'lobby', 10 + i);
  const acks = await Promise.all([p1, p2, p3]);
  assert.deepEqual(acks.map((a) => a.offset), [10, 11, 12]);
  assert.deepEqual(errors.map((e) => e.code), ['store_failed'], 'fenced is handled, not reported to the app');
  assert.equal(c.pending.length, 0);
});

test('a send still in flight when its room is refused blocks the resend until it is answered', async () => {
  const { c } = client();
  const s = await connected(c);
  void c.send('lobby', 'x1').catch(() => {});
  void c.send('lobby', 'x2').catch(() => {});
  const [x1, x2] = s.pubs('lobby');
  s.refuse(x1!.id!, 'bus_unavailable');
  // x2's answer is late: after two resend delays, still nothing resent (x1 again would overtake x2's fence answer)
  await new Promise((r) => setTimeout(r, 600)); // a deliberate quiet period: asserting that nothing happens
  assert.deepEqual(texts(s.pubs('lobby')), ['x1', 'x2']);
  s.refuse(x2!.id!, 'fenced');
  await waitFor(() => s.pubs('lobby').length === 4, { what: 'resend after the late fenced answer', timeoutMs: 3000 });
  assert.deepEqual(texts(s.pubs('lobby')), ['x1', 'x2', 'x1', 'x2']);
});

test('no tight loop: while the store keeps failing, resend rounds come ever further apart', async () => {
  const { c } = client({ backoff: { minMs: 50, maxMs: 5000 } });
  const s = await connected(c);
  const p = c.send('lobby', 'y');
  p.catch(() => {}); // awaited below; closed by afterEach if an assertion fails first
  const times: number[] = [];
  const t0 = Date.now();
  let answered = 0;
  await waitFor(
    () => {
      const pubs = s.pubs('lobby');
      while (answered < pubs.length) {
        times.push(Date.now() - t0);
        s.refuse(pubs[answered++]!.id!, 'store_failed');
      }
      return Date.now() - t0 > 3000;
    },
    { what: '3 s of failures', timeoutMs: 5000, intervalMs: 5 },
  );
  assert.ok(times.length >= 3 && times.length <= 6, `${times.length} sends in 3 s: ${times.join(', ')}`);
  // round k waits uniformly in [2·minMs·2^k, 4·minMs·2^k]: 100–200, 200–400, 400–800, 800–1600 ms
  const gaps = times.slice(1).map((t, i) => t - times[i]!);
  for (const [k, g] of gaps.entries()) assert.ok(g >= 100 * 2 ** k - 5 && g <= 200 * 2 ** k + 150, `gap ${k} = ${g} ms (all: ${gaps.join(', ')})`);
  await waitFor(() => s.pubs('lobby').length > answered, { what: 'next resend', timeoutMs: 5000 });
  s.ack(s.pubs('lobby').at(-1)!.id!);
  assert.equal((await p).room, 'lobby');
});

test('fenced again and again with nothing earlier of ours to resend: a new connection clears the fence', async () => {
  const { c } = client();
  const s1 = await connected(c);
  const p = c.send('lobby', 'z');
  p.catch(() => {});
  let fencedCount = 0;
  await waitFor(
    () => {
      for (const f of s1.pubs('lobby').slice(fencedCount)) {
        fencedCount++;
        s1.refuse(f.id!, 'fenced'); // the server waits for a message this client no longer has
      }
      return ScriptedSocket.all.length > 1;
    },
    { what: 'a new socket', timeoutMs: 5000, intervalMs: 5 },
  );
  assert.ok(fencedCount >= 2 && fencedCount <= 3, `gave up after ${fencedCount} fenced answers`);
  const s2 = ScriptedSocket.all.at(-1)!;
  s2.welcome();
  await waitFor(() => s2.pubs('lobby').length === 1, { what: 'z on the new connection', timeoutMs: 3000 });
  s2.ack(s2.pubs('lobby')[0]!.id!);
  assert.equal((await p).room, 'lobby');
});

test('URLs: after a drop the gateway that worked is tried again; a failed attempt moves on to the next URL at once', async () => {
  // random 1: every delay is its step's cap (100, 200, 400… ms), so the steps taken are visible
  const { c, states } = client({ url: ['http://gw-a:1', 'http://gw-b:2'], random: () => 1 });
  const s1 = await connected(c);
  assert.match(s1.url, /^ws:\/\/gw-a:1\/ws/);
  s1.drop();
  await waitFor(() => ScriptedSocket.all.length === 2, { what: 'retry', timeoutMs: 3000 });
  assert.match(ScriptedSocket.all[1]!.url, /^ws:\/\/gw-a:1\//, 'same gateway first (behind a load balancer another node answers)');
  ScriptedSocket.all[1]!.drop(); // never welcomed: a failed attempt
  await waitFor(() => ScriptedSocket.all.length === 3, { what: 'next URL', timeoutMs: 3000 });
  assert.match(ScriptedSocket.all[2]!.url, /^ws:\/\/gw-b:2\//);
  ScriptedSocket.all[2]!.drop(); // b fails too: now both were tried, the backoff climbs
  await waitFor(() => ScriptedSocket.all.length === 4, { what: 'round the list', timeoutMs: 3000 });
  assert.match(ScriptedSocket.all[3]!.url, /^ws:\/\/gw-a:1\//);
  const waits = states.filter((x) => x.state === 'reconnecting').map((x) => x.retryInMs);
  assert.deepEqual(waits, [100, 100, 200], 'first try of b waits a first step only; going round again climbs');
  ScriptedSocket.all[3]!.welcome();
  await waitFor(() => c.state === 'connected', { what: 'connected again', timeoutMs: 2000 });
});

test('probe wiring: a long backoff wait ends as soon as /readyz is seen failing and then ready', async () => {
  let up = false;
  const calls: string[] = [];
  const fetch: FetchLike = (url) => {
    calls.push(url);
    return up ? Promise.resolve({ status: 200 }) : Promise.reject(new TypeError('ECONNREFUSED'));
  };
  const { c, states } = client({ url: 'wss://gw-a:1/ws', backoff: { minMs: 60_000, maxMs: 60_000 }, probe: { intervalMs: 100, maxIntervalMs: 100 }, fetch });
  const s1 = await connected(c);
  s1.drop();
  await waitFor(() => calls.length >= 2, { what: 'probes while down', timeoutMs: 3000 });
  assert.equal(calls[0], 'https://gw-a:1/readyz');
  assert.equal(ScriptedSocket.all.length, 1, 'no attempt while the server is down (the backoff says 60 s)');
  up = true;
  await waitFor(() => ScriptedSocket.all.length === 2, { what: 'reconnect on ready', timeoutMs: 3000 });
  assert.ok(states.some((x) => x.state === 'connecting' && x.reason === 'server_ready'));
  ScriptedSocket.all[1]!.welcome();
  await waitFor(() => c.state === 'connected', { what: 'connected', timeoutMs: 2000 });
  const n = calls.length;
  await new Promise((r) => setTimeout(r, 300)); // a deliberate quiet period: no probing while connected
  assert.equal(calls.length, n, 'probing stops once connected');
});

test('probe wiring: a server that is up but dropped us is not rushed: the backoff decides', async () => {
  const calls: string[] = [];
  const fetch: FetchLike = (url) => (calls.push(url), Promise.resolve({ status: 200 }));
  const { c } = client({ backoff: { minMs: 60_000, maxMs: 60_000 }, probe: { intervalMs: 100, maxIntervalMs: 100 }, fetch });
  const s1 = await connected(c);
  s1.drop(4001); // e.g. slow consumer: the server is fine
  await waitFor(() => calls.length >= 5, { what: 'probes', timeoutMs: 3000 });
  assert.equal(ScriptedSocket.all.length, 1, 'ready all along: no early reconnect');
  assert.equal(c.state, 'reconnecting');
});
