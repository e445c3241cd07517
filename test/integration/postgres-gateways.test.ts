/**
 * Gateway processes (`confab start`) on the NATS bus (core NATS only, no JetStream) with PostgreSQL
 * history (CONFAB_HISTORY=postgres, DATABASE_URL), one real PostgreSQL 15 and one nats-server:
 *
 * 1. publishers on both gateways at once: every member sees one order with no hole, each sender's order kept (G1);
 * 2. kill -9 of a gateway: its reader resumes on the other with exactly what it missed; the writer resends
 *    an acknowledged message through the other gateway and it is stored once, answered with its offset (G2, G3);
 * 3. PostgreSQL killed -9 (postmaster and backends) and started again under load: both gateways stay up,
 *    readiness fails while it is down, every publish is acknowledged or refused with a typed error, both
 *    recover by themselves, and every acknowledged message reaches every member, in one order, in one epoch (G8, G10).
 * (The Pub/Sub + PostgreSQL pairing: pubsub-gateways.test.ts.)
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createSession, spawnGateway, type GatewayProcess } from '../../src/testkit/gateway.js';
import { startNats, type NatsServer } from '../../src/procs/nats.js';
import { startPostgres, type PostgresServer } from '../../src/testkit/postgres.js';
import { joinRoom, RawClient } from '../../src/testkit/raw-client.js';
import { waitFor } from '../../src/procs/wait.js';

const wsOf = (url: string) => url.replace(/^http/, 'ws') + '/ws';
type Msg = { offset: number; prev: number; id: string; epoch: string };

function assertChain(msgs: Msg[], what: string): void {
  for (let i = 1; i < msgs.length; i++) assert.equal(msgs[i]!.prev, msgs[i - 1]!.offset, `${what}: no hole before offset ${msgs[i]!.offset}`);
  assert.equal(new Set(msgs.map((m) => m.id)).size, msgs.length, `${what}: no duplicate`);
}

describe('gateway processes on NATS with PostgreSQL history', () => {
  let pgs: PostgresServer;
  let nats: NatsServer & { close(): Promise<void> };
  const procs: GatewayProcess[] = [];
  const clients: RawClient[] = [];

  const env = (node: string): Record<string, string> => ({
    PORT: '0',
    NATS_URL: nats.url,
    CONFAB_HISTORY: 'postgres',
    DATABASE_URL: pgs.url,
    CONFAB_PG_CONNECT_TIMEOUT_MS: '1000',
    CONFAB_PG_QUERY_TIMEOUT_MS: '2000',
    CONFAB_NODE_ID: node,
    CONFAB_RATE_BURST: '500',
    CONFAB_RATE_PER_SEC: '500',
  });
  const spawn = async (node: string) => {
    const p = await spawnGateway(env(node), { timeoutMs: 30_000 });
    procs.push(p);
    return p;
  };
  const connect = async (p: GatewayProcess, handle: string, token?: string) => {
    const session = await createSession(p.url, handle, token);
    const c = await RawClient.connect(wsOf(p.url), session.token);
    clients.push(c);
    return { c, s: session };
  };
  const ready = async (p: GatewayProcess) => (await fetch(`${p.url}/readyz`)).status;

  let gwA: GatewayProcess;
  let gwB: GatewayProcess;
  before(async () => {
    [pgs, nats] = await Promise.all([startPostgres(), startNats({ jetstream: false })]);
    [gwA, gwB] = await Promise.all([spawn('pgA'), spawn('pgB')]);
  });
  after(async () => {
    for (const c of clients) c.close();
    for (const p of procs) await p.kill();
    await Promise.all([pgs?.close(), nats?.close()]);
  });

  it('delivers across gateways in one order while both gateways publish at once (G1)', async () => {
    const members = [await connect(gwA, 'o1'), await connect(gwB, 'o2'), await connect(gwB, 'o3')];
    for (const { c } of members) await joinRoom(c, 'busy');
    const per = 40;
    members.forEach(({ c }, i) => {
      for (let k = 0; k < per; k++) c.send({ t: 'pub', id: `n${i}k${k}`, room: 'busy', text: `${i}:${k}` });
    });
    const total = per * members.length;
    await waitFor(() => members.every(({ c }) => c.msgs('busy').length >= total), { what: 'every member has every message', timeoutMs: 20_000 });
    const orders = members.map(({ c }) => c.msgs('busy').map((m) => `${m.offset}:${m.id}`));
    assert.deepEqual(orders[1], orders[0]);
    assert.deepEqual(orders[2], orders[0]);
    const msgs = members[0]!.c.msgs('busy');
    assert.equal(msgs.length, total);
    assert.deepEqual(msgs.map((m) => m.offset), Array.from({ length: total }, (_, i) => i + 1), 'PostgreSQL offsets are contiguous from 1');
    assertChain(msgs, 'busy');
    for (let i = 0; i < members.length; i++) {
      const mine = msgs.filter((m) => m.id.startsWith(`n${i}k`)).map((m) => Number(m.id.slice(m.id.indexOf('k') + 1)));
      assert.deepEqual(mine, Array.from({ length: per }, (_, k) => k), 'each sender keeps its own order');
    }
  });

  it('kill -9 of a gateway: its reader resumes on the other exactly; a resend through the other is stored once (G2, G3)', async () => {
    const gwC = await spawn('pgC');
    const { c: r, s: reader } = await connect(gwC, 'hop-reader');
    const { c: w, s: writer } = await connect(gwB, 'hop-writer');
    const j = await joinRoom(r, 'hop');
    await joinRoom(w, 'hop');
    for (let i = 0; i < 5; i++) w.send({ t: 'pub', id: `h${i}`, room: 'hop', text: `h${i}` });
    await waitFor(() => r.msgs('hop').length === 5, { what: 'first five at the reader' });
    const lastSeen = r.msgs('hop').at(-1)!.offset;
    await gwC.kill();
    await r.closed();
    for (let i = 5; i < 12; i++) w.send({ t: 'pub', id: `h${i}`, room: 'hop', text: `h${i}` });
    const ack11 = await w.next('ack', (a) => a.id === 'h11');
    const r2 = await RawClient.connect(wsOf(gwA.url), reader.token);
    clients.push(r2);
    const j2 = await joinRoom(r2, 'hop', { epoch: j.epoch, offset: lastSeen });
    assert.equal(j2.recovered, true);
    assert.equal(j2.gap, undefined);
    assert.equal(j2.epoch, j.epoch);
    // the writer resends h11 through the other gateway (as after a lost ack): stored once, its offset answered
    const w2 = await RawClient.connect(wsOf(gwA.url), writer.token);
    clients.push(w2);
    await joinRoom(w2, 'hop');
    w2.send({ t: 'pub', id: 'h11', room: 'hop', text: 'h11' });
    const dup = await w2.next('ack', (a) => a.id === 'h11');
    assert.equal(dup.dup, true);
    assert.equal(dup.offset, ack11.offset);
    w2.send({ t: 'pub', id: 'h11', room: 'hop', text: 'h11, edited' });
    const conflict = await w2.next('error', (e) => e.id === 'h11');
    assert.equal(conflict.code, 'duplicate_id_conflict');
    w.send({ t: 'pub', id: 'live', room: 'hop', text: 'live' });
    await r2.next('msg', (m) => m.id === 'live');
    const got = r2.msgs('hop');
    assert.deepEqual(got.map((m) => m.text), [...Array.from({ length: 7 }, (_, i) => `h${i + 5}`), 'live']);
    assert.equal(got[0]!.prev, lastSeen, 'the replay starts right after the last message seen');
    assertChain(got, 'hop');
  });

  it('PostgreSQL killed -9 and restarted under load: readiness fails, typed errors only, recovery by itself, nothing acknowledged lost (G8, G10)', async () => {
    const members = [await connect(gwA, 'out-a'), await connect(gwB, 'out-b')];
    for (const { c } of members) await joinRoom(c, 'outage');
    const acked = new Set<string>();
    const errors = new Map<string, number>();
    let stop = false;
    const deadline = Date.now() + 45_000;
    // one SDK-like writer per gateway: one message in flight, the same id resent after an error until acknowledged
    const writers = members.map(async ({ c }, i) => {
      for (let k = 0; !stop && Date.now() < deadline; k++) {
        const id = `o${i}-${k}`;
        while (Date.now() < deadline) {
          const from = c.frames.length;
          c.send({ t: 'pub', id, room: 'outage', text: id });
          let outcome: 'ack' | 'error' | undefined;
          await waitFor(() => {
            for (let x = from; x < c.frames.length; x++) {
              const f = c.frames[x]!;
              if ((f.t === 'ack' || f.t === 'error') && f.id === id) outcome = f.t;
            }
            return outcome !== undefined;
          }, { what: `ack or error for ${id}`, timeoutMs: 10_000 });
          if (outcome === 'ack') {
            acked.add(id);
            break;
          }
          const err = c.frames.slice(from).find((f) => f.t === 'error' && f.id === id) as { code: string };
          errors.set(err.code, (errors.get(err.code) ?? 0) + 1);
          await new Promise((res) => setTimeout(res, 50)); // client backoff before the resend
        }
      }
    });
    try {
      await waitFor(() => acked.size >= 20, { what: 'load running', timeoutMs: 20_000 });
      await pgs.kill();
      await waitFor(async () => (await ready(gwA)) === 503 && (await ready(gwB)) === 503, { what: 'readyz 503 on both while PostgreSQL is down', timeoutMs: 10_000 });
      assert.equal((await fetch(`${gwA.url}/healthz`)).status, 200, 'the gateway stays alive');
      const refusedBefore = [...errors.values()].reduce((a, b) => a + b, 0);
      await waitFor(() => [...errors.values()].reduce((a, b) => a + b, 0) > refusedBefore, { what: 'a publish refused while PostgreSQL is down', timeoutMs: 10_000 });
      await pgs.start();
      await waitFor(async () => (await ready(gwA)) === 200 && (await ready(gwB)) === 200, { what: 'ready again by itself', timeoutMs: 15_000 });
      const atRestart = acked.size;
      await waitFor(() => acked.size >= atRestart + 20, { what: 'progress after PostgreSQL came back', timeoutMs: 20_000 });
    } finally {
      stop = true;
      await Promise.all(writers);
    }
    assert.ok([...errors.keys()].length > 0 && [...errors.keys()].every((code) => code === 'bus_unavailable' || code === 'store_failed'), `typed errors only: ${[...errors.keys()]}`);
    await waitFor(() => members.every(({ c }) => [...acked].every((id) => c.msgs('outage').some((m) => m.id === id))), { what: 'every acknowledged message at every member', timeoutMs: 20_000 });
    const orders = members.map(({ c }) => c.msgs('outage').map((m) => `${m.epoch}:${m.offset}:${m.id}`));
    assert.deepEqual(orders[1], orders[0]);
    const msgs = members[0]!.c.msgs('outage');
    assert.equal(new Set(msgs.map((m) => m.epoch)).size, 1, 'a committed transaction survives the crash: one epoch');
    assertChain(msgs, 'outage');
    const stored = await pgs.query<{ n: string }>("SELECT count(*) AS n FROM confab.messages WHERE room = 'outage'");
    assert.equal(Number(stored[0]!.n), msgs.length, 'stored once each: as many rows as distinct messages delivered');
  });
});
