/**
 * The SDK never strands work on a healthy connection (G13, issue 9 item 2): real gateway processes
 * at the DEFAULT limits (20 frames/s, burst 40, 50 rooms), once on the embedded default (in-process
 * bus, LMDB history) and once on NATS (JetStream history):
 *  (a) a burst of 500 send() calls: every one acked once (no dup), offsets increasing in send order,
 *      stored once each (a second client receives each once, in order), no frame rate limited, no
 *      reconnect. The wall time is bounded by the rate (printed);
 *  (b) 50 rooms joined at once: every join() resolves (a 51st is refused locally); the gateway is
 *      killed with SIGKILL and started again on its port: all 50 rooms come back, joined on the
 *      server (a message to each is acknowledged; the room list counts us in each), paced, with
 *      nothing rate limited.
 * The pacing bucket and the outbox state machine on their own: test/unit/client-pacing.test.ts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { ConfabClient, MemoryStorage, type ChatMessage, type ClientError, type StateChange } from '../../src/client/index.js';
import { createSession, spawnGateway, type GatewayProcess } from '../../src/testkit/gateway.js';
import { startNats, type NatsServer } from '../../src/procs/nats.js';
import { waitFor } from '../../src/procs/wait.js';

const BURST = 500;
const ROOMS = 50;

interface Watched {
  c: ConfabClient;
  errors: ClientError[];
  states: StateChange[];
  msgs: ChatMessage[];
  /** Rooms answered with `joined` on the current connection. */
  joined: Set<string>;
}

const clients: ConfabClient[] = [];

/** `p`, or a rejection naming `what` after `ms` (a stranded promise fails the test instead of hanging it). */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not settled after ${ms} ms`)), ms)));
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

function watch(url: string, token: string): Watched {
  const c = new ConfabClient({ url, token, WebSocket, storage: new MemoryStorage() });
  clients.push(c);
  const w: Watched = { c, errors: [], states: [], msgs: [], joined: new Set() };
  c.on('error', (e) => w.errors.push(e));
  c.on('state', (s) => {
    w.states.push(s);
    if (s.state === 'connected') w.joined.clear();
  });
  c.on('message', (m) => w.msgs.push(m));
  c.on('joined', (j) => w.joined.add(j.room));
  return w;
}

/** One deployment: how to start its gateway process (again, on the same port after a kill). */
interface Deployment {
  env: Record<string, string>;
  gw: GatewayProcess;
}

function suite(name: string, setup: () => Promise<{ env: Record<string, string>; teardown: () => Promise<void> }>): void {
  describe(`${name}, default limits`, () => {
    const d = {} as Deployment;
    let teardown: (() => Promise<void>) | undefined;
    before(async () => {
      const s = await setup();
      teardown = s.teardown;
      d.env = s.env;
      d.gw = await spawnGateway(d.env);
    });
    after(async () => {
      for (const c of clients.splice(0)) c.close();
      await d.gw?.kill();
      await teardown?.();
    });

    test(`(a) a burst of ${BURST} send() calls: all acked once, in send order, nothing rate limited, no reconnect`, async (t) => {
      const sender = watch(d.gw.url, (await createSession(d.gw.url, `burst-${name}`)).token);
      const reader = watch(d.gw.url, (await createSession(d.gw.url, `reader-${name}`)).token);
      sender.c.connect();
      reader.c.connect();
      await within(Promise.all([sender.c.join('burst'), reader.c.join('burst')]), 15_000, 'joins');
      assert.equal(sender.c.welcome?.limits.ratePerSec, 20, 'default rate');
      assert.equal(sender.c.welcome?.limits.rateBurst, 40, 'default burst');
      const t0 = performance.now();
      // 500 at 19/s is ~25 s; twice that is a stranded send, not a slow one
      const acks = await within(Promise.all(Array.from({ length: BURST }, (_, i) => sender.c.send('burst', `b${i}`))), 60_000, `${BURST} acks`);
      const ms = performance.now() - t0;
      t.diagnostic(`${name}: ${BURST} sends acked in ${(ms / 1000).toFixed(1)} s (${((BURST / ms) * 1000).toFixed(1)}/s)`);
      console.log(`[client-limits] ${name}: ${BURST} sends acked in ${(ms / 1000).toFixed(1)} s (${((BURST / ms) * 1000).toFixed(1)}/s)`);

      assert.deepEqual(sender.errors.map((e) => `${e.code} ${e.id ?? e.room ?? ''}`), [], 'no error: nothing rate limited, refused or fenced');
      assert.equal(acks.filter((a) => a.dup).length, 0, 'no ack is a dup (nothing sent again that was stored)');
      assert.equal(new Set(acks.map((a) => a.id)).size, BURST);
      for (let i = 1; i < BURST; i++) assert.ok(acks[i]!.offset > acks[i - 1]!.offset, `offsets in send order at ${i}: ${acks[i - 1]!.offset} then ${acks[i]!.offset}`);
      assert.equal(sender.states.filter((s) => s.state === 'reconnecting').length, 0, 'no reconnect');
      assert.equal(sender.c.pending.length, 0);
      // stored once each, in send order: what another member receives
      await waitFor(() => reader.msgs.length >= BURST, { what: `${BURST} messages at the reader`, timeoutMs: 30_000 });
      assert.deepEqual(reader.msgs.map((m) => m.text), acks.map((_, i) => `b${i}`));
      assert.deepEqual(reader.msgs.map((m) => m.offset), acks.map((a) => a.offset));
      // bounded by the rate: the client's bucket (19/s after a burst of 20) paces 500 pubs over ≥ 24 s
      assert.ok(ms >= 20_000, `paced (${ms.toFixed(0)} ms)`);
    });

    test(`(b) ${ROOMS} rooms joined at once all resolve; after kill -9 and a restart all ${ROOMS} are joined again`, async (t) => {
      const w = watch(d.gw.url, (await createSession(d.gw.url, `rooms-${name}`)).token);
      w.c.connect();
      const rooms = Array.from({ length: ROOMS }, (_, i) => `room-${i}`);
      const joined = await within(Promise.all(rooms.map((r) => w.c.join(r))), 20_000, `${ROOMS} joins`);
      assert.deepEqual(joined.map((j) => j.room), rooms, 'every join() resolved');
      await assert.rejects(w.c.join('one-too-many'), (e: ClientError) => e.code === 'too_many_rooms' && e.retry === 'never');
      assert.deepEqual(w.c.rooms, rooms);

      const port = new URL(d.gw.url).port;
      await d.gw.kill(); // SIGKILL, by PID
      await waitFor(() => w.c.state === 'reconnecting', { what: 'the client notices the crash', timeoutMs: 30_000 });
      const down = performance.now();
      d.gw = await spawnGateway({ ...d.env, PORT: port });
      const restarted = performance.now();
      await waitFor(() => w.c.state === 'connected' && rooms.every((r) => w.joined.has(r)) && w.c.ready, { what: `all ${ROOMS} rooms joined again`, timeoutMs: 30_000 });
      const back = performance.now();
      t.diagnostic(`${name}: gateway down ${((restarted - down) / 1000).toFixed(1)} s; ${ROOMS} rooms joined again ${((back - restarted) / 1000).toFixed(1)} s after the restart`);
      console.log(`[client-limits] ${name}: ${ROOMS} rooms joined again ${((back - restarted) / 1000).toFixed(1)} s after the restart`);
      assert.deepEqual(w.c.rooms, rooms, 'every remembered room kept');

      // joined on the server, not just in the client: a message to each room is acknowledged
      // (a room the server did not have would answer not_joined), and the room list counts us
      const acks = await within(Promise.all(rooms.map((r) => w.c.send(r, `back in ${r}`))), 20_000, `a message to each of ${ROOMS} rooms`);
      assert.deepEqual(acks.map((a) => a.room), rooms);
      const list = await within(w.c.listRooms(), 10_000, 'room list');
      for (const r of rooms) assert.ok((list.find((x) => x.name === r)?.members ?? 0) >= 1, `${r} counts a member`);
      const unexpected = w.errors.filter((e) => e.code !== 'connect_failed' && !(e.code === 'too_many_rooms' && e.room === 'one-too-many'));
      assert.deepEqual(unexpected.map((e) => `${e.code} ${e.room ?? ''}`), [], 'nothing rate limited or refused');
    });
  });
}

suite('embedded', () => {
  const dir = mkdtempSync(join(tmpdir(), 'confab-limits-'));
  return Promise.resolve({
    env: { CONFAB_BUS: 'memory', CONFAB_DATA_DIR: dir, CONFAB_NODE_ID: 'limits-emb' },
    teardown: () => Promise.resolve(rmSync(dir, { recursive: true, force: true })),
  });
});

suite('nats', async () => {
  const nats: NatsServer & { close(): Promise<void> } = await startNats();
  const dir = mkdtempSync(join(tmpdir(), 'confab-limits-'));
  return {
    env: { CONFAB_BUS: 'nats', NATS_URL: nats.url, CONFAB_DATA_DIR: dir, CONFAB_NODE_ID: 'limits-nats' },
    teardown: async () => {
      await nats.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
