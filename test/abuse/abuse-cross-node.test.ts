/**
 * Per-user socket and room caps across nodes (issue 11, G11): two gateways over a real bus (NATS,
 * then Redis), one user spreading its sockets and rooms over both. Each node reports what a user
 * holds there once it holds at least an eighth of a cap (`ctl.usage`, every CONFAB_USAGE_GOSSIP_MS);
 * after one report the other node counts it: a socket or a new room past the cap is refused with a
 * typed error wherever the user asks, a room the user already holds on the other node is not a new
 * one, and what the user gives up on one node frees the cap on the other (docs/limits.md).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import type { Bus } from '../../src/bus/types.js';
import { loadConfig } from '../../src/config/config.js';
import { createNatsBus } from '../../src/nats/index.js';
import { createRedisBus } from '../../src/redis/index.js';
import { MemoryHistory } from '../../src/history/memory.js';
import { createSession, startTestGateway, TEST_SECRET, type TestGateway } from '../../src/testkit/gateway.js';
import { startNats } from '../../src/procs/nats.js';
import { RawClient } from '../../src/testkit/raw-client.js';
import { startRedis } from '../../src/procs/redis.js';
import { waitFor } from '../../src/procs/wait.js';

const log = pino({ level: 'silent' });
const MAX_SOCKETS = 4;
const MAX_ROOMS = 6;

type BusKind = 'nats' | 'redis';

async function startBroker(kind: BusKind): Promise<{ env: Record<string, string>; stop(): Promise<void> }> {
  if (kind === 'nats') {
    const s = await startNats({ jetstream: false });
    return { env: { NATS_URL: s.url }, stop: () => s.close() };
  }
  const r = await startRedis();
  return { env: { REDIS_URL: r.url, CONFAB_REDIS_PREFIX: `xn${process.pid}` }, stop: () => r.close() };
}

for (const kind of ['nats', 'redis'] as const) {
  describe(`per-user caps across two gateways over ${kind}`, () => {
    let broker: Awaited<ReturnType<typeof startBroker>>;
    const gws: TestGateway[] = [];
    const clients: RawClient[] = [];
    const history = new MemoryHistory();

    before(async () => {
      broker = await startBroker(kind);
      for (const node of ['xa', 'xb']) {
        const env = {
          ...broker.env,
          CONFAB_SECRET: TEST_SECRET,
          CONFAB_NODE_ID: `${kind}-${node}`,
          CONFAB_MAX_SOCKETS_PER_USER: String(MAX_SOCKETS),
          CONFAB_MAX_ROOMS_PER_USER: String(MAX_ROOMS),
          CONFAB_USAGE_GOSSIP_MS: '100',
        };
        const cfg = loadConfig(env);
        const bus: Bus = kind === 'nats' ? await createNatsBus(cfg, log, { env }) : await createRedisBus(cfg, log, { env });
        gws.push(await startTestGateway({ bus, history, env }));
      }
    });
    after(async () => {
      for (const c of clients) c.close();
      for (const g of gws) await g.close();
      await broker?.stop();
    });

    const open = async (g: TestGateway, token: string): Promise<RawClient | number> => {
      try {
        const c = await RawClient.connect(g.wsUrl, token);
        clients.push(c);
        return c;
      } catch (e) {
        return (e as { status?: number }).status ?? -1;
      }
    };
    const join = async (c: RawClient, room: string): Promise<string> => {
      c.send({ t: 'join', room });
      await waitFor(() => c.frames.some((x) => (x.t === 'joined' || x.t === 'error') && x.room === room), { what: `an answer to the join of ${room}` });
      return c.all('error').find((e) => e.room === room)?.code ?? 'joined';
    };

    it('sockets: the cap holds across both nodes once a report arrived; closing on one frees the other', async () => {
      const [a, b] = gws as [TestGateway, TestGateway];
      const s = await createSession(a.url, `sockets-${kind}`);
      const onA = [await open(a, s.token), await open(a, s.token)];
      assert.ok(onA.every((c) => c instanceof RawClient));
      await waitFor(() => b.gw.core.users.remoteSockets(s.user.id) === 2, { what: 'node b learns the 2 sockets on a' });
      const onB = [await open(b, s.token), await open(b, s.token), await open(b, s.token)];
      assert.deepEqual(onB.map((c) => (c instanceof RawClient ? 101 : c)), [101, 101, 429], 'the 5th socket across the nodes is refused');
      await waitFor(() => a.gw.core.users.remoteSockets(s.user.id) === 2, { what: 'node a learns the 2 sockets on b' });
      assert.equal(await open(a, s.token), 429, 'and on the first node too');
      // the user leaves node a: b forgets what a held after a's next report
      for (const c of onA) (c as RawClient).close();
      await waitFor(() => b.gw.core.users.remoteSockets(s.user.id) === 0, { what: 'node b learns the sockets on a closed' });
      const more = [await open(b, s.token), await open(b, s.token), await open(b, s.token)];
      assert.deepEqual(more.map((c) => (c instanceof RawClient ? 101 : c)), [101, 101, 429], 'b now holds the whole cap');
    });

    it('rooms: distinct rooms across both nodes are capped; a room held on the other node is not a new one', async () => {
      const [a, b] = gws as [TestGateway, TestGateway];
      const s = await createSession(a.url, `rooms-${kind}`);
      const ca = (await open(a, s.token)) as RawClient;
      const cb = (await open(b, s.token)) as RawClient;
      for (const r of ['r0', 'r1', 'r2', 'r3']) assert.equal(await join(ca, r), 'joined');
      await waitFor(() => b.gw.core.users.remoteRooms(s.user.id).size === 4, { what: 'node b learns the 4 rooms on a' });
      const onB = [];
      for (const r of ['r0', 'r4', 'r5', 'r6']) onB.push(await join(cb, r));
      assert.deepEqual(onB, ['joined', 'joined', 'joined', 'too_many_rooms'], 'r0 is held already; r6 would be the 7th distinct room');
      const e = cb.all('error').find((x) => x.room === 'r6')!;
      assert.match(e.message, /across its connections and nodes/);
      await waitFor(() => a.gw.core.users.remoteRooms(s.user.id).size === 2, { what: 'node a learns r4 and r5 on b (r0 it holds itself)' });
      assert.equal(await join(ca, 'r7'), 'too_many_rooms', 'node a counts b\'s rooms too');
      // giving up a room on a frees one on b
      ca.send({ t: 'leave', room: 'r1' });
      await waitFor(() => b.gw.core.users.remoteRooms(s.user.id).size === 2, { what: 'node b learns r1 was left (r0 it holds itself)' });
      assert.equal(await join(cb, 'r8'), 'joined');
    });
  });
}
