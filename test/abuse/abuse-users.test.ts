/**
 * Abuse by one user across sockets and nodes (issue 11, S10): two gateways over one bus, an attacker
 * user on 8 sockets per node (16 in all: the per-user maximum across nodes) flooding alerts, typing and messages within every
 * per-connection limit, rooms beyond the per-user and per-node caps, and X-Forwarded-For spoofing.
 * A canary publishing in its own room loses nothing; every refusal is a typed error; what reaches the
 * victim stays within the per-user rates (before: 16 sockets × the per-connection burst).
 */
import assert from 'node:assert/strict';
import { connect as tcpConnect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { MemoryBroker, MemoryBus } from '../../src/bus/memory.js';
import { MemoryHistory } from '../../src/history/memory.js';
import { SUBPROTOCOL, type ServerFrame } from '../../src/protocol/frames.js';
import { Canary } from '../../src/testkit/canary.js';
import { createSession, startTestGateway, type TestGateway } from '../../src/testkit/gateway.js';
import { joinRoom, RawClient } from '../../src/testkit/raw-client.js';
import { waitFor } from '../../src/procs/wait.js';

/** Sockets of the attacker on each node; the per-user cap (across nodes) is both nodes' worth. */
const SOCKETS_PER_USER = 8;
const SOCKET_CAP = 2 * SOCKETS_PER_USER;
const ALERT_BURST = 3;
const TYPING = { perSec: 2, burst: 6 };
const MSG = { perSec: 30, burst: 60 };

/** Open a WebSocket; resolves with the upgrade's status (101 = open, the socket kept in `keep`). */
function upgrade(url: string, opts: { headers?: Record<string, string>; localAddress?: string }, keep: WebSocket[]): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, [SUBPROTOCOL], { headers: opts.headers, ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) });
    ws.on('error', () => resolve(-1));
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once('open', () => {
      keep.push(ws);
      resolve(101);
    });
  });
}

describe('abuse: one user across sockets and nodes', () => {
  const broker = new MemoryBroker();
  const history = new MemoryHistory();
  let gws: TestGateway[] = [];
  let canary: Canary;
  const clients: RawClient[] = [];
  const mallory: RawClient[] = [];
  let victim: RawClient;

  before(async () => {
    const env = (i: number) => ({
      CONFAB_NODE_ID: `abuse${i}`,
      CONFAB_MAX_SOCKETS_PER_USER: String(SOCKET_CAP),
      CONFAB_MAX_ROOMS_PER_USER: '20',
      CONFAB_MAX_ROOMS_PER_NODE: '60',
      CONFAB_USAGE_GOSSIP_MS: '200',
      CONFAB_USER_TYPING_PER_SEC: String(TYPING.perSec),
      CONFAB_USER_TYPING_BURST: String(TYPING.burst),
    });
    gws = await Promise.all([0, 1].map((i) => startTestGateway({ bus: new MemoryBus(broker), history, env: env(i) })));
    canary = await Canary.start(gws[0]!, { intervalMs: 100 });
    ({ c: victim } = await RawClient.session(gws[1]!, 'victim', clients));
    await joinRoom(victim, '_alerts');
    await joinRoom(victim, 'shared');
    for (let r = 0; r < 5; r++) await joinRoom(victim, `t${r}`);
    const s = await createSession(gws[0]!.url, 'mallory');
    for (const g of gws) for (let i = 0; i < SOCKETS_PER_USER; i++) mallory.push(await RawClient.connect(g.wsUrl, s.token));
    clients.push(...mallory);
  });
  after(async () => {
    await canary.stop(0);
    for (const c of clients) c.close();
    for (const g of gws) await g.close();
  });

  it('refuses a socket beyond the per-user maximum with 429 too_many_sockets', async () => {
    const s = await createSession(gws[0]!.url, 'mallory2');
    const keep: WebSocket[] = [];
    const codes: number[] = [];
    for (let i = 0; i <= SOCKET_CAP; i++) codes.push(await upgrade(`${gws[0]!.wsUrl}?token=${s.token}`, {}, keep));
    for (const w of keep) w.close();
    assert.deepEqual(codes, [...new Array<number>(SOCKET_CAP).fill(101), 429]);
  });

  it('alerts: 16 sockets on two nodes, each at its per-connection burst, reach the victim within the user\'s alert burst', async (t) => {
    const ids: string[] = [];
    mallory.forEach((c, i) => {
      for (let k = 0; k < 30; k++) {
        const id = `a${i}-${k}`;
        ids.push(id);
        c.send({ t: 'alert', id, text: 'alert!' });
      }
    });
    const answered = (c: RawClient) => c.all('ack').filter((a) => a.room === '_alerts').length + c.all('error').filter((e) => e.room === '_alerts').length;
    await waitFor(() => mallory.every((c) => answered(c) >= 30), { what: 'every alert answered' });
    const acked = mallory.reduce((n, c) => n + c.all('ack').filter((a) => a.room === '_alerts').length, 0);
    const codes = new Set(mallory.flatMap((c) => c.all('error').map((e) => e.code)));
    await waitFor(() => victim.msgs('_alerts').length >= acked, { what: 'the victim has every accepted alert' });
    t.diagnostic(`alerts sent ${ids.length}, accepted ${acked}, refused with ${[...codes].join(', ')}; victim got ${victim.msgs('_alerts').length}`);
    assert.ok(acked <= 2 * ALERT_BURST, `at most the user's burst per node (${acked})`);
    assert.ok(acked >= ALERT_BURST, 'the user could alert');
    assert.ok([...codes].every((c) => c === 'rate_limited' || c === 'fenced'), `every refusal typed: ${[...codes].join(', ')}`);
    assert.equal(victim.msgs('_alerts').length, acked);
  });

  it('typing: 16 sockets in 5 rooms on two nodes reach the victim within the user\'s typing rate', async (t) => {
    for (const c of mallory) for (let r = 0; r < 5; r++) await joinRoom(c, `t${r}`);
    const t0 = Date.now();
    const before = victim.all('typing').length;
    while (Date.now() - t0 < 3000) {
      for (const c of mallory) for (let r = 0; r < 5; r++) c.send({ t: 'typing', room: `t${r}` });
      await new Promise((res) => setTimeout(res, 250));
    }
    const sec = (Date.now() - t0) / 1000;
    const ping = mallory.map((c) => (c.send({ t: 'ping' }), c.next('pong')));
    await Promise.all(ping); // what was sent has been read
    const got = victim.all('typing').length - before;
    const bound = 2 * (TYPING.burst + TYPING.perSec * sec);
    t.diagnostic(`typing frames sent ${16 * 5 * Math.round(sec * 4)}, victim got ${got} in ${sec.toFixed(1)} s (bound ${bound.toFixed(0)})`);
    assert.ok(got <= bound, `${got} <= ${bound}`);
    assert.ok(got >= 1, 'typing still works');
    assert.ok(mallory.every((c) => c.closeCode === undefined), 'within the per-connection rate: nobody closed');
  });

  it('messages: 16 sockets on two nodes are held to one user\'s rate; every pub answered, the victim gets exactly the accepted', async (t) => {
    for (const c of mallory) await joinRoom(c, 'shared');
    const t0 = Date.now();
    mallory.forEach((c, i) => {
      for (let k = 0; k < 30; k++) c.send({ t: 'pub', id: `m${i}-${k}`, room: 'shared', text: 'spam' });
    });
    const answered = (c: RawClient) => c.all('ack').filter((a) => a.room === 'shared').length + c.all('error').filter((e) => e.room === 'shared' && e.id?.startsWith('m')).length;
    await waitFor(() => mallory.every((c) => answered(c) >= 30), { what: 'every pub answered' });
    const sec = (Date.now() - t0) / 1000;
    const acked = mallory.reduce((n, c) => n + c.all('ack').filter((a) => a.room === 'shared').length, 0);
    await waitFor(() => victim.msgs('shared').length >= acked, { what: 'the victim has every accepted message' });
    t.diagnostic(`pubs sent ${16 * 30}, accepted ${acked} in ${sec.toFixed(2)} s`);
    assert.ok(acked <= 2 * (MSG.burst + MSG.perSec * sec) + 2, `${acked} within the user's rate on two nodes`);
    assert.equal(victim.msgs('shared').length, acked);
    const codes = new Set(mallory.flatMap((c) => c.all('error').filter((e) => e.room === 'shared').map((e) => e.code)));
    assert.ok(codes.has('rate_limited') && [...codes].every((c) => c === 'rate_limited' || c === 'fenced'), [...codes].join(', '));
  });

  it('rooms: a user beyond its distinct rooms gets too_many_rooms, a node beyond its rooms node_full (retry later)', async () => {
    // a fresh user on two sockets (mallory's per-connection buckets are spent): 22 distinct rooms, 11 per socket
    const s = await createSession(gws[0]!.url, 'roomer');
    const two = [await RawClient.connect(gws[0]!.wsUrl, s.token), await RawClient.connect(gws[0]!.wsUrl, s.token)];
    clients.push(...two);
    const results: { room: string; code?: string }[] = [];
    for (let r = 0; r < 22; r++) {
      const who = two[r % 2]!;
      const room = `own${r}`;
      who.send({ t: 'join', room });
      await waitFor(() => who.frames.some((f) => (f.t === 'joined' || f.t === 'error') && f.room === room));
      const e = who.all('error').find((f) => f.room === room);
      results.push(e ? { room, code: e.code } : { room });
    }
    assert.deepEqual(results.filter((r) => r.code), [{ room: 'own20', code: 'too_many_rooms' }, { room: 'own21', code: 'too_many_rooms' }], 'the 21st and 22nd distinct rooms, across its sockets');
    // the node (60 rooms): other users fill it
    const refusals: ServerFrame[] = [];
    for (let u = 0; u < 4 && refusals.length === 0; u++) {
      const { c: x } = await RawClient.session(gws[0]!, `filler${u}`, clients);
      for (let r = 0; r < 20; r++) x.send({ t: 'join', room: `fill${u}-${r}` });
      await waitFor(() => x.frames.filter((f) => (f.t === 'joined' || f.t === 'error') && f.room?.startsWith('fill')).length === 20);
      refusals.push(...x.all('error').filter((e) => e.code === 'node_full'));
    }
    assert.ok(refusals.length > 0, 'node_full reached');
    assert.equal((refusals[0] as { retry?: string }).retry, 'later');
    assert.ok(gws[0]!.gw.core.users.roomCount <= 60, `the node holds at most 60 rooms (${gws[0]!.gw.core.users.roomCount})`);
    // the canary's room is open all along: it was joined before
  });

  it('the canary lost nothing and saw no error through all of it', async (t) => {
    const r = await canary.stop();
    t.diagnostic(`canary: ${JSON.stringify(r)}`);
    assert.ok(r.sent > 20);
    assert.equal(r.lost + r.duplicated + r.reordered, 0);
    assert.deepEqual(r.errors, []);
  });
});

describe('abuse: address spoofing and per-address limits', () => {
  let g: TestGateway;
  const keep: WebSocket[] = [];
  const tcp: Socket[] = [];
  before(async () => {
    g = await startTestGateway({ env: { CONFAB_TRUSTED_PROXIES: '127.0.0.2/32', CONFAB_MAX_CONN_PER_IP: '4', CONFAB_MAX_HTTP_PER_IP: '4' } });
  });
  after(async () => {
    for (const w of keep) w.terminate();
    for (const s of tcp) s.destroy();
    await g.close();
  });

  it('X-Forwarded-For from an untrusted peer is ignored; from a trusted proxy range each client counts apart', async () => {
    const tokens: string[] = [];
    for (let i = 0; i < 6; i++) tokens.push((await createSession(g.url, `sp${i}`)).token); // one at a time: 4 HTTP connections per address
    const url = (i: number) => `${g.wsUrl}?token=${tokens[i]!}`;
    const spoofed: number[] = [];
    for (let i = 0; i < 5; i++) spoofed.push(await upgrade(url(i), { headers: { 'x-forwarded-for': `10.0.0.${i}` } }, keep));
    assert.deepEqual(spoofed, [101, 101, 101, 101, 429], 'all five count as 127.0.0.1');
    const viaProxy: number[] = [];
    for (let i = 0; i < 6; i++) viaProxy.push(await upgrade(url(i), { localAddress: '127.0.0.2', headers: { 'x-forwarded-for': `6.6.6.6, 10.1.0.${i}` } }, keep));
    assert.deepEqual(viaProxy, [101, 101, 101, 101, 101, 101], 'six clients behind the proxy');
    const oneBehind: number[] = [];
    for (let i = 0; i < 4; i++) oneBehind.push(await upgrade(url(i), { localAddress: '127.0.0.2', headers: { 'x-forwarded-for': '10.1.0.0' } }, keep));
    assert.deepEqual(oneBehind, [101, 101, 101, 429], 'one client behind the proxy is limited on its own address (it holds one already)');
  });

  it('plain HTTP: silent connections beyond the per-address limit are answered 429 at once; the trusted proxy is exempt', async () => {
    const u = new URL(g.url);
    const open = (localAddress?: string) =>
      new Promise<{ sock: Socket; reply: () => string }>((resolve) => {
        const sock = tcpConnect({ port: Number(u.port), host: u.hostname, ...(localAddress ? { localAddress } : {}) });
        let reply = '';
        sock.on('data', (d) => (reply += d.toString()));
        sock.on('error', () => {});
        tcp.push(sock);
        sock.once('connect', () => resolve({ sock, reply: () => reply }));
      });
    // 127.0.0.3 is an address of its own (127.0.0.1 holds WebSockets of the test above, which do not count here)
    const held = [];
    for (let i = 0; i < 4; i++) held.push(await open('127.0.0.3'));
    const fifth = await open('127.0.0.3');
    await waitFor(() => fifth.reply().length > 0, { what: 'the 429' });
    assert.match(fifth.reply(), /^HTTP\/1\.1 429 [^]*"code":"too_many_connections"/);
    const proxied = await Promise.all([0, 1, 2, 3, 4, 5].map(() => open('127.0.0.2')));
    proxied[5]!.sock.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => proxied[5]!.reply().length > 0, { what: 'an answer through the proxy' });
    assert.match(proxied[5]!.reply(), /^HTTP\/1\.1 200 /);
    for (const h of held) h.sock.destroy();
  });
});
