/**
 * The scenario both mixed-broker gateway tests run (bus on one broker, history on
 * the other): `confab start` processes on one nats-server and one redis-server,
 * configured only by the environment (CONFAB_BUS, CONFAB_HISTORY, both URLs).
 *
 * 1. each process says which pair it started;
 * 2. publishers on both gateways at once: every member sees one order, no hole, each sender's order kept (G1);
 * 3. kill -9 of a gateway: its readers resume on the other one with exactly what they missed, then live (G2);
 *    a message acknowledged by the killed gateway and resent through the other is stored once (G3);
 * 4. the history's broker killed (-9) and started again while the bus's broker stays up: readiness fails
 *    on every gateway, members are told the bus is down, a publish gets a typed error, and everything
 *    returns by itself (G10); `afterStoreBack` checks what the history promises after its restart.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createSession, spawnGateway, type GatewayProcess } from '../../src/testkit/gateway.js';
import { startNats, type NatsServer } from '../../src/procs/nats.js';
import { joinRoom, RawClient } from '../../src/testkit/raw-client.js';
import { startRedis, type RedisServer } from '../../src/procs/redis.js';
import { waitFor } from '../../src/procs/wait.js';

const wsOf = (url: string) => url.replace(/^http/, 'ws') + '/ws';

export interface Brokers {
  nats: NatsServer & { close(): Promise<void> };
  redis: RedisServer;
}

export interface MixedSuite {
  title: string;
  bus: 'nats' | 'redis';
  history: 'redis' | 'jetstream';
  /** What the start line says: `bus <kind>, history <kind>` (the adapters' kinds). */
  startLine: RegExp;
  /** Take the history's broker down by SIGKILL, and start it again. */
  storeDown(b: Brokers): Promise<void>;
  storeUp(b: Brokers): Promise<void>;
  /**
   * After the store is back: `quiet` are members (one per gateway) of a room nobody wrote to during
   * the outage, joined with `epoch`; `seen` the offset they had. Asserts what that history promises.
   */
  afterStoreBack(quiet: RawClient[], room: string, epoch: string, seen: number): Promise<void>;
}

type Msg = { offset: number; prev: number; id: string; epoch: string };

function assertChain(msgs: Msg[], what: string): void {
  for (let i = 1; i < msgs.length; i++) assert.equal(msgs[i]!.prev, msgs[i - 1]!.offset, `${what}: no hole before offset ${msgs[i]!.offset}`);
  assert.equal(new Set(msgs.map((m) => m.id)).size, msgs.length, `${what}: no duplicate`);
}

export function mixedGatewaySuite(s: MixedSuite): void {
  describe(s.title, () => {
    const brokers = {} as Brokers;
    const procs: GatewayProcess[] = [];
    const clients: RawClient[] = [];
    const tag = `mx${process.pid}`;

    const spawn = async (node: string) => {
      const p = await spawnGateway({
        PORT: '0', // a port from the kernel, read back from the start line
        NATS_URL: brokers.nats.url,
        REDIS_URL: brokers.redis.url,
        CONFAB_BUS: s.bus,
        CONFAB_HISTORY: s.history,
        CONFAB_NODE_ID: node,
        CONFAB_NATS_PREFIX: tag,
        CONFAB_STREAM_NAME: tag.toUpperCase(),
        CONFAB_REDIS_PREFIX: tag,
        CONFAB_REDIS_RECONNECT_MAX_MS: '200',
        CONFAB_DRAIN_READY_DELAY_MS: '0',
        CONFAB_DRAIN_WINDOW_MS: '200',
        CONFAB_RATE_BURST: '500',
        CONFAB_RATE_PER_SEC: '500',
      }, { timeoutMs: 30_000 });
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
      [brokers.nats, brokers.redis] = await Promise.all([startNats({ jetstream: true }), startRedis()]);
      [gwA, gwB] = await Promise.all([spawn(`${s.bus}A`), spawn(`${s.bus}B`)]);
    });
    after(async () => {
      for (const c of clients) c.close();
      for (const p of procs) await p.kill();
      await Promise.all([brokers.nats?.close(), brokers.redis?.close()]);
    });

    it(`starts ${s.bus} bus + ${s.history} history from CONFAB_BUS / CONFAB_HISTORY, ready`, async () => {
      for (const p of [gwA, gwB]) {
        assert.match(p.output(), s.startLine);
        assert.equal(await ready(p), 200);
      }
    });

    it('delivers across gateways in one order while both gateways publish at once (G1)', async () => {
      const members = [await connect(gwA, 'pa'), await connect(gwB, 'pb'), await connect(gwB, 'pc')];
      for (const { c } of members) await joinRoom(c, 'busy');
      const per = 30;
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
      assertChain(msgs, 'busy');
      for (let i = 0; i < members.length; i++) {
        const mine = msgs.filter((m) => m.id.startsWith(`n${i}k`));
        assert.deepEqual(mine.map((m) => Number(m.id.slice(m.id.indexOf('k') + 1))), Array.from({ length: per }, (_, k) => k), 'each sender keeps its own order');
        assert.ok(mine.every((m) => m.from.node === (i === 0 ? `${s.bus}A` : `${s.bus}B`)), 'node stamped by the server');
      }
    });

    it('kill -9 of a gateway: its readers resume on the other with exactly what they missed; a resend of what it acknowledged is stored once (G2, G3)', async () => {
      const writer = await connect(gwB, 'writer');
      await joinRoom(writer.c, 'hop');
      const readers = await Promise.all(Array.from({ length: 5 }, async (_, i) => {
        const r = await connect(gwA, `reader${i}`);
        const j = await joinRoom(r.c, 'hop');
        return { ...r, epoch: j.epoch };
      }));
      // a sender on the gateway that will die: its message is acknowledged there, the ack "lost" with the gateway
      const doomed = await connect(gwA, 'doomed');
      await joinRoom(doomed.c, 'hop');
      for (let i = 0; i < 5; i++) writer.c.send({ t: 'pub', id: `h${i}`, room: 'hop', text: `h${i}` });
      await writer.c.next('ack', (a) => a.id === 'h4');
      doomed.c.send({ t: 'pub', id: 'd0', room: 'hop', text: 'from the doomed gateway' });
      const firstAck = await doomed.c.next('ack', (a) => a.id === 'd0');
      await waitFor(() => readers.every((r) => r.c.msgs('hop').some((m) => m.id === 'd0')), { what: 'readers have the first six' });
      const seen = readers.map((r) => r.c.msgs('hop').at(-1)!.offset);

      await gwA.kill();
      await waitFor(() => readers.every((r) => r.c.closeCode !== undefined), { what: 'readers see the crash' });
      for (let i = 5; i < 12; i++) writer.c.send({ t: 'pub', id: `h${i}`, room: 'hop', text: `h${i}` });
      await writer.c.next('ack', (a) => a.id === 'h11');

      const resumed = await Promise.all(readers.map(async (r, i) => {
        const c = await RawClient.connect(wsOf(gwB.url), r.s.token);
        clients.push(c);
        const j = await joinRoom(c, 'hop', { epoch: r.epoch, offset: seen[i]! });
        return { c, j };
      }));
      const again = await RawClient.connect(wsOf(gwB.url), doomed.s.token);
      clients.push(again);
      await joinRoom(again, 'hop');
      again.send({ t: 'pub', id: 'd0', room: 'hop', text: 'from the doomed gateway' });
      const dup = await again.next('ack', (a) => a.id === 'd0');
      assert.equal(dup.dup, true, 'the resend is recognised');
      assert.equal(dup.offset, firstAck.offset, 'and answered with the original offset');

      writer.c.send({ t: 'pub', id: 'live', room: 'hop', text: 'live' });
      for (const { c, j } of resumed) {
        assert.equal(j.recovered, true);
        assert.equal(j.gap, undefined);
        assert.equal(j.reset, undefined);
        await c.next('msg', (m) => m.id === 'live');
        assert.deepEqual(c.msgs('hop').map((m) => m.id), [...Array.from({ length: 7 }, (_, k) => `h${k + 5}`), 'live'], 'exactly the missed messages, then live; the resend is not delivered again');
        assertChain(c.msgs('hop'), 'resumed');
        assert.equal(c.msgs('hop')[0]!.prev, seen[0], 'the replay starts right after the last message seen');
      }
      // the killed gateway comes back as a new process: it serves the same room
      gwA = await spawn(`${s.bus}A2`);
      const late = await connect(gwA, 'late');
      const j = await joinRoom(late.c, 'hop');
      assert.equal(j.epoch, readers[0]!.epoch);
      await waitFor(() => late.c.msgs('hop').some((m) => m.id === 'live'), { what: 'recent messages on the new gateway' });
      assertChain(late.c.msgs('hop'), 'recent on join');
    });

    it(`the history's broker (${s.history}) killed and restarted while the bus stays up: not ready, typed errors, back by itself (G10)`, async () => {
      const quiet = [await connect(gwA, 'qa'), await connect(gwB, 'qb')];
      const talk = [await connect(gwA, 'ta'), await connect(gwB, 'tb')];
      let epoch = '';
      for (const { c } of quiet) epoch = (await joinRoom(c, 'quiet')).epoch;
      for (const { c } of talk) await joinRoom(c, 'talk');
      quiet[0]!.c.send({ t: 'pub', id: 'q0', room: 'quiet', text: 'before' });
      await quiet[0]!.c.next('ack', (a) => a.id === 'q0');
      await waitFor(() => quiet.every(({ c }) => c.msgs('quiet').length === 1), { what: 'quiet members have the one message' });
      const seen = quiet[0]!.c.msgs('quiet')[0]!.offset;

      await s.storeDown(brokers);
      await waitFor(async () => (await ready(gwA)) === 503 && (await ready(gwB)) === 503, { what: 'readyz 503 on both gateways', timeoutMs: 15_000 });
      for (const { c } of [...quiet, ...talk]) await c.next('status', (f) => f.bus === 'down', 15_000);
      talk[1]!.c.send({ t: 'pub', id: 'x0', room: 'talk', text: 'while down' });
      const err = await talk[1]!.c.next('error', (e) => e.id === 'x0');
      assert.ok(err.code === 'bus_unavailable' || err.code === 'store_failed', `typed error, got ${err.code}`);
      for (const p of [gwA, gwB]) assert.equal((await fetch(`${p.url}/healthz`)).status, 200, 'the gateway stays alive');

      await s.storeUp(brokers);
      await waitFor(async () => (await ready(gwA)) === 200 && (await ready(gwB)) === 200, { what: 'ready again', timeoutMs: 30_000 });
      for (const { c } of [...quiet, ...talk]) await c.next('status', (f) => f.bus === 'up', 15_000);
      // the resend after the outage is stored once and reaches both gateways' members in one chain
      await waitFor(async () => {
        talk[1]!.c.send({ t: 'pub', id: 'x0', room: 'talk', text: 'while down' });
        const f = await talk[1]!.c.next('ack', (a) => a.id === 'x0', 2_000).catch(() => undefined);
        return f !== undefined;
      }, { what: 'the resend acknowledged', timeoutMs: 20_000 });
      talk[0]!.c.send({ t: 'pub', id: 'x1', room: 'talk', text: 'after' });
      await waitFor(() => talk.every(({ c }) => c.msgs('talk').some((m) => m.id === 'x1')), { what: 'both talkers have the message after the outage' });
      const orders = talk.map(({ c }) => c.msgs('talk').map((m) => `${m.epoch}:${m.offset}:${m.id}`));
      assert.deepEqual(orders[1], orders[0]);
      assert.deepEqual(talk[0]!.c.msgs('talk').map((m) => m.id), ['x0', 'x1']);
      await s.afterStoreBack(quiet.map((q) => q.c), 'quiet', epoch, seen);
    });
  });
}
