/**
 * R3: rolling restart of every gateway behind a real HAProxy while clients chat.
 * Three `confab start` processes on one nats-server, HAProxy (leastconn, GET
 * /readyz health checks, runtime API) in front, 40 clients connected through
 * HAProxy, 8 of them publishing. Every gateway is rolled with the same code as
 * `confab cluster roll`. Asserted: each node's /readyz failed before it closed
 * its first socket; every close was 4000 with a retry hint; every client
 * resumed with `since` and saw every acknowledged message exactly once in one
 * order (offsets chained by `prev`); nobody was shown leaving.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { spawnGatewayProc, startGatewayProc, tail, waitGatewayReady, waitGone, MARKERS, type GatewaySpawn, type Proc } from '../../src/procs/index.js';
import { rollGateways, type RollEvent, type RollTarget } from '../../src/cli/cluster-roll.js';
import type { ServerFrame } from '../../src/protocol/frames.js';
import { SUBPROTOCOL } from '../../src/protocol/frames.js';
import { createSession, TEST_SECRET } from '../../src/testkit/gateway.js';
import { startHaproxy, type HaproxyProcess } from '../../src/procs/haproxy.js';
import { startNats } from '../../src/procs/nats.js';
import { waitFor } from '../../src/procs/wait.js';

const ROOM = 'roll';
type Msg = Extract<ServerFrame, { t: 'msg' }>;

/** A client that follows the protocol's move rules: on 4000 it reconnects after retryMs and resumes with `since`. */
class MovingClient {
  readonly msgs: Msg[] = [];
  readonly closes: { code: number; reason: string; node: string; at: number }[] = [];
  readonly presence: Extract<ServerFrame, { t: 'presence' }>[] = [];
  readonly joins: Extract<ServerFrame, { t: 'joined' }>[] = [];
  readonly acked = new Set<string>();
  readonly errors: string[] = [];
  /** HTTP statuses of refused upgrades (through HAProxy a drain must never show as 503). */
  readonly refused: number[] = [];
  node = '';
  joined = false;
  private ws?: WebSocket;
  private last?: { epoch: string; offset: number };
  private stopped = false;
  private attempts = 0;
  private inFlight?: { id: string; text: string };
  private seq = 0;

  constructor(readonly name: string, private readonly wsUrl: string, private readonly token: string) {}

  connect(): void {
    if (this.stopped) return;
    if (++this.attempts > 200) {
      this.errors.push('too many reconnect attempts');
      return;
    }
    const ws = new WebSocket(`${this.wsUrl}?token=${encodeURIComponent(this.token)}`, [SUBPROTOCOL]);
    this.ws = ws;
    this.joined = false;
    ws.on('message', (d) => this.onFrame(JSON.parse(d.toString()) as ServerFrame));
    ws.on('unexpected-response', (_req, res) => {
      this.refused.push(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.on('error', () => {});
    ws.on('close', (code, reason) => {
      if (this.ws !== ws) return;
      this.joined = false;
      const text = reason.toString();
      if (code !== 1006 || this.node) this.closes.push({ code, reason: text, node: this.node, at: Date.now() });
      this.node = '';
      if (this.stopped) return;
      let retryMs = 100;
      if (code === 4000) {
        try {
          retryMs = Math.min(2000, Math.max(0, Number((JSON.parse(text) as { retryMs?: number }).retryMs ?? 100)));
        } catch {
          this.errors.push(`4000 without a JSON reason: ${text}`);
        }
      }
      setTimeout(() => this.connect(), retryMs);
    });
  }

  private onFrame(f: ServerFrame): void {
    switch (f.t) {
      case 'welcome':
        this.node = f.node;
        this.ws!.send(JSON.stringify(this.last ? { t: 'join', room: ROOM, since: this.last } : { t: 'join', room: ROOM }));
        break;
      case 'joined':
        this.joins.push(f);
        this.joined = true;
        if (this.inFlight) this.sendPub(); // resend the unacknowledged message (same id: stored once)
        break;
      case 'msg':
        if (f.room !== ROOM) break;
        this.msgs.push(f);
        this.last = { epoch: f.epoch, offset: f.offset };
        break;
      case 'ack':
        if (this.inFlight?.id === f.id) {
          this.acked.add(f.id);
          this.inFlight = undefined;
        }
        break;
      case 'presence':
        this.presence.push(f);
        break;
      case 'error':
        // a publish refused while the node drains is retried after the move
        if (f.code !== 'bus_unavailable') this.errors.push(`${f.code}: ${f.message}`);
        break;
      default:
        break;
    }
  }

  private sendPub(): void {
    if (this.inFlight && this.joined && this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ t: 'pub', id: this.inFlight.id, room: ROOM, text: this.inFlight.text }));
  }

  /** Publish the next message if none is in flight (one at a time, like the SDK's outbox). */
  tick(): void {
    if (this.inFlight || this.stopped) return;
    const id = `${this.name}-${this.seq++}`;
    this.inFlight = { id, text: `hello ${id}` };
    this.sendPub();
  }

  get idle(): boolean {
    return this.inFlight === undefined;
  }

  stop(): void {
    this.stopped = true;
    this.ws?.terminate();
  }
}

describe('R3: rolling restart behind HAProxy under chat load', () => {
  let nats: Awaited<ReturnType<typeof startNats>>;
  let hap: HaproxyProcess;
  const dir = mkdtempSync(join(tmpdir(), 'confab-r3-'));
  const gws: { name: string; port: number; url: string; proc: Proc; node: string; log: string; gen: number }[] = [];
  const clients: MovingClient[] = [];
  const nodeToGateway = new Map<string, string>();

  /** Gateway `g`, generation `gen`: on port 0 (the kernel's choice) the first time, then on the port it got. */
  const gwSpec = (g: { name: string; gen: number; log: string }): Omit<GatewaySpawn, 'port'> => {
    const node = `${g.name}-v${g.gen}`;
    nodeToGateway.set(node, g.name);
    return {
      node,
      region: 'local',
      natsUrl: nats.url,
      secret: TEST_SECRET,
      dataDir: join(dir, node),
      logFile: g.log,
      streamReplicas: 1,
      env: { LOG_LEVEL: 'warn', CONFAB_DRAIN_READY_DELAY_MS: '800', CONFAB_DRAIN_WINDOW_MS: '1000', CONFAB_SHUTDOWN_TIMEOUT_MS: '8000', CONFAB_PRESENCE_GRACE_MS: '5000' },
    };
  };
  const spawnGw = async (g: { name: string; port: number; gen: number; log: string }) => {
    const spec = gwSpec(g);
    return { proc: await spawnGatewayProc({ ...spec, port: g.port }), node: spec.node };
  };

  before(async () => {
    nats = await startNats();
    for (let i = 0; i < 3; i++) {
      const g = { name: `g${i + 1}`, gen: 1, log: join(dir, `g${i + 1}.log`) };
      const spec = gwSpec(g);
      const { proc, port, url } = await startGatewayProc(spec);
      gws.push({ ...g, port, url, proc, node: spec.node });
    }
    for (const g of gws) await waitGatewayReady(g.url, g.proc, g.log, 30_000);
    hap = await startHaproxy({ backends: gws.map((g) => ({ name: g.name, port: g.port })), checkIntervalMs: 200, dir, name: 'hap' });
  });

  after(async () => {
    for (const c of clients) c.stop();
    await hap?.stop();
    await Promise.all(gws.map(async (g) => {
      if (!g.proc.hasExited()) process.kill(g.proc.pid, 'SIGKILL');
      await g.proc.exited;
    }));
    await nats?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('rolls every gateway with readiness failing first, 0 lost, 0 duplicated, one order, no false leaves', async (t) => {
    const wsUrl = hap.url.replace(/^http/, 'ws') + '/ws';
    for (let i = 0; i < 40; i++) {
      const s = await createSession(hap.url, `user${i}`);
      const c = new MovingClient(`u${i}`, wsUrl, s.token);
      clients.push(c);
      c.connect();
    }
    await waitFor(() => clients.every((c) => c.joined), { timeoutMs: 20_000, what: 'every client joined through HAProxy' });
    const spread = new Set(clients.map((c) => nodeToGateway.get(c.node)));
    assert.equal(spread.size, 3, 'leastconn spreads clients over all three gateways');

    const publishers = clients.slice(0, 8);
    const ticker = setInterval(() => publishers.forEach((p) => p.tick()), 250);
    const ackedCount = () => publishers.reduce((a, p) => a + p.acked.size, 0);
    try {
      await waitFor(() => ackedCount() >= 20, { timeoutMs: 15_000, what: 'chat under way' });

      const events: RollEvent[] = [];
      const targets: RollTarget[] = gws.map((g) => ({
        name: g.name,
        url: g.url,
        admin: hap.admin,
        terminate: () => process.kill(g.proc.pid, 'SIGTERM'),
        waitExit: async (killAfterMs) => {
          await waitGone(g.proc.pid, [...MARKERS.gateway], killAfterMs);
          await g.proc.exited;
        },
        restart: async () => {
          g.gen++;
          const { proc, node } = await spawnGw(g);
          g.proc = proc;
          g.node = node;
        },
        diagnostics: () => tail(g.log, 10),
      }));
      await rollGateways(targets, { onEvent: (e) => events.push(e), exitTimeoutMs: 12_000, readyTimeoutMs: 30_000 });

      const afterRoll = ackedCount();
      await waitFor(() => ackedCount() >= afterRoll + 10, { timeoutMs: 15_000, what: 'chat continues after the roll' });
      clearInterval(ticker);
      await waitFor(() => publishers.every((p) => p.idle), { timeoutMs: 15_000, what: 'every publish acknowledged' });

      // readiness failed before the node closed its first socket
      for (const g of gws) {
        const unready = events.find((e) => e.type === 'unready' && e.name === g.name);
        assert.ok(unready, `${g.name}: readiness failure observed`);
        const closes = clients.flatMap((c) => c.closes).filter((x) => nodeToGateway.get(x.node) === g.name && x.node.endsWith('-v1'));
        assert.ok(closes.length > 0, `${g.name} had clients to move`);
        const first = Math.min(...closes.map((x) => x.at));
        assert.ok(unready.at <= first, `${g.name}: /readyz failed (${unready.at}) before the first close (${first})`);
      }
      const allCloses = clients.flatMap((c) => c.closes);
      assert.deepEqual([...new Set(allCloses.map((x) => x.code))], [4000], 'every socket was moved with 4000 (no abnormal close)');
      for (const x of allCloses) assert.match(x.reason, /"retryMs":\d+/, 'the close carries a retry hint');

      // every client resumed without a hole and got every acknowledged message exactly once, in one order
      const acked = new Set(publishers.flatMap((p) => [...p.acked]));
      await waitFor(() => clients.every((c) => [...acked].every((id) => c.msgs.some((m) => m.id === id))), { timeoutMs: 20_000, what: 'every acknowledged message at every client' });
      const reference = clients[0]!.msgs.map((m) => `${m.offset}:${m.id}`);
      for (const c of clients) {
        const ids = c.msgs.map((m) => m.id);
        assert.equal(new Set(ids).size, ids.length, `${c.name}: no duplicate delivered`);
        for (let i = 1; i < c.msgs.length; i++) assert.equal(c.msgs[i]!.prev, c.msgs[i - 1]!.offset, `${c.name}: no hole at ${i}`);
        assert.deepEqual(c.msgs.map((m) => `${m.offset}:${m.id}`), reference, `${c.name}: same order as everyone`);
        for (const j of c.joins.slice(1)) {
          assert.equal(j.recovered, true, `${c.name}: resume recovered`);
          assert.equal(j.gap, undefined);
          assert.notEqual(j.reset, true);
        }
        assert.deepEqual(c.errors, [], `${c.name}: no protocol errors`);
        assert.deepEqual(c.refused, [], `${c.name}: no upgrade refused during the roll (draining nodes accept until HAProxy noticed; HAProxy retries a 503)`);
      }
      assert.equal(reference.length, acked.size, 'nothing but acknowledged messages, each once');
      assert.ok(clients.every((c) => c.joins.length >= 2), 'every client was moved at least once');
      const leaves = clients.flatMap((c) => c.presence.filter((p) => p.event === 'leave'));
      assert.deepEqual(leaves, [], 'no one who only moved node is shown leaving');
      for (const s of await hap.admin.servers()) assert.equal(s.status, 'UP', `${s.name} UP after the roll`);
      for (const g of gws) assert.equal(g.gen, 2, `${g.name} was replaced`);
      t.diagnostic(`${acked.size} messages acknowledged and delivered to ${clients.length} clients; ${allCloses.length} moves (4000); ${clients.reduce((a, c) => a + c.joins.length - 1, 0)} resumes`);
    } finally {
      clearInterval(ticker);
    }
  });
});
