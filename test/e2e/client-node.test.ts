/**
 * The client SDK in Node (with the `ws` package) against a real gateway process:
 * resume after a crash, outbox order, acks, typed errors, drain hints, refused tokens.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { ConfabClient, MemoryStorage, type ChatMessage, type ClientError, type StateChange } from '../../src/client/index.js';
import { nextEvent, waitFor } from '../../src/procs/wait.js';
import { GatewayProcess, T } from './support.js';

let gw: GatewayProcess;
const clients: ConfabClient[] = [];

before(async () => {
  gw = await GatewayProcess.create({ CONFAB_SECRET: 'e2e-secret-0123456789abcdef', CONFAB_NODE_ID: 'node-n1', CONFAB_REGION: 'lhr', CONFAB_DRAIN_WINDOW_MS: '300', CONFAB_DRAIN_READY_DELAY_MS: '0', CONFAB_MAX_TEXT_CHARS: '100' });
  await gw.start();
});
after(async () => {
  for (const c of clients) c.close();
  await gw?.dispose();
});

async function session(handle: string): Promise<string> {
  const res = await fetch(`${gw.url}/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ handle }) });
  assert.equal(res.status, 200, `POST /api/session ${handle}: ${res.status} ${await res.clone().text()}`);
  return ((await res.json()) as { token: string }).token;
}

function makeClient(token: string, storage = new MemoryStorage(), backoff = { minMs: 50, maxMs: 400 }): ConfabClient {
  const c = new ConfabClient({ url: gw.url, token, WebSocket, storage, backoff, pingIntervalMs: 500, pingTimeoutMs: 1000 });
  clients.push(c);
  return c;
}

function collect(c: ConfabClient): { msgs: ChatMessage[]; alerts: ChatMessage[]; states: StateChange[]; errors: ClientError[] } {
  const r = { msgs: [] as ChatMessage[], alerts: [] as ChatMessage[], states: [] as StateChange[], errors: [] as ClientError[] };
  c.on('message', (m) => r.msgs.push(m));
  c.on('alert', (m) => r.alerts.push(m));
  c.on('state', (s) => r.states.push(s));
  c.on('error', (e) => r.errors.push(e));
  return r;
}

test('send resolves with an ack; both clients receive it with server-set identity; alerts reach everyone', async () => {
  const a = makeClient(await session('node-ann'));
  const b = makeClient(await session('node-bob'));
  const ra = collect(a);
  const rb = collect(b);
  a.connect();
  b.connect();
  await Promise.all([a.join('room1'), b.join('room1')]);
  assert.equal(a.state, 'connected');
  assert.equal(a.welcome?.node, 'node-n1');
  const ack = await a.send('room1', 'hello');
  assert.equal(ack.room, 'room1');
  assert.equal(ack.dup, false);
  await waitFor(() => rb.msgs.some((m) => m.id === ack.id), { what: 'b receives a\'s message', timeoutMs: T.short });
  const m = rb.msgs.find((x) => x.id === ack.id)!;
  assert.deepEqual([m.offset, m.epoch, m.from.handle, m.from.node, m.from.region], [ack.offset, ack.epoch, 'node-ann', 'node-n1', 'lhr']);
  const alertAck = await b.alert('heads up');
  assert.equal(alertAck.room, '_alerts');
  await waitFor(() => ra.alerts.some((x) => x.id === alertAck.id && x.kind === 'alert'), { what: 'alert at a', timeoutMs: T.short });
  assert.equal(ra.msgs.filter((x) => x.id === ack.id).length, 1, 'own message delivered once');
  const rooms = await a.listRooms();
  assert.equal(rooms.find((x) => x.name === 'room1')?.members, 2);
});

test('a refused message rejects with a typed error and leaves the outbox', async () => {
  const a = makeClient(await session('node-cat'));
  const r = collect(a);
  a.connect();
  await a.join('room2');
  await assert.rejects(a.send('room2', 'x'.repeat(500)), (e: ClientError) => e.code === 'text_too_long' && typeof e.id === 'string');
  assert.equal(a.pending.length, 0);
  assert.ok(r.errors.some((e) => e.code === 'text_too_long'));
  const ok = await a.send('room2', 'short');
  assert.ok(ok.offset > 0, 'the connection still works');
});

test('crash and restart: queued messages go out in order once; the other client resumes with no gap and no duplicate', async () => {
  const a = makeClient(await session('node-dee'));
  const b = makeClient(await session('node-eve'));
  const ra = collect(a);
  const rb = collect(b);
  a.connect();
  b.connect();
  await Promise.all([a.join('room3'), b.join('room3')]);
  for (let i = 0; i < 5; i++) await a.send('room3', `pre-${i}`);
  await waitFor(() => rb.msgs.filter((m) => m.room === 'room3').length === 5, { what: '5 pre messages at b', timeoutMs: T.short });

  await gw.kill('SIGKILL');
  await waitFor(() => a.state !== 'connected' && b.state !== 'connected', { what: 'both notice the crash', timeoutMs: T.short });
  const queued = Array.from({ length: 10 }, (_, i) => a.send('room3', `down-${i}`));
  assert.deepEqual(a.pending.map((e) => e.text), Array.from({ length: 10 }, (_, i) => `down-${i}`));

  await gw.start();
  const acks = await Promise.all(queued);
  assert.ok(acks.every((x, i) => i === 0 || x.offset > acks[i - 1]!.offset), 'stored in send order');
  await waitFor(() => rb.msgs.filter((m) => m.room === 'room3').length >= 15, { what: '15 messages at b', timeoutMs: T.long });
  for (const r of [ra, rb]) {
    const texts = r.msgs.filter((m) => m.room === 'room3').map((m) => m.text);
    assert.deepEqual(texts, [...Array.from({ length: 5 }, (_, i) => `pre-${i}`), ...Array.from({ length: 10 }, (_, i) => `down-${i}`)]);
    assert.ok(r.states.some((s) => s.state === 'reconnecting' && typeof s.retryInMs === 'number'), 'went through reconnecting');
    assert.ok(!r.errors.some((e) => e.id), `no message errors: ${r.errors.map((e) => e.code)}`);
  }
});

test('a restarted client with the same storage resumes from its persisted positions and resends its outbox', async () => {
  const storage = new MemoryStorage();
  const token = await session('node-fay');
  const first = makeClient(token, storage);
  const r1 = collect(first);
  first.connect();
  await first.join('room4');
  await first.send('room4', 'one');
  await waitFor(() => r1.msgs.some((m) => m.text === 'one'), { what: 'own echo', timeoutMs: T.short });
  first.close();
  const p = first.send('room4', 'two').catch((e: ClientError) => e.code);
  first.close();
  const other = makeClient(await session('node-gus'));
  other.connect();
  await other.join('room4');
  await other.send('room4', 'three (while fay was away)');

  const second = makeClient(token, storage);
  const r2 = collect(second);
  assert.deepEqual(second.rooms, ['room4']);
  assert.deepEqual(second.pending.map((e) => e.text), ['two']);
  second.connect();
  await waitFor(() => r2.msgs.some((m) => m.text === 'two') && second.pending.length === 0, { what: 'outbox delivered', timeoutMs: T.short });
  assert.deepEqual(r2.msgs.map((m) => m.text), ['three (while fay was away)', 'two'], 'only what was missed, then the resent message');
  void p;
});

test('SIGTERM drain: clients are told to move with a retry hint, reconnect as "reconnecting", never closed', async () => {
  // Backoff alone would wait ≥ 10 s: a shorter wait proves the server's hint was used.
  const a = makeClient(await session('node-hal'), new MemoryStorage(), { minMs: 10_000, maxMs: 10_000 });
  const r = collect(a);
  a.connect();
  await a.join('room5');
  const moved = nextEvent<StateChange>((fn) => a.on('state', fn), (s) => s.state === 'reconnecting', T.short, 'reconnecting');
  await gw.kill('SIGTERM');
  const s = await moved;
  assert.equal(s.closeCode, 4000, `draining close code, got ${s.closeCode} ${s.reason}`);
  assert.equal(s.reason, 'draining');
  // The hint is jittered over the drain window (300 ms here); the client waits exactly the hint.
  assert.ok((s.retryInMs ?? -1) >= 0 && (s.retryInMs ?? Infinity) < 10_000, `hint honoured: ${s.retryInMs}`);
  await gw.start();
  await waitFor(() => a.state === 'connected', { what: 'back after restart', timeoutMs: T.long });
  assert.ok(!r.states.some((x) => x.state === 'closed'));
});

test('half-open connection (server frozen): no pong within the timeout, the client reconnects', async () => {
  const a = makeClient(await session('node-ivy'));
  const r = collect(a);
  a.connect();
  await a.join('room6');
  const frozenAt = Date.now();
  gw.signal('SIGSTOP');
  try {
    const s = await nextEvent<StateChange>((fn) => a.on('state', fn), (x) => x.state === 'reconnecting', T.short, 'reconnecting after ping timeout');
    assert.equal(s.closeCode, 4002);
    assert.equal(s.reason, 'ping_timeout');
    assert.ok(Date.now() - frozenAt >= 1000, 'not before the pong timeout');
  } finally {
    gw.signal('SIGCONT');
  }
  await waitFor(() => a.state === 'connected', { what: 'back after the server thaws', timeoutMs: T.long });
  const ack = await a.send('room6', 'after thaw');
  await waitFor(() => r.msgs.some((m) => m.id === ack.id), { what: 'echo after thaw', timeoutMs: T.short });
});

test('join then send at once: the message waits for the joined answer; queues of several rooms survive a restart', async () => {
  const a = makeClient(await session('node-jon'));
  const r = collect(a);
  a.connect();
  await waitFor(() => a.state === 'connected', { what: 'connected', timeoutMs: T.short });
  const joining = a.join('room7');
  const first = await a.send('room7', 'sent right after join');
  assert.equal((await joining).room, 'room7');
  assert.equal(first.room, 'room7');
  await a.join('room8');
  await gw.kill('SIGKILL');
  await waitFor(() => a.state !== 'connected', { what: 'crash noticed', timeoutMs: T.short });
  const sends = [a.send('room7', 'x1'), a.send('room8', 'y1'), a.send('room7', 'x2'), a.alert('z1'), a.send('room8', 'y2')];
  await gw.start();
  const acks = await Promise.all(sends);
  assert.deepEqual(acks.map((x) => x.room), ['room7', 'room8', 'room7', '_alerts', 'room8']);
  await waitFor(() => r.msgs.length >= 5 && r.alerts.some((m) => m.text === 'z1'), { what: 'all echoed', timeoutMs: T.short });
  assert.deepEqual(r.msgs.filter((m) => m.room === 'room7').map((m) => m.text), ['sent right after join', 'x1', 'x2']);
  assert.deepEqual(r.msgs.filter((m) => m.room === 'room8').map((m) => m.text), ['y1', 'y2']);
});

test('history reset (data lost): the client is told with a reset gap and continues in the new epoch', async () => {
  const a = makeClient(await session('node-kim'));
  const r = collect(a);
  const gaps: { room: string; reset?: boolean }[] = [];
  a.on('gap', (g) => gaps.push(g));
  a.connect();
  await a.join('room9');
  const before = await a.send('room9', 'old epoch');
  await gw.kill('SIGKILL');
  gw.wipe();
  await gw.start();
  await waitFor(() => gaps.some((g) => g.room === 'room9' && g.reset === true), { what: 'reset gap', timeoutMs: T.long });
  const after = await a.send('room9', 'new epoch');
  assert.notEqual(after.epoch, before.epoch);
  await waitFor(() => r.msgs.some((m) => m.text === 'new epoch'), { what: 'new-epoch message delivered (not deduped by the old offset)', timeoutMs: T.short });
});

test('confab.v1 frames are text frames (broadcast msg frames included)', async () => {
  const token = await session('node-raw');
  const ws = new WebSocket(`${gw.url.replace('http', 'ws')}/ws?token=${encodeURIComponent(token)}`, 'confab.v1');
  const frames: { t: string; binary: boolean }[] = [];
  ws.on('message', (data, isBinary) => frames.push({ t: (JSON.parse(data.toString()) as { t: string }).t, binary: isBinary }));
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  try {
    await waitFor(() => frames.some((f) => f.t === 'welcome'), { what: 'welcome', timeoutMs: T.short });
    ws.send(JSON.stringify({ t: 'join', room: 'rawroom' }));
    await waitFor(() => frames.some((f) => f.t === 'joined'), { what: 'joined', timeoutMs: T.short });
    ws.send(JSON.stringify({ t: 'pub', id: 'raw-1', room: 'rawroom', text: 'raw' }));
    await waitFor(() => frames.some((f) => f.t === 'msg') && frames.some((f) => f.t === 'ack'), { what: 'msg and ack', timeoutMs: T.short });
    const binary = frames.filter((f) => f.binary).map((f) => f.t);
    assert.deepEqual(binary, [], `frames sent as binary: ${binary.join(', ')}`);
  } finally {
    ws.close();
  }
});

test('a forged token is refused: the client stops with a typed unauthorized error', async () => {
  const a = makeClient('forged.token');
  const r = collect(a);
  a.connect();
  await waitFor(() => a.state === 'closed', { what: 'closed', timeoutMs: T.short });
  assert.ok(r.errors.some((e) => e.code === 'unauthorized'), `errors: ${r.errors.map((e) => e.code)}`);
});

test('with a list of gateways, a client whose gateway is unreachable moves on to the next one', async () => {
  const { freePort } = await import('../../src/procs/ports.js');
  const dead = `http://127.0.0.1:${await freePort()}`;
  const c = new ConfabClient({ url: [dead, gw.url], token: await session('node-multi'), WebSocket, storage: new MemoryStorage(), backoff: { minMs: 20, maxMs: 100 } });
  clients.push(c);
  const r = collect(c);
  c.connect();
  await c.join('multi');
  assert.equal(c.state, 'connected');
  assert.ok(r.states.some((s) => s.state === 'reconnecting'), 'the first, dead gateway was tried and left');
});
