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
import type { GatewayProcess } from '../../src/testkit/gateway.js';
import { startNats, type NatsServer } from '../../src/procs/nats.js';
import { startPostgres, type PostgresServer } from '../../src/testkit/postgres.js';
import { joinRoom } from '../../src/testkit/raw-client.js';
import { waitFor } from '../../src/procs/wait.js';
import { assertChain, publishConcurrently, steadyWriters, twoGateways, type GatewayFixture } from '../../src/testkit/two-gateways.js';

describe('gateway processes on NATS with PostgreSQL history', () => {
  let pgs: PostgresServer;
  let nats: NatsServer & { close(): Promise<void> };
  let fx: GatewayFixture<GatewayProcess>;

  const env = (node: string): Record<string, string> => ({
    NATS_URL: nats.url,
    CONFAB_HISTORY: 'postgres',
    DATABASE_URL: pgs.url,
    CONFAB_PG_CONNECT_TIMEOUT_MS: '1000',
    CONFAB_PG_QUERY_TIMEOUT_MS: '2000',
    CONFAB_NODE_ID: node,
    CONFAB_RATE_BURST: '500',
    CONFAB_RATE_PER_SEC: '500',
  });
  const connect = (p: GatewayProcess, handle: string, token?: string) => fx.connect(p, handle, token);
  const ready = (p: GatewayProcess) => fx.ready(p);

  let gwA: GatewayProcess;
  let gwB: GatewayProcess;
  before(async () => {
    [pgs, nats] = await Promise.all([startPostgres(), startNats({ jetstream: false })]);
    fx = await twoGateways(env, ['pgA', 'pgB']);
    [gwA, gwB] = fx.gws as [GatewayProcess, GatewayProcess];
  });
  after(async () => {
    await fx?.close();
    await Promise.all([pgs?.close(), nats?.close()]);
  });

  it('delivers across gateways in one order while both gateways publish at once (G1)', async () => {
    const members = [await connect(gwA, 'o1'), await connect(gwB, 'o2'), await connect(gwB, 'o3')];
    const msgs = await publishConcurrently(members, 'busy', 40);
    assert.deepEqual(msgs.map((m) => m.offset), Array.from({ length: msgs.length }, (_, i) => i + 1), 'PostgreSQL offsets are contiguous from 1');
  });

  it('kill -9 of a gateway: its reader resumes on the other exactly; a resend through the other is stored once (G2, G3)', async () => {
    const gwC = await fx.add('pgC');
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
    const r2 = await fx.reconnect(gwA, reader.token);
    const j2 = await joinRoom(r2, 'hop', { epoch: j.epoch, offset: lastSeen });
    assert.equal(j2.recovered, true);
    assert.equal(j2.gap, undefined);
    assert.equal(j2.epoch, j.epoch);
    // the writer resends h11 through the other gateway (as after a lost ack): stored once, its offset answered
    const w2 = await fx.reconnect(gwA, writer.token);
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
    const writers = steadyWriters(members, 'outage', { forMs: 45_000 });
    const { acked, errors } = writers;
    try {
      await waitFor(() => acked.size >= 20, { what: 'load running', timeoutMs: 20_000 });
      await pgs.kill();
      await waitFor(async () => (await ready(gwA)) === 503 && (await ready(gwB)) === 503, { what: 'readyz 503 on both while PostgreSQL is down', timeoutMs: 10_000 });
      assert.equal((await fetch(`${gwA.url}/healthz`)).status, 200, 'the gateway stays alive');
      const refusedBefore = writers.refused();
      await waitFor(() => writers.refused() > refusedBefore, { what: 'a publish refused while PostgreSQL is down', timeoutMs: 10_000 });
      await pgs.start();
      await waitFor(async () => (await ready(gwA)) === 200 && (await ready(gwB)) === 200, { what: 'ready again by itself', timeoutMs: 15_000 });
      const atRestart = acked.size;
      await waitFor(() => acked.size >= atRestart + 20, { what: 'progress after PostgreSQL came back', timeoutMs: 20_000 });
    } finally {
      await writers.stop();
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
