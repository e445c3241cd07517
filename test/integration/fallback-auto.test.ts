/**
 * The SDK's transport choice (`transport: 'auto'`, src/client/transport.ts) against a real gateway:
 *  - a WebSocket that opens and then brings no frame (a proxy that passes the upgrade, then nothing)
 *    moves the client to the HTTP fallback after `fallbackAfterMs`;
 *  - a client on the fallback whose WebSocket works again moves back to it (upgrade probe every
 *    `upgradeRetryMs`), resuming its room: messages sent before, during and after the move are
 *    delivered once, in order;
 *  - forced transports never switch.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { ConfabClient, MemoryStorage, type ChatMessage, type StateChange, type WebSocketCtor, type WebSocketLike } from '../../src/client/index.js';
import { createSession, startTestGateway, type TestGateway } from '../../src/testkit/gateway.js';
import { waitFor } from '../../src/procs/wait.js';

/** A WebSocket that never opens nor closes: the upgrade hangs behind a proxy that passes nothing. */
class SilentSocket implements WebSocketLike {
  readyState = 0;
  onopen = null;
  onmessage = null;
  onclose = null;
  onerror = null;
  send(): void {}
  close(): void {
    this.readyState = 3;
  }
}

describe('SDK transport choice (auto)', () => {
  let g: TestGateway;
  const clients: ConfabClient[] = [];
  before(async () => {
    g = await startTestGateway();
  });
  after(async () => {
    for (const c of clients) c.close();
    await g.close();
  });

  const make = async (handle: string, WS: WebSocketCtor, extra: Partial<ConstructorParameters<typeof ConfabClient>[0]> = {}) => {
    const s = await createSession(g.url, handle);
    const c = new ConfabClient({ url: g.url, token: s.token, WebSocket: WS, storage: new MemoryStorage(), watchNetwork: false, backoff: { minMs: 50, maxMs: 200 }, ...extra });
    clients.push(c);
    return c;
  };

  it('a WebSocket that brings no frame within fallbackAfterMs moves the client to the fallback', async () => {
    const c = await make('silent', SilentSocket as unknown as WebSocketCtor, { fallbackAfterMs: 300, upgradeRetryMs: 0 });
    const states: string[] = [];
    c.on('state', (s: StateChange) => states.push(`${s.state}:${s.transport ?? ''}`));
    const t0 = Date.now();
    c.connect();
    await c.join('lobby');
    assert.equal(c.transport, 'fallback');
    assert.ok(Date.now() - t0 >= 300, 'it waited fallbackAfterMs for a frame');
    assert.deepEqual(states, ['connecting:websocket', 'reconnecting:', 'connecting:fallback', 'connected:fallback']);
  });

  it('back to WebSocket when it works again: the room resumes, nothing lost or duplicated', async () => {
    let refuse = true;
    const Switchable = class extends WebSocket {
      constructor(url: string, protocols?: string | string[]) {
        // refused: the upgrade goes to a closed port, as behind a proxy that refuses it
        super(refuse ? url.replace(/^(wss?:\/\/)[^/]+/, '$1127.0.0.1:9') : url, protocols);
      }
    } as unknown as WebSocketCtor;
    const c = await make('mover', Switchable, { upgradeRetryMs: 400, fallbackAfterMs: 1000 });
    c.on('error', () => {});
    const watcher = await make('watcher', WebSocket as unknown as WebSocketCtor, { transport: 'websocket' });
    const got: string[] = [];
    watcher.on('message', (m: ChatMessage) => got.push(m.text));
    watcher.connect();
    await watcher.join('lobby');
    c.connect();
    await c.join('lobby');
    assert.equal(c.transport, 'fallback');
    const mine: string[] = [];
    c.on('message', (m: ChatMessage) => mine.push(m.text));
    for (let i = 0; i < 5; i++) await c.send('lobby', `before${i}`);
    refuse = false;
    const sends: Promise<unknown>[] = [];
    let i = 0;
    await waitFor(
      () => {
        sends.push(c.send('lobby', `during${i++}`));
        return c.transport === 'websocket' && c.state === 'connected';
      },
      { timeoutMs: 5000, intervalMs: 50, what: 'the move back to WebSocket' },
    );
    await c.join('lobby');
    for (let k = 0; k < 5; k++) sends.push(c.send('lobby', `after${k}`));
    await Promise.all(sends);
    const want = [...Array.from({ length: 5 }, (_, k) => `before${k}`), ...Array.from({ length: i }, (_, k) => `during${k}`), ...Array.from({ length: 5 }, (_, k) => `after${k}`)];
    await waitFor(() => got.length >= want.length, { what: 'every message at the watcher' });
    assert.deepEqual(got, want, 'once each, in the order sent');
    await waitFor(() => mine.length >= want.length, { what: 'every message back at the mover' });
    assert.deepEqual(mine, want, 'the mover itself saw each once (resume across the move)');
  });

  it('a forced transport never switches', async () => {
    const c = await make('forced', SilentSocket as unknown as WebSocketCtor, { transport: 'websocket', fallbackAfterMs: 200, connectTimeoutMs: 600 });
    const seen: string[] = [];
    c.on('state', (s: StateChange) => seen.push(`${s.state}:${s.transport ?? ''}`));
    c.connect();
    await waitFor(() => seen.filter((x) => x === 'connecting:websocket').length >= 2, { timeoutMs: 5000, what: 'a second WebSocket attempt' });
    assert.ok(!seen.some((x) => x.endsWith(':fallback')), seen.join(' '));
    c.close();
  });
});
