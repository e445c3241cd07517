/**
 * The multi-gateway fixture the gateway suites share (Redis, NATS, PostgreSQL, Pub/Sub, the mixed
 * bus/history pairs): two gateways of one deployment, either `confab start` child processes (for
 * kill -9) or in this process over the adapters a test makes, each configured by `env(node, i)`;
 * sessions and raw clients made against any of them; everything closed by `close()`. And the
 * checks those suites repeat: an unbroken chain, and one order for publishers on every gateway.
 */
import assert from 'node:assert/strict';
import { loadConfig } from '../config/config.js';
import type { Bus } from '../bus/types.js';
import type { History } from '../history/types.js';
import type { GatewayProcess } from '../procs/gateway.js';
import { waitFor } from '../procs/wait.js';
import { createSession, spawnGateway, startTestGateway, type TestGateway } from './gateway.js';
import { joinRoom, RawClient } from './raw-client.js';

export type GatewayEnv = (node: string, index: number) => Record<string, string>;
/** In-process gateways: the bus and history of one gateway, made from its env and config. */
export type MakeAdapters = (env: Record<string, string>, config: ReturnType<typeof loadConfig>) => Promise<{ bus: Bus; history: History }>;

export interface GatewayFixture<G extends { url: string }> {
  /** Every gateway started, in order (the first two by `twoGateways`). */
  readonly gws: G[];
  /** Start one more gateway on node `node` (a third, or a replacement for a killed one). */
  add(node: string): Promise<G>;
  /** A session for `handle` (renewing `token` when given) and a raw client on gateway `g`, closed by close(). */
  connect(g: { url: string }, handle?: string, token?: string): Promise<{ c: RawClient; s: { token: string; user: { id: string; handle: string } } }>;
  /** A raw client on `g` with an existing session token, closed by close(). */
  reconnect(g: { url: string }, token: string): Promise<RawClient>;
  /** GET /readyz status of `g`. */
  ready(g: { url: string }): Promise<number>;
  close(): Promise<void>;
}

export const wsOf = (url: string): string => url.replace(/^http/, 'ws') + '/ws';

/**
 * Two gateways on nodes `nodes` (started together), configured by `env`: `confab start` processes
 * (GatewayProcess: kill -9, output) unless `adapters` is given, then in this process (TestGateway).
 */
export function twoGateways(env: GatewayEnv, nodes: [string, string]): Promise<GatewayFixture<GatewayProcess>>;
export function twoGateways(env: GatewayEnv, nodes: [string, string], adapters: MakeAdapters): Promise<GatewayFixture<TestGateway>>;
export async function twoGateways(env: GatewayEnv, nodes: [string, string], adapters?: MakeAdapters): Promise<GatewayFixture<GatewayProcess> | GatewayFixture<TestGateway>> {
  const clients: RawClient[] = [];
  let handles = 0;
  const common = {
    async connect(g: { url: string }, handle = `m${handles++}`, token?: string) {
      const s = await createSession(g.url, handle, token);
      const c = await RawClient.connect(wsOf(g.url), s.token);
      clients.push(c);
      return { c, s };
    },
    async reconnect(g: { url: string }, token: string) {
      const c = await RawClient.connect(wsOf(g.url), token);
      clients.push(c);
      return c;
    },
    ready: async (g: { url: string }) => (await fetch(`${g.url}/readyz`)).status,
  };
  if (!adapters) {
    const gws: GatewayProcess[] = [];
    let started = 0;
    const add = async (node: string) => {
      const i = started++; // gws[i] is node i, whichever process listens first
      const p = await spawnGateway({ PORT: '0', CONFAB_DRAIN_READY_DELAY_MS: '0', CONFAB_DRAIN_WINDOW_MS: '200', ...env(node, i) }, { timeoutMs: 30_000 });
      gws[i] = p;
      return p;
    };
    const fx: GatewayFixture<GatewayProcess> = {
      gws,
      add,
      ...common,
      async close() {
        for (const c of clients) c.close();
        for (const p of Object.values(gws)) await p.kill(); // skips the slot of a start that failed
      },
    };
    await Promise.all(nodes.map((n) => add(n)));
    return fx;
  }
  const gws: TestGateway[] = [];
  const add = async (node: string) => {
    const e = env(node, gws.length);
    const { bus, history } = await adapters(e, loadConfig(e));
    const g = await startTestGateway({ bus, history, env: e });
    gws.push(g);
    return g;
  };
  const fx: GatewayFixture<TestGateway> = {
    gws,
    add,
    ...common,
    async close() {
      for (const c of clients) c.close();
      for (const g of gws) await g.close().catch(() => undefined);
    },
  };
  for (const n of nodes) await add(n); // one after another: the first creates the shared streams/schema
  return fx;
}

type Chained = { offset: number; prev: number; id: string };

/** Each message links to the one before it (no hole) and no id is delivered twice. */
export function assertChain(msgs: Chained[], what = 'messages'): void {
  for (let i = 1; i < msgs.length; i++) assert.equal(msgs[i]!.prev, msgs[i - 1]!.offset, `${what}: no hole before offset ${msgs[i]!.offset}`);
  assert.equal(new Set(msgs.map((m) => m.id)).size, msgs.length, `${what}: no duplicate`);
}

/**
 * G1 across gateways: every member (each a raw client, joined here to `room`) publishes `per`
 * messages at once (ids `n<i>k<k>`); every member then has every message in the same order, an
 * unbroken chain, and each sender's messages in the order it sent them. Returns that order.
 */
export async function publishConcurrently(members: { c: RawClient }[], room: string, per: number): Promise<ReturnType<RawClient['msgs']>> {
  for (const { c } of members) await joinRoom(c, room);
  members.forEach(({ c }, i) => {
    for (let k = 0; k < per; k++) c.send({ t: 'pub', id: `n${i}k${k}`, room, text: `${i}:${k}` });
  });
  const total = per * members.length;
  await waitFor(() => members.every(({ c }) => c.msgs(room).length >= total), { what: 'every member has every message', timeoutMs: 20_000 });
  const orders = members.map(({ c }) => c.msgs(room).map((m) => `${m.offset}:${m.id}`));
  for (let i = 1; i < orders.length; i++) assert.deepEqual(orders[i], orders[0], `member ${i} sees the order member 0 sees`);
  const msgs = members[0]!.c.msgs(room);
  assert.equal(msgs.length, total);
  assertChain(msgs, room);
  for (let i = 0; i < members.length; i++) {
    const mine = msgs.filter((m) => m.id.startsWith(`n${i}k`)).map((m) => Number(m.id.slice(m.id.indexOf('k') + 1)));
    assert.deepEqual(mine, Array.from({ length: per }, (_, k) => k), `sender ${i} keeps its own order`);
  }
  return msgs;
}

/** What `steadyWriters` saw: acknowledged ids, typed refusals by code, and how to stop the writers. */
export interface SteadyWriters {
  readonly acked: Set<string>;
  readonly errors: Map<string, number>;
  /** Refusals so far, of any code. */
  refused(): number;
  /** Let every writer finish its message in flight and return. */
  stop(): Promise<void>;
}

/**
 * One SDK-like writer per member into `room` (already joined): one message in flight (ids
 * `<prefix><i>-<k>`), the same id resent after a typed error until acknowledged. Every publish
 * must be answered (an ack or an error within 10 s, never silence) until `forMs` ends or stop().
 */
export function steadyWriters(members: { c: RawClient }[], room: string, opts: { forMs: number; prefix?: string; resendAfterMs?: number }): SteadyWriters {
  const acked = new Set<string>();
  const errors = new Map<string, number>();
  const deadline = Date.now() + opts.forMs;
  let stopped = false;
  const run = members.map(async ({ c }, i) => {
    for (let k = 0; !stopped && Date.now() < deadline; k++) {
      const id = `${opts.prefix ?? 'o'}${i}-${k}`;
      while (Date.now() < deadline) {
        const from = c.frames.length;
        c.send({ t: 'pub', id, room, text: id });
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
        await new Promise((res) => setTimeout(res, opts.resendAfterMs ?? 50)); // client backoff before the resend
      }
    }
  });
  return {
    acked,
    errors,
    refused: () => [...errors.values()].reduce((a, b) => a + b, 0),
    async stop() {
      stopped = true;
      await Promise.all(run);
    },
  };
}

/**
 * G2 + G3 across a crash: `readers` members and a `doomed` sender on `victim`, a writer on
 * `survivor`, all in `room`; the doomed sender's message is acknowledged, then `victim` is killed
 * (-9) and the writer sends 7 more. Every reader resumes on `survivor` with exactly the 7 it
 * missed, then live, in an unbroken chain; the doomed sender's resend through `survivor` is
 * recognised (dup, same offset) and not delivered again.
 */
export async function killAndResume(fx: GatewayFixture<GatewayProcess>, victim: GatewayProcess, survivor: GatewayProcess, opts: { room?: string; readers?: number } = {}): Promise<void> {
  const room = opts.room ?? 'hop';
  const writer = await fx.connect(survivor, 'writer');
  await joinRoom(writer.c, room);
  const readers = await Promise.all(Array.from({ length: opts.readers ?? 4 }, async (_, i) => {
    const r = await fx.connect(victim, `reader${i}`);
    const j = await joinRoom(r.c, room);
    return { ...r, epoch: j.epoch };
  }));
  // a sender on the gateway that will die: its message is acknowledged there, the ack "lost" with the gateway
  const doomed = await fx.connect(victim, 'doomed');
  await joinRoom(doomed.c, room);
  for (let i = 0; i < 5; i++) writer.c.send({ t: 'pub', id: `h${i}`, room, text: `h${i}` });
  await writer.c.next('ack', (a) => a.id === 'h4');
  doomed.c.send({ t: 'pub', id: 'd0', room, text: 'from the doomed gateway' });
  const firstAck = await doomed.c.next('ack', (a) => a.id === 'd0');
  await waitFor(() => readers.every((r) => r.c.msgs(room).some((m) => m.id === 'd0')), { what: 'readers have the first six' });
  const seen = readers.map((r) => r.c.msgs(room).at(-1)!.offset);

  await victim.kill();
  await waitFor(() => readers.every((r) => r.c.closeCode !== undefined), { what: 'readers see the crash' });
  for (let i = 5; i < 12; i++) writer.c.send({ t: 'pub', id: `h${i}`, room, text: `h${i}` });
  await writer.c.next('ack', (a) => a.id === 'h11');

  const resumed = await Promise.all(readers.map(async (r, i) => {
    const c = await fx.reconnect(survivor, r.s.token);
    const j = await joinRoom(c, room, { epoch: r.epoch, offset: seen[i]! });
    return { c, j };
  }));
  const again = await fx.reconnect(survivor, doomed.s.token);
  await joinRoom(again, room);
  again.send({ t: 'pub', id: 'd0', room, text: 'from the doomed gateway' });
  const dup = await again.next('ack', (a) => a.id === 'd0');
  assert.equal(dup.dup, true, 'the resend is recognised');
  assert.equal(dup.offset, firstAck.offset, 'and answered with the original offset');

  writer.c.send({ t: 'pub', id: 'live', room, text: 'live' });
  for (const { c, j } of resumed) {
    assert.equal(j.recovered, true);
    assert.equal(j.gap, undefined);
    assert.equal(j.reset, undefined);
    await c.next('msg', (m) => m.id === 'live');
    assert.deepEqual(c.msgs(room).map((m) => m.id), [...Array.from({ length: 7 }, (_, k) => `h${k + 5}`), 'live'], 'exactly the missed messages, then live; the resend is not delivered again');
    assertChain(c.msgs(room), 'resumed');
    assert.equal(c.msgs(room)[0]!.prev, seen[0], 'the replay starts right after the last message seen');
  }
}
