/**
 * Security suite: the HTTP fallback (issue 14) opens no way around the WebSocket's checks. Each
 * attack is refused the way the WebSocket refuses it, by the same code (admit.ts, connection.ts):
 *  - a stream without a token, or with a forged one: 401, no session;
 *  - a page of another origin: 403 for the stream and for POSTs (CORS preflight refused too);
 *  - POSTs to another user's session id, with no key or with one's own key: 404, nothing delivered there;
 *  - a POST body over the cap, or a frame over CONFAB_MAX_FRAME_BYTES: 413 and the session closed
 *    with 1009 (as an oversized WebSocket frame);
 *  - frames over the rate: `rate_limited` answers, then the session closed `flood` (4008 as on WebSocket);
 *  - streams per address past CONFAB_MAX_CONN_PER_IP: 429 (the fallback counts as a socket);
 *  - a stream that never answers the keepalive: closed `ping_timeout` (abandoned sessions expire);
 *  - a stream that never reads: closed at the send-buffer cap (slow consumer), others unaffected.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ErrorCodes } from '../../src/protocol/codes.js';
import { createSession, startTestGateway, type TestGateway } from '../../src/testkit/gateway.js';
import { openFallback, postFallback, type RawFallback } from '../../src/testkit/fallback.js';
import { waitFor } from '../../src/procs/wait.js';

describe('HTTP fallback: the same checks as the WebSocket', () => {
  let t: TestGateway;
  const open: RawFallback[] = [];
  const track = (r: RawFallback) => {
    open.push(r);
    return r;
  };
  before(async () => {
    t = await startTestGateway({
      env: {
        CONFAB_ALLOWED_ORIGINS: 'https://chat.example',
        CONFAB_MAX_FRAME_BYTES: '4096',
        CONFAB_RATE_PER_SEC: '5',
        CONFAB_RATE_BURST: '5',
        CONFAB_FLOOD_CLOSE_AFTER: '10',
        CONFAB_MAX_CONN_PER_IP: '6',
        CONFAB_PING_INTERVAL_MS: '400',
        CONFAB_PING_TIMEOUT_MS: '300',
        CONFAB_SEND_BUFFER_BYTES: '65536',
      },
    });
  });
  after(async () => {
    for (const r of open) r.destroy();
    await t.close();
  });
  const token = async (handle: string) => (await createSession(t.url, handle)).token;

  it('refuses a stream without a token or with a forged one (401), as the upgrade does', async () => {
    const none = await openFallback(t.url);
    assert.equal(none.status, 401);
    assert.equal(none.refusal?.code, 'unauthorized');
    const forged = await openFallback(t.url, { token: 'v1.forged.token' });
    assert.equal(forged.status, 401);
    assert.equal(t.gw.connectionCount(), 0, 'no session was opened');
  });

  it('refuses pages of another origin: stream, POST and preflight (403)', async () => {
    const tok = await token('origin1');
    const evil = await openFallback(t.url, { token: tok, origin: 'https://evil.example' });
    assert.equal(evil.status, 403);
    assert.equal(evil.refusal?.code, 'forbidden_origin');
    const good = track(await openFallback(t.url, { token: tok, origin: 'https://chat.example' }));
    assert.equal(good.status, 200);
    assert.equal(good.headers['access-control-allow-origin'], 'https://chat.example');
    await good.next((f) => f.t === 'welcome');
    const p = await good.post(JSON.stringify({ t: 'join', room: 'lobby' }), { origin: 'https://evil.example' });
    assert.equal(p.status, 403);
    const pre = await fetch(new URL('/fallback', t.url), { method: 'OPTIONS', headers: { origin: 'https://evil.example' } });
    assert.equal(pre.status, 403);
    const ok = await good.post(JSON.stringify({ t: 'join', room: 'lobby' }), { origin: 'https://chat.example' });
    assert.equal(ok.status, 204);
    await good.next((f) => f.t === 'joined');
    assert.equal(good.frames.filter((f) => f.t === 'joined').length, 1, 'only the allowed origin\'s POST was taken');
  });

  it("refuses POSTs to another user's session id, with no key or another key (404), and delivers nothing there", async () => {
    const victim = track(await openFallback(t.url, { token: await token('victim') }));
    const mallory = track(await openFallback(t.url, { token: await token('mallory') }));
    await victim.next((f) => f.t === 'welcome');
    await mallory.next((f) => f.t === 'welcome');
    const frame = JSON.stringify({ t: 'join', room: 'secret' });
    assert.equal((await postFallback(t.url, frame, { sid: victim.sid })).status, 404, 'no key');
    assert.equal((await postFallback(t.url, frame, { sid: victim.sid, key: mallory.key })).status, 404, "mallory's own key");
    assert.equal((await postFallback(t.url, frame, { sid: victim.sid, key: victim.key.slice(0, -2) + 'xx' })).status, 404, 'a guessed key');
    assert.equal((await postFallback(t.url, frame, { sid: 'nope', key: victim.key })).status, 404, 'an unknown sid');
    // a probe of the victim's session still works for the victim, and it never saw the attacker's frames
    assert.equal((await victim.send({ t: 'rooms' })).status, 204);
    await victim.next((f) => f.t === 'rooms');
    assert.deepEqual(victim.frames.map((f) => f.t), ['welcome', 'rooms']);
  });

  it('closes a session with 1009 on a POST over the body cap or a frame over CONFAB_MAX_FRAME_BYTES (413)', async () => {
    const a = track(await openFallback(t.url, { token: await token('bigbody') }));
    await a.next((f) => f.t === 'welcome');
    const big = await a.post('x'.repeat(4096 * 16 + 1));
    assert.equal(big.status, 413);
    await waitFor(() => a.ended, { what: 'session closed after the oversized body' });
    assert.equal(a.closeEvent?.code, ErrorCodes.too_large.close);
    const b = track(await openFallback(t.url, { token: await token('bigframe') }));
    await b.next((f) => f.t === 'welcome');
    const frame = await b.post(JSON.stringify({ t: 'pub', room: 'lobby', id: 'big00001', text: 'y'.repeat(5000) }));
    assert.equal(frame.status, 413);
    await waitFor(() => b.ended, { what: 'session closed after the oversized frame' });
    assert.equal(b.closeEvent?.code, 1009);
  });

  it('answers frames over the rate with rate_limited, then closes a flooding session (flood)', async () => {
    const a = track(await openFallback(t.url, { token: await token('flooder') }));
    await a.next((f) => f.t === 'welcome');
    // burst 5: 8 joins leave 3 refused (answered), 16 more pass the flood limit (10 refusals in a row)
    const joins = (n: number, from: number) => Array.from({ length: n }, (_, i) => ({ t: 'join', room: `r${from + i}` }));
    assert.equal((await a.send(...joins(8, 0))).status, 204);
    await a.next((f) => f.t === 'error' && f.code === 'rate_limited');
    const r = await a.send(...joins(16, 8));
    assert.equal(r.status, 410, 'the POST that flooded is answered: the session closed');
    await waitFor(() => a.ended, { what: 'flooder closed' });
    assert.equal(a.closeEvent?.code, ErrorCodes.flood.close);
    assert.match(a.closeEvent?.reason ?? '', /flood/);
    const after = await a.send({ t: 'rooms' });
    assert.equal(after.status, 404, 'a closed session takes no more frames');
  });

  it('counts fallback streams per address with the WebSockets (429 past CONFAB_MAX_CONN_PER_IP)', async () => {
    const before = t.gw.connectionCount();
    const mine: RawFallback[] = [];
    for (let i = before; i < 6; i++) mine.push(track(await openFallback(t.url, { token: await token(`many${i}`) })));
    assert.ok(mine.every((m) => m.status === 200));
    const over = await openFallback(t.url, { token: await token('many-over') });
    assert.equal(over.status, 429);
    assert.equal(over.refusal?.code, 'too_many_connections');
    for (const m of mine) m.destroy();
    await waitFor(() => t.gw.connectionCount() === before, { what: 'sessions gone with their streams' });
  });

  it('expires a session whose client never answers the keepalive (ping_timeout)', async () => {
    const a = track(await openFallback(t.url, { token: await token('silent') }));
    await a.next((f) => f.t === 'welcome');
    await waitFor(() => a.ended, { timeoutMs: 5000, what: 'abandoned session expired' });
    assert.ok(a.events.some((e) => e.event === 'ping'), 'it was pinged first');
    assert.equal(a.closeEvent?.code, ErrorCodes.ping_timeout.close);
  });
});

describe('HTTP fallback: send-buffer cap', () => {
  it('closes a stream that never reads at its send-buffer cap; a reader of the room gets everything (R8)', async (tc) => {
    const t = await startTestGateway({ env: { CONFAB_SEND_BUFFER_BYTES: '65536', CONFAB_RATE_PER_SEC: '1000', CONFAB_RATE_BURST: '1000' } });
    const streams: RawFallback[] = [];
    tc.after(async () => {
      for (const s of streams) s.destroy();
      await t.close();
    });
    const slow = await openFallback(t.url, { token: (await createSession(t.url, 'slowpoke')).token });
    streams.push(slow);
    await slow.next((f) => f.t === 'welcome');
    await slow.send({ t: 'join', room: 'firehose' });
    await slow.next((f) => f.t === 'joined');
    const reader = await openFallback(t.url, { token: (await createSession(t.url, 'reader')).token });
    streams.push(reader);
    await reader.next((f) => f.t === 'welcome');
    await reader.send({ t: 'join', room: 'firehose' });
    await reader.next((f) => f.t === 'joined');
    assert.equal(t.gw.connectionCount(), 2);
    slow.pause();
    const text = 'x'.repeat(4000);
    const from = { user: 'u', handle: 'h', node: 'n', region: 'r' };
    let sent = 0;
    const got = () => reader.frames.filter((f) => f.t === 'msg').length;
    // bounded: the kernel's loopback buffers absorb a few MB before the server's own buffer grows
    while (sent < 20_000 && t.gw.core.metrics.sendBufferDrops === 0) {
      await t.gw.core.publish({ room: 'firehose', id: `f${sent}`, kind: 'msg', text, from });
      sent++;
      if (sent % 20 === 0) await waitFor(() => got() >= sent, { what: `reader keeps up (sent ${sent}, got ${got()})` });
    }
    await waitFor(() => t.gw.connectionCount() === 1, { timeoutMs: 10_000, what: `the slow consumer closed (sent ${sent}, drops ${t.gw.core.metrics.sendBufferDrops})` });
    await waitFor(() => got() >= sent, { what: 'the healthy reader got everything' });
    assert.ok(t.gw.core.metrics.sendBufferDrops >= 1, 'counted as a send-buffer drop');
    assert.equal(reader.ended, false, 'the reader is unaffected');
  });
});
