import assert from 'node:assert/strict';
import { connect as tcpConnect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { SessionSigner } from '../../src/gateway/session.js';
import { SUBPROTOCOL } from '../../src/protocol/frames.js';
import { createSession, startTestGateway, TEST_SECRET, type TestGateway } from '../../src/testkit/gateway.js';
import { RawClient } from '../../src/testkit/raw-client.js';
import { waitFor } from '../../src/procs/wait.js';

async function upgradeStatus(url: string, opts: { headers?: Record<string, string>; protocols?: string[] } = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, opts.protocols ?? [SUBPROTOCOL], { headers: opts.headers });
    ws.on('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.on('open', () => {
      resolve(101);
      ws.close();
    });
    ws.on('error', (e) => (String(e).includes('Unexpected server response') ? undefined : reject(e)));
  });
}

describe('gateway limits and security', () => {
  let t: TestGateway;
  const clients: RawClient[] = [];
  let n = 0;
  const connect = async (handle = `user${n++}`) => {
    const s = await createSession(t.url, handle);
    const c = await RawClient.connect(t.wsUrl, s.token);
    clients.push(c);
    return c;
  };
  before(async () => {
    t = await startTestGateway({
      env: {
        CONFAB_MAX_FRAME_BYTES: '4096',
        CONFAB_MAX_TEXT_CHARS: '100',
        CONFAB_MAX_ROOMS: '3',
        CONFAB_RATE_PER_SEC: '5',
        CONFAB_RATE_BURST: '20',
        CONFAB_FLOOD_CLOSE_AFTER: '30',
        CONFAB_SEND_BUFFER_BYTES: '65536',
        CONFAB_MAX_CONN_PER_IP: '40',
        CONFAB_ALLOWED_ORIGINS: 'http://good.example',
        CONFAB_PING_INTERVAL_MS: '300',
        CONFAB_PING_TIMEOUT_MS: '300',
        CONFAB_HEADERS_TIMEOUT_MS: '500',
        CONFAB_API_KEY: 'k-0123456789',
        CONFAB_PUBLIC_URLS: 'wss://other-region.example/ws',
      },
    });
  });
  after(async () => {
    for (const c of clients) c.close();
    await t.close();
  });

  it('refuses missing, forged, expired and foreign tokens at the upgrade (S1)', async () => {
    assert.equal(await upgradeStatus(t.wsUrl), 401);
    const s = await createSession(t.url, 'victim');
    const forged = s.token.slice(0, -3) + (s.token.endsWith('AAA') ? 'BBB' : 'AAA');
    assert.equal(await upgradeStatus(`${t.wsUrl}?token=${forged}`), 401);
    const expired = new SessionSigner(TEST_SECRET, 60).issue({ id: 'u1', handle: 'old' }, Date.now() - 3_600_000).token;
    assert.equal(await upgradeStatus(`${t.wsUrl}?token=${expired}`), 401);
    const foreign = new SessionSigner('another-secret-0123456789', 3600).issue({ id: 'u1', handle: 'x' }).token;
    assert.equal(await upgradeStatus(`${t.wsUrl}?token=${foreign}`), 401);
    assert.equal(await upgradeStatus(`${t.wsUrl}?token=${s.token}`), 101);
    assert.equal(await upgradeStatus(`${t.wsUrl}?token=${s.token}`, { protocols: ['other.v9'] }), 400);
  });

  it('enforces the origin allow-list (S2)', async () => {
    const s = await createSession(t.url, 'origin-user');
    assert.equal(await upgradeStatus(`${t.wsUrl}?token=${s.token}`, { headers: { origin: 'http://evil.example' } }), 403);
    assert.equal(await upgradeStatus(`${t.wsUrl}?token=${s.token}`, { headers: { origin: 'http://good.example' } }), 101);
    // the page of another region of this deployment (CONFAB_PUBLIC_URLS) may move its user here
    assert.equal(await upgradeStatus(`${t.wsUrl}?token=${s.token}`, { headers: { origin: 'https://other-region.example' } }), 101);
    assert.equal(await upgradeStatus(`${t.wsUrl}?token=${s.token}`, { headers: { origin: 'http://other-region.example' } }), 403, 'scheme matters');
  });

  it('answers malformed, unknown, mistyped and __proto__ frames with typed errors and stays up (S6)', async () => {
    const c = await connect();
    const cases: [string, string][] = [
      ['{not json', 'bad_json'],
      ['[1,2]', 'bad_frame'],
      ['"str"', 'bad_frame'],
      ['{"t":"nope"}', 'unknown_type'],
      ['{"t":"pub","id":"a","room":"lobby","text":5}', 'bad_frame'],
      ['{"t":"join","room":"lobby","__proto__":{"admin":true}}', 'bad_frame'],
      ['{"t":"pub","id":"bad id!","room":"lobby","text":"x"}', 'bad_frame'],
      [JSON.stringify({ t: 'join', room: 'x', since: { epoch: 'e', offset: -1 } }), 'bad_frame'],
      ['{"t":"join","room":"Not A Room"}', 'bad_room'],
      ['{"t":"pub","id":"z","room":"never-joined","text":"x"}', 'not_joined'],
    ];
    for (const [text, code] of cases) {
      c.sendText(text);
      const e = await c.next('error');
      assert.equal(e.code, code, text);
    }
    c.sendText('['.repeat(2000) + ']'.repeat(2000));
    assert.equal((await c.next('error')).code, 'bad_frame');
    c.send({ t: 'ping' });
    await c.next('pong');
    assert.equal((({}) as Record<string, unknown>)['admin'], undefined, 'prototype untouched');
  });

  it('closes an oversized frame with 1009 and leaves others alone (S3)', async () => {
    const big = await connect();
    const other = await connect();
    big.sendText(JSON.stringify({ t: 'pub', id: 'x', room: 'lobby', text: 'y'.repeat(5000) }));
    assert.equal(await big.closed(), 1009);
    other.send({ t: 'ping' });
    await other.next('pong');
  });

  it('refuses text over the limit, rooms over the limit (G6)', async () => {
    const c = await connect();
    c.send({ t: 'join', room: 'l1' });
    await c.next('joined');
    c.send({ t: 'pub', id: 'long', room: 'l1', text: 'z'.repeat(101) });
    assert.equal((await c.next('error', (e) => e.id === 'long')).code, 'text_too_long');
    for (const r of ['l2', 'l3']) {
      c.send({ t: 'join', room: r });
      await c.next('joined');
    }
    c.send({ t: 'join', room: 'l4' });
    assert.equal((await c.next('error', (e) => e.room === 'l4')).code, 'too_many_rooms');
    c.send({ t: 'join', room: '_alerts' });
    await c.next('joined', (j) => j.room === '_alerts');
  });

  it('throttles a flooding client, then closes it; others are unaffected (S8)', async () => {
    const flood = await connect();
    const calm = await connect();
    // pubs to a room it is not in: each one let through is answered not_joined, each one over the rate rate_limited
    for (let i = 0; i < 100; i++) flood.send({ t: 'pub', id: `fl${i}`, room: 'nowhere', text: 'x' });
    await flood.next('error', (e) => e.code === 'rate_limited');
    assert.equal(await flood.closed(), 4003);
    const through = flood.all('error').filter((e) => e.code === 'not_joined').length;
    assert.ok(through <= 22, `at most the burst got through (${through})`);
    calm.send({ t: 'ping' });
    await calm.next('pong');
  });

  it('detects a half-open connection within ping interval + timeout (R9)', async () => {
    const s = await createSession(t.url, 'halfopen');
    const ws = new WebSocket(`${t.wsUrl}?token=${s.token}`, [SUBPROTOCOL], { autoPong: false } as WebSocket.ClientOptions);
    ws.on('error', () => {});
    await new Promise((r) => ws.once('open', r));
    const before = t.gw.connectionCount();
    await waitFor(() => t.gw.connectionCount() < before, { timeoutMs: 3000, what: 'server to drop the silent peer' });
    ws.terminate();
  });

  it('closes a slowloris request at the header timeout (S5) and refuses header floods (S4)', async () => {
    const u = new URL(t.url);
    const sock = tcpConnect(Number(u.port), u.hostname);
    sock.on('error', () => {});
    await new Promise((r) => sock.once('connect', r));
    sock.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
    let ended = false;
    let reply = '';
    sock.on('data', (d) => (reply += d.toString()));
    sock.on('close', () => (ended = true));
    await waitFor(() => ended, { timeoutMs: 5000, what: 'slowloris closed' });
    assert.match(reply, /^HTTP\/1\.1 4\d\d /);
    const res = await fetch(`${t.url}/healthz`, { headers: { 'x-flood': 'a'.repeat(20_000) } }).catch((e: Error) => e);
    assert.ok(res instanceof Error || res.status === 431 || res.status === 400, 'header flood refused');
  });

  it('limits connections per address', async () => {
    const extra: RawClient[] = [];
    let refused = 0;
    for (let i = 0; i < 45 && refused === 0; i++) {
      try {
        extra.push(await connect());
      } catch (e) {
        refused = (e as { status?: number }).status ?? -1;
      }
    }
    assert.equal(refused, 429);
    for (const c of extra) c.close();
  });

  it('answers a malformed URL with 400, for pages and the API alike', async () => {
    for (const path of ['/%', '/%E0%A4%A', '/api/rooms/%ZZ/messages']) {
      const res = await fetch(`${t.url}${path}`, { method: path.startsWith('/api') ? 'POST' : 'GET', headers: { authorization: 'Bearer k-0123456789', 'content-type': 'application/json' }, ...(path.startsWith('/api') ? { body: '{"text":"x"}' } : {}) });
      assert.equal(res.status, 400, path);
      assert.equal(((await res.json()) as { code: string }).code, 'bad_request');
    }
    assert.equal((await fetch(`${t.url}/healthz`)).status, 200, 'and stays up');
  });

  it('protects the publish API with the key and validates its input', async () => {
    const post = (path: string, body: unknown, key?: string) =>
      fetch(`${t.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) }, body: JSON.stringify(body) });
    assert.equal((await post('/api/rooms/lobby/messages', { text: 'hi' })).status, 401);
    assert.equal((await post('/api/rooms/lobby/messages', { text: 'hi' }, 'wrong-key-000')).status, 401);
    assert.equal((await post('/api/rooms/Bad%20Room/messages', { text: 'hi' }, 'k-0123456789')).status, 400);
    assert.equal((await post('/api/rooms/lobby/messages', { text: 5 }, 'k-0123456789')).status, 400);
    const ok = await post('/api/rooms/lobby/messages', { text: 'from backend', id: 'b1' }, 'k-0123456789');
    assert.equal(ok.status, 201);
    const again = await post('/api/rooms/lobby/messages', { text: 'from backend', id: 'b1' }, 'k-0123456789');
    assert.equal(again.status, 200);
    assert.equal(((await again.json()) as { dup: boolean }).dup, true);
    assert.equal((await post('/api/alerts', { text: 'all hands' }, 'k-0123456789')).status, 201);
  });
});

describe('gateway send-buffer cap', () => {
  it('closes a client that never reads at its send-buffer cap, others unaffected (R8)', async (tc) => {
    const t = await startTestGateway({ env: { CONFAB_SEND_BUFFER_BYTES: '65536' } });
    const clients: RawClient[] = [];
    const connect = async (handle: string) => {
      const c = await RawClient.connect(t.wsUrl, (await createSession(t.url, handle)).token);
      clients.push(c);
      return c;
    };
    tc.after(async () => {
      for (const c of clients) c.close();
      await t.close();
    });
    // a raw TCP client that completes the upgrade, joins a room, then never reads again
    const s = await createSession(t.url, 'slowpoke');
    const u = new URL(t.url);
    const slow = tcpConnect(Number(u.port), u.hostname);
    slow.on('error', () => {});
    let head = '';
    slow.on('data', (d) => (head += d.toString('latin1')));
    slow.write(`GET /ws?token=${s.token} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ${SUBPROTOCOL}\r\n\r\n`);
    await waitFor(() => head.includes('"welcome"'), { what: 'raw upgrade' });
    const join = Buffer.from(JSON.stringify({ t: 'join', room: 'firehose' }));
    const mask = Buffer.from([1, 2, 3, 4]);
    slow.write(Buffer.concat([Buffer.from([0x81, 0x80 | join.length]), mask, Buffer.from(join.map((b, i) => b ^ mask[i % 4]!))]));
    await waitFor(() => head.includes('"joined"'), { what: 'raw join' });
    slow.removeAllListeners('data');
    slow.pause();
    const writer = await connect('writer');
    writer.send({ t: 'join', room: 'firehose' });
    await writer.next('joined');
    const reader = await connect('reader');
    reader.send({ t: 'join', room: 'firehose' });
    await reader.next('joined');
    const text = 'x'.repeat(4000);
    const from = { user: 'u', handle: 'h', node: 'n', region: 'r' };
    let sent = 0;
    // bounded: the kernel's loopback buffers absorb a few MB before the server's own buffer grows
    while (sent < 20_000 && t.gw.core.metrics.sendBufferDrops === 0) {
      await t.gw.core.publish({ room: 'firehose', id: `f${sent}`, kind: 'msg', text, from });
      sent++;
      // let the healthy reader (in this same process) keep up, so only the paused one backs up
      if (sent % 20 === 0) await waitFor(() => reader.msgs('firehose').length >= sent, { what: `reader keeps up (sent ${sent}, got ${reader.msgs('firehose').length}, reader close ${reader.closeCode}, drops ${t.gw.core.metrics.sendBufferDrops})` });
    }
    assert.ok(t.gw.core.metrics.sendBufferDrops > 0, 'slow consumer was closed');
    await waitFor(() => reader.msgs('firehose').length >= sent, { what: 'the healthy reader got everything' });
    assert.equal(reader.closeCode, undefined, 'the healthy reader stays connected');
    assert.ok(t.gw.connectionCount() >= 2);
    slow.destroy();
  });

});
