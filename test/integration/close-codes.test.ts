/**
 * G13: every close the server decides reaches a client that can still read it, with its
 * code and a JSON reason; a reused id with other content is a typed conflict, not a
 * silent `dup`; and a draining node keeps accepting upgrades until the load balancer
 * has had `CONFAB_DRAIN_READY_DELAY_MS` to notice its failing readiness.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { SUBPROTOCOL } from '../../src/protocol/frames.js';
import { createSession, startTestGateway, type TestGateway } from '../../src/testkit/gateway.js';
import { RawClient } from '../../src/testkit/raw-client.js';
import { waitFor } from '../../src/procs/wait.js';

function closeOf(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString() })));
}

describe('closes the server decides reach the client with their code', () => {
  let t: TestGateway;
  const clients: RawClient[] = [];
  before(async () => {
    t = await startTestGateway({ env: { CONFAB_PING_INTERVAL_MS: '300', CONFAB_PING_TIMEOUT_MS: '300', CONFAB_SEND_BUFFER_BYTES: '65536', CONFAB_API_KEY: 'k'.repeat(20) } });
  });
  after(async () => {
    for (const c of clients) c.ws.terminate();
    await t?.close();
  });

  it('a client that stops answering pings (but still reads) gets 4002 ping_timeout', async () => {
    const s = await createSession(t.url, 'nopong');
    const ws = new WebSocket(`${t.wsUrl}?token=${s.token}`, [SUBPROTOCOL], { autoPong: false } as WebSocket.ClientOptions);
    ws.on('error', () => {});
    const closed = closeOf(ws);
    const { code, reason } = await closed;
    assert.equal(code, 4002);
    assert.equal((JSON.parse(reason) as { code: string }).code, 'ping_timeout');
  });

  it('a reused id with different text is duplicate_id_conflict (WebSocket and HTTP 409); a true resend is dup', async () => {
    const { c } = await RawClient.session(t, 'reuser', clients);
    c.send({ t: 'join', room: 'ids' });
    await c.next('joined');
    c.send({ t: 'pub', id: 'same', room: 'ids', text: 'first' });
    const first = await c.next('ack', (a) => a.id === 'same');
    c.send({ t: 'pub', id: 'same', room: 'ids', text: 'first' });
    const again = await c.next('ack', (a) => a.id === 'same' && a.dup);
    assert.equal(again.offset, first.offset);
    c.send({ t: 'pub', id: 'same', room: 'ids', text: 'second' });
    const e = await c.next('error', (x) => x.id === 'same');
    assert.equal(e.code, 'duplicate_id_conflict');
    const post = (text: string) =>
      fetch(`${t.url}/api/rooms/ids/messages`, { method: 'POST', headers: { authorization: `Bearer ${'k'.repeat(20)}`, 'content-type': 'application/json' }, body: JSON.stringify({ text, id: 'api-1' }) });
    assert.equal((await post('one')).status, 201);
    assert.equal((await post('one')).status, 200, 'a resend is answered 200 dup');
    const conflict = await post('two');
    assert.equal(conflict.status, 409);
    assert.equal(((await conflict.json()) as { code: string }).code, 'duplicate_id_conflict');
  });
});

describe('a slow consumer', () => {
  it('a slow consumer that reads again later gets 4001 slow_consumer after what was already sent', async (tc) => {
    // its own node: pings slow enough that the paused reader is closed for its buffer, not for a missed pong
    // and no rate limit: the writer goes as fast as its acks come back (thousands of messages a second)
    const t = await startTestGateway({ env: { CONFAB_SEND_BUFFER_BYTES: '65536', CONFAB_RATE_PER_SEC: '1000000', CONFAB_RATE_BURST: '1000000' } });
    const clients: RawClient[] = [];
    tc.after(async () => {
      for (const c of clients) c.ws.terminate();
      await t.close();
    });
    const s = await createSession(t.url, 'slowreader');
    const ws = new WebSocket(`${t.wsUrl}?token=${s.token}`, [SUBPROTOCOL]);
    ws.on('error', () => {});
    let got = 0;
    ws.on('message', () => got++);
    await new Promise((r) => ws.once('open', r));
    ws.send(JSON.stringify({ t: 'join', room: 'hose' }));
    await waitFor(() => got >= 2, { what: 'welcome and joined' });
    const sock = (ws as unknown as { _socket: import('node:net').Socket })._socket;
    sock.pause(); // stop reading: the server's send buffer for this socket fills
    const closed = closeOf(ws);
    const { c: writer } = await RawClient.session(t, 'hosewriter', clients);
    writer.send({ t: 'join', room: 'hose' });
    await writer.next('joined');
    const before = t.gw.connectionCount();
    const text = 'x'.repeat(1900);
    for (let i = 0; i < 5000 && t.gw.connectionCount() >= before; i++) {
      // paced by the writer's acks: a firehose for a reader that does not read
      writer.send({ t: 'pub', id: `h${i}`, room: 'hose', text });
      if (i % 15 === 14) await writer.next('ack', (a) => a.id === `h${i}`, 20_000);
    }
    await waitFor(() => t.gw.connectionCount() < before, { what: 'server closes the slow consumer', timeoutMs: 20_000 });
    sock.resume(); // reads again: first what was queued, then the close frame
    const { code, reason } = await closed;
    assert.equal(code, 4001);
    assert.equal((JSON.parse(reason) as { code: string }).code, 'slow_consumer');
  });

});

describe('drain and the load balancer', () => {
  it('readiness fails at once, but upgrades are accepted until CONFAB_DRAIN_READY_DELAY_MS has passed', async (tc) => {
    const t = await startTestGateway({ env: { CONFAB_DRAIN_READY_DELAY_MS: '1500', CONFAB_DRAIN_WINDOW_MS: '0' } });
    tc.after(() => t.close());
    const s = await createSession(t.url, 'latecomer');
    const drained = t.gw.drain();
    assert.equal((await fetch(`${t.url}/readyz`)).status, 503, 'not ready from the first moment');
    const late = await RawClient.connect(t.wsUrl, s.token); // the load balancer has not noticed yet: still served
    const closed = new Promise<number>((r) => late.ws.once('close', (code) => r(code)));
    await drained;
    assert.equal(await closed, 4000, 'then moved with the drain like everyone else');
  });
});
