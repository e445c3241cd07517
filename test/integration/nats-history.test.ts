/**
 * JetStream history on real servers, beyond the contract:
 *  - writers on three different cluster nodes appending to one room at once form one chain;
 *  - R4: the stream leader killed (SIGKILL, then SIGTERM) and restarted under load: every
 *    acknowledged message is stored exactly once, at its acknowledged offset, chain intact;
 *  - R5: NATS fully down: appends are rejected with bus_unavailable, and work again after;
 *  - G8: a single R1 file-storage server killed with SIGKILL under load keeps every acknowledged message;
 *  - replay consumers are per-instance (named after the node) and removed after each read.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { loadConfig } from '../../src/config/config.js';
import { ConfabError } from '../../src/protocol/codes.js';
import type { ChatMessage } from '../../src/protocol/frames.js';
import { createNatsAdapters } from '../../src/nats/index.js';
import { startNats, startNatsCluster, waitHealthy, type NatsCluster } from '../../src/procs/nats.js';
import { waitFor } from '../../src/procs/wait.js';

const log = pino({ level: 'silent' });

async function node(url: string, name: string, stream: string, replicas: number) {
  const env = { NATS_URL: url, CONFAB_SECRET: 'x'.repeat(20), CONFAB_NODE_ID: name, CONFAB_STREAM_NAME: stream, CONFAB_NATS_PREFIX: stream.toLowerCase(), CONFAB_STREAM_REPLICAS: String(replicas), NATS_REQUEST_TIMEOUT_MS: '2000' };
  return createNatsAdapters(loadConfig(env), log, { env });
}

const from = (user: string) => ({ user, handle: user, node: 'n', region: 'local' });

function assertChain(msgs: ChatMessage[]): void {
  assert.equal(msgs[0]?.prev, 0);
  for (let i = 1; i < msgs.length; i++) {
    assert.ok(msgs[i]!.offset > msgs[i - 1]!.offset);
    assert.equal(msgs[i]!.prev, msgs[i - 1]!.offset, `prev of message ${i}`);
  }
}

describe('JetStream history on a 3-node cluster (R3)', () => {
  let cluster: NatsCluster;
  let nodes: Awaited<ReturnType<typeof node>>[] = [];
  before(async () => {
    cluster = await startNatsCluster(3);
    nodes = [];
    for (let i = 0; i < 3; i++) nodes.push(await node(cluster.servers[i]!.url, `gw${i}`, 'HIST', 3));
  });
  after(async () => {
    for (const n of nodes) {
      await n.bus.close();
      await n.history.close();
    }
    await cluster?.stop();
  });

  it('concurrent writers on three nodes produce one chain that every node reads identically', async () => {
    const room = 'concurrent';
    const acks = await Promise.all(nodes.flatMap((n, i) => Array.from({ length: 40 }, (_, j) => n.history.append({ room, id: `n${i}m${j}`, kind: 'msg', text: `${i}/${j}`, from: from(`u${i}`), ts: Date.now() }))));
    assert.equal(new Set(acks.map((a) => a.message.offset)).size, 120, 'every append got its own offset');
    const views = await Promise.all(nodes.map((n) => n.history.read(room, 0, 1000)));
    assert.equal(views[0]!.messages.length, 120);
    assertChain(views[0]!.messages);
    for (const v of views) assert.deepEqual(v.messages.map((m) => m.offset), views[0]!.messages.map((m) => m.offset));
    for (const a of acks) assert.equal(views[0]!.messages.find((m) => m.offset === a.message.offset)?.id, a.message.id);
  });

  for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
    it(`R4: the stream leader stopped with ${signal} and restarted under load loses no acknowledged message`, async () => {
      const room = `bounce-${signal}`;
      const nc = await connect({ servers: cluster.urls.split(',') });
      const jsm = await jetstreamManager(nc);
      const leaderName = (await jsm.streams.info('HIST')).cluster?.leader;
      await nc.close();
      const victim = cluster.servers.find((s) => s.name === leaderName)!;
      assert.ok(victim, `leader ${leaderName} found`);

      const acked = new Map<string, number>();
      let errors = 0;
      let stop = false;
      const deadline = Date.now() + 45_000;
      // three writers (one per node) behave like the SDK: retry the same id until acknowledged
      const writers = nodes.map(async (n, i) => {
        for (let j = 0; !stop && Date.now() < deadline; j++) {
          const id = `w${i}-${j}`;
          for (;;) {
            if (Date.now() > deadline) return;
            try {
              const r = await n.history.append({ room, id, kind: 'msg', text: id, from: from(`u${i}`), ts: Date.now() });
              acked.set(id, r.message.offset);
              break;
            } catch (e) {
              assert.ok(e instanceof ConfabError, `typed error, got ${String(e)}`);
              errors++;
              await waitFor(() => n.bus.status === 'up', { timeoutMs: 20_000, what: 'bus up' });
            }
          }
        }
      });
      await waitFor(() => acked.size >= 30, { timeoutMs: 15_000, what: 'load running' });
      await victim.stop(signal);
      const atKill = acked.size;
      await waitFor(() => acked.size >= atKill + 30, { timeoutMs: 30_000, what: 'progress with a node down' });
      await victim.start();
      const atRestart = acked.size;
      await waitFor(() => acked.size >= atRestart + 30, { timeoutMs: 30_000, what: 'progress after restart' });
      stop = true;
      await Promise.all(writers);
      await waitHealthy(victim);

      const stored = (await nodes[0]!.history.read(room, 0, 100_000)).messages;
      assertChain(stored);
      const byId = new Map(stored.map((m) => [m.id, m.offset]));
      assert.equal(byId.size, stored.length, 'no id stored twice');
      for (const [id, offset] of acked) assert.equal(byId.get(id), offset, `acknowledged ${id} stored at its offset`);
      // errors are allowed (typed, then retried); silent loss is not
      assert.ok(acked.size >= 90, `made progress (${acked.size} acked, ${errors} typed errors retried)`);
    });
  }

  it('replay consumers are named after the node and removed after the read', async () => {
    const room = 'replay-resources';
    for (let i = 0; i < 100; i++) await nodes[1]!.history.append({ room, id: `r${i}`, kind: 'msg', text: 'x', from: from('u'), ts: Date.now() });
    const nc = await connect({ servers: cluster.urls.split(',') });
    const jsm = await jetstreamManager(nc);
    // consumers left by the earlier tests (a read cut by their leader kills): they carry an inactive
    // threshold and vanish by themselves; only the ones this test's reads create are checked by name
    const earlier = new Set<string>();
    for await (const c of jsm.consumers.list('HIST')) earlier.add(c.name);
    const seen = new Set<string>();
    let reading = true;
    const watcher = (async () => {
      while (reading) for await (const c of jsm.consumers.list('HIST')) if (!earlier.has(c.name)) seen.add(`${c.name}|${c.config.inactive_threshold}`);
    })();
    for (let i = 0; i < 10; i++) assert.equal((await nodes[1]!.history.read(room, 0, 100)).messages.length, 100);
    reading = false;
    await watcher;
    for (const s of seen) {
      assert.match(s, /^confab_gw1_/, 'consumer named after the node');
      assert.ok(Number(s.split('|')[1]) > 0, 'consumer has an inactive threshold');
    }
    await waitFor(async () => {
      let left = 0;
      for await (const _c of jsm.consumers.list('HIST')) left++;
      return left === 0;
    }, { timeoutMs: 20_000, what: 'replay consumers removed (earlier leftovers within their 10 s inactive threshold)' });
    await nc.close();
  });
});

describe('JetStream history when NATS is fully down (R5)', () => {
  it('rejects appends with bus_unavailable while down and continues the chain after', async (t) => {
    const s = await startNats();
    t.after(() => s.close());
    const n = await node(s.url, 'r5', 'R5', 1);
    t.after(async () => {
      await n.bus.close();
      await n.history.close();
    });
    const room = 'outage';
    const first = await n.history.append({ room, id: 'before', kind: 'msg', text: 'before', from: from('u'), ts: Date.now() });
    await s.stop('SIGKILL');
    await waitFor(() => n.bus.status === 'down', { what: 'down' });
    await assert.rejects(n.history.append({ room, id: 'during', kind: 'msg', text: 'during', from: from('u'), ts: Date.now() }), (e: unknown) => e instanceof ConfabError && e.code === 'bus_unavailable');
    await assert.rejects(n.history.read(room, 0, 10), (e: unknown) => e instanceof ConfabError && e.code === 'bus_unavailable');
    await s.start();
    await waitFor(() => n.bus.status === 'up', { timeoutMs: 20_000, what: 'up again' });
    const next = await n.history.append({ room, id: 'during', kind: 'msg', text: 'during', from: from('u'), ts: Date.now() });
    assert.equal(next.duplicate, false);
    assert.equal(next.message.prev, first.message.offset);
    assert.deepEqual((await n.history.read(room, 0, 10)).messages.map((m) => m.id), ['before', 'during']);
  });
});

describe('JetStream history, one server, file storage, R1 (G8)', () => {
  it('kill -9 of nats-server under load keeps every acknowledged message', async (t) => {
    const s = await startNats();
    t.after(() => s.close());
    const n = await node(s.url, 'g8', 'G8', 1);
    t.after(async () => {
      await n.bus.close();
      await n.history.close();
    });
    for (let round = 0; round < 2; round++) {
      const acked = new Map<string, number>();
      let stop = false;
      const writers = Array.from({ length: 8 }, async (_, w) => {
        for (let k = 0; !stop; k++) {
          const id = `r${round}w${w}k${k}`;
          try {
            acked.set(id, (await n.history.append({ room: `g8room${w}`, id, kind: 'msg', text: id, from: from('u'), ts: Date.now() })).message.offset);
          } catch (e) {
            assert.ok(e instanceof ConfabError, `typed error, got ${String(e)}`);
            return;
          }
        }
      });
      await waitFor(() => acked.size >= 200, { what: 'load running' });
      await s.stop('SIGKILL');
      stop = true;
      await Promise.all(writers);
      await s.start();
      await waitFor(() => n.bus.status === 'up', { timeoutMs: 20_000, what: 'reconnected' });
      const stored = new Map<string, number>();
      for (let w = 0; w < 8; w++) for (const m of (await n.history.read(`g8room${w}`, 0, 100_000)).messages) stored.set(m.id, m.offset);
      for (const [id, offset] of acked) assert.equal(stored.get(id), offset, `acknowledged ${id} survived kill -9`);
    }
  });
});
