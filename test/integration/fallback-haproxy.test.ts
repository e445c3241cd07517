/**
 * The HTTP fallback behind a real HAProxy that refuses WebSocket upgrades (issue 14), two gateways
 * over one bus and history:
 *  - SDK clients in `auto` mode meet the refused upgrade (403) and move to the fallback by themselves;
 *  - their POSTs reach the gateway holding their stream through HAProxy's stick table (the config of
 *    deploy/haproxy.cfg), although the streams sit on different gateways: every message delivered once,
 *    in order, no reconnect;
 *  - a POST that reaches another node is answered 404 with `Fly-Replay: instance=<node>` (Fly's affinity);
 *  - a forced `websocket` client behind this proxy fails (no silent switch), a forced `fallback` client
 *    works straight away;
 *  - draining a gateway moves its fallback clients to the other one, nothing lost or duplicated.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { MemoryBroker } from '../../src/bus/memory.js';
import { ConfabClient, MemoryStorage, type ChatMessage, type WebSocketCtor } from '../../src/client/index.js';
import { MemoryHistory } from '../../src/history/memory.js';
import { openFallback, postFallback } from '../../src/testkit/fallback.js';
import { createSession, startTestGateway, type TestGateway } from '../../src/testkit/gateway.js';
import { FALLBACK_STICKINESS, checkHaproxyConfig, startHaproxy, type HaproxyProcess } from '../../src/procs/haproxy.js';
import { readFileSync } from 'node:fs';
import { REPO_ROOT } from '../../src/testkit/gateway.js';
import { waitFor } from '../../src/procs/wait.js';

describe('HTTP fallback behind HAProxy refusing upgrades', () => {
  const gws: TestGateway[] = [];
  let hap: HaproxyProcess;
  const dir = mkdtempSync(join(tmpdir(), 'confab-fbh-'));
  const clients: ConfabClient[] = [];

  before(async () => {
    const broker = new MemoryBroker();
    const history = new MemoryHistory(10_000);
    for (const node of ['fa', 'fb']) gws.push(await startTestGateway({ broker, history, env: { CONFAB_NODE_ID: node, CONFAB_TRUSTED_PROXIES: '127.0.0.1/32', CONFAB_PRESENCE_GRACE_MS: '3000' } }));
    hap = await startHaproxy({ backends: gws.map((g, i) => ({ name: `gw${i + 1}`, port: g.gw.port })), checkIntervalMs: 200, dir, name: 'hap', refuseUpgrades: true });
  });

  after(async () => {
    for (const c of clients) c.close();
    await hap?.stop();
    for (const g of gws) await g.close().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  });

  const client = async (handle: string, transport: 'auto' | 'websocket' | 'fallback' = 'auto') => {
    const s = await createSession(hap.url, handle);
    const c = new ConfabClient({ url: hap.url, token: s.token, WebSocket: WebSocket as unknown as WebSocketCtor, storage: new MemoryStorage(), watchNetwork: false, transport, backoff: { minMs: 50, maxMs: 300 } });
    clients.push(c);
    return c;
  };

  it('auto clients move to the fallback and chat across two gateways through the stick table: all delivered once, in order, no reconnect', async () => {
    const a = await client('ann');
    const b = await client('bob');
    const states: string[] = [];
    a.on('state', (s) => states.push(`a:${s.state}:${s.transport ?? ''}`));
    b.on('state', (s) => states.push(`b:${s.state}:${s.transport ?? ''}`));
    a.connect();
    b.connect();
    await Promise.all([a.join('lobby'), b.join('lobby')]);
    assert.equal(a.transport, 'fallback');
    assert.equal(b.transport, 'fallback');
    assert.deepEqual(new Set([a.welcome?.node, b.welcome?.node]), new Set(['fa', 'fb']), 'the two streams sit on different gateways (leastconn)');
    const got: Record<string, string[]> = { a: [], b: [] };
    a.on('message', (m: ChatMessage) => got.a!.push(m.text));
    b.on('message', (m: ChatMessage) => got.b!.push(m.text));
    const connectedAfterJoin = states.length;
    const sends: Promise<unknown>[] = [];
    for (let i = 0; i < 25; i++) {
      sends.push(a.send('lobby', `a${i}`));
      sends.push(b.send('lobby', `b${i}`));
    }
    await Promise.all(sends);
    await waitFor(() => got.a!.length === 50 && got.b!.length === 50, { what: 'every message at both clients' });
    assert.deepEqual(got.a, got.b, 'same order for both');
    assert.equal(new Set(got.a).size, 50, 'no duplicates');
    for (const who of ['a', 'b']) {
      const own = got.a!.filter((t) => t.startsWith(who));
      assert.deepEqual(own, Array.from({ length: 25 }, (_, i) => `${who}${i}`), `${who}'s messages in the order sent`);
    }
    assert.equal(states.length, connectedAfterJoin, `no reconnect while chatting: ${states.slice(connectedAfterJoin).join(' ')}`);
    assert.ok(states.some((s) => s.startsWith('a:connecting:websocket')), 'a tried WebSocket first');
    assert.equal(gws.reduce((n, g) => n + g.gw.core.metrics.fallbackConnections, 0), 2);
  });

  it('deploy/haproxy.cfg holds the same stickiness lines as the tested config, and is valid', async () => {
    const cfg = readFileSync(join(REPO_ROOT, 'deploy/haproxy.cfg'), 'utf8');
    for (const line of FALLBACK_STICKINESS) assert.ok(cfg.includes(line + '\n'), `deploy/haproxy.cfg has ${line.trim()}`);
    await checkHaproxyConfig(join(REPO_ROOT, 'deploy/haproxy.cfg'));
  });

  it("answers a POST that reached another node 404 with Fly-Replay naming the stream's node", async () => {
    const s = await createSession(gws[0]!.url, 'replay');
    const r = await openFallback(gws[0]!.url, { token: s.token });
    try {
      await r.next((f) => f.t === 'welcome');
      assert.match(r.sid, /^fa\./);
      const other = await postFallback(gws[1]!.url, JSON.stringify({ t: 'rooms' }), { sid: r.sid, key: r.key });
      assert.equal(other.status, 404);
      assert.equal(other.headers['fly-replay'], 'instance=fa');
      assert.equal((await r.send({ t: 'rooms' })).status, 204, 'the node holding the stream takes it');
    } finally {
      r.destroy();
    }
  });

  it('a forced websocket client fails behind this proxy; a forced fallback client connects at once', async () => {
    const ws = await client('wsonly', 'websocket');
    const seen: string[] = [];
    ws.on('state', (s) => seen.push(`${s.state}:${s.transport ?? ''}`));
    ws.on('error', () => {});
    ws.connect();
    await waitFor(() => seen.filter((s) => s.startsWith('reconnecting')).length >= 2, { what: 'two failed WebSocket attempts' });
    assert.ok(seen.every((s) => !s.endsWith(':fallback')), `never switched: ${seen.join(' ')}`);
    ws.close();
    const fb = await client('fbonly', 'fallback');
    const fseen: string[] = [];
    fb.on('state', (s) => fseen.push(`${s.state}:${s.transport ?? ''}`));
    fb.connect();
    await fb.join('lobby');
    assert.deepEqual(fseen, ['connecting:fallback', 'connected:fallback']);
  });

  it('draining a gateway moves its fallback clients to the other one: nothing lost or duplicated', async () => {
    const [a, b] = clients;
    const onA = a!.welcome!.node;
    const victim = gws.find((g) => g.gw.node === onA)!;
    const got: string[] = [];
    b!.on('message', (m: ChatMessage) => got.push(m.text));
    const sends: Promise<unknown>[] = [];
    for (let i = 0; i < 10; i++) sends.push(a!.send('lobby', `d${i}`));
    const draining = victim.gw.drain();
    for (let i = 10; i < 20; i++) sends.push(a!.send('lobby', `d${i}`));
    await draining;
    await Promise.all(sends);
    await waitFor(() => got.filter((t) => t.startsWith('d')).length === 20, { timeoutMs: 15_000, what: 'every message of the drained client' });
    assert.deepEqual(got.filter((t) => t.startsWith('d')), Array.from({ length: 20 }, (_, i) => `d${i}`));
    assert.notEqual(a!.welcome?.node, onA, 'moved to the other gateway');
    assert.equal(a!.transport, 'fallback');
  });
});
