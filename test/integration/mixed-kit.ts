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
import type { GatewayProcess } from '../../src/testkit/gateway.js';
import { startNats, type NatsServer } from '../../src/procs/nats.js';
import { joinRoom, type RawClient } from '../../src/testkit/raw-client.js';
import { startRedis, type RedisServer } from '../../src/procs/redis.js';
import { waitFor } from '../../src/procs/wait.js';
import { assertChain, killAndResume, publishConcurrently, twoGateways, type GatewayFixture } from '../../src/testkit/two-gateways.js';

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

export function mixedGatewaySuite(s: MixedSuite): void {
  describe(s.title, () => {
    const brokers = {} as Brokers;
    const tag = `mx${process.pid}`;
    let fx: GatewayFixture<GatewayProcess>;
    const env = (node: string) => ({
      NATS_URL: brokers.nats.url,
      REDIS_URL: brokers.redis.url,
      CONFAB_BUS: s.bus,
      CONFAB_HISTORY: s.history,
      CONFAB_NODE_ID: node,
      CONFAB_NATS_PREFIX: tag,
      CONFAB_STREAM_NAME: tag.toUpperCase(),
      CONFAB_REDIS_PREFIX: tag,
      CONFAB_REDIS_RECONNECT_MAX_MS: '200',
      CONFAB_RATE_BURST: '500',
      CONFAB_RATE_PER_SEC: '500',
    });
    const connect = (p: GatewayProcess, handle: string, token?: string) => fx.connect(p, handle, token);
    const ready = (p: GatewayProcess) => fx.ready(p);

    let gwA: GatewayProcess;
    let gwB: GatewayProcess;
    before(async () => {
      [brokers.nats, brokers.redis] = await Promise.all([startNats({ jetstream: true }), startRedis()]);
      fx = await twoGateways(env, [`${s.bus}A`, `${s.bus}B`]);
      [gwA, gwB] = fx.gws as [GatewayProcess, GatewayProcess];
    });
    after(async () => {
      await fx?.close();
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
      const msgs = await publishConcurrently(members, 'busy', 30);
      for (let i = 0; i < members.length; i++) {
        const mine = msgs.filter((m) => m.id.startsWith(`n${i}k`));
        assert.ok(mine.every((m) => m.from.node === (i === 0 ? `${s.bus}A` : `${s.bus}B`)), 'node stamped by the server');
      }
    });

    it('kill -9 of a gateway: its readers resume on the other with exactly what they missed; a resend of what it acknowledged is stored once (G2, G3)', async () => {
      await killAndResume(fx, gwA, gwB, { readers: 5 });
      const readerEpoch = (await joinRoom((await connect(gwB, 'epoch-probe')).c, 'hop')).epoch;
      // the killed gateway comes back as a new process: it serves the same room
      gwA = await fx.add(`${s.bus}A2`);
      const late = await connect(gwA, 'late');
      const j = await joinRoom(late.c, 'hop');
      assert.equal(j.epoch, readerEpoch);
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
