/**
 * The load generator end to end, small and fast: against in-process gateways
 * (one; two with a drain in the middle), and against a fault-injecting fake
 * server that acknowledges messages but never delivers them, to prove the
 * verdict catches loss. Options are checked with typed errors.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { WebSocketServer } from 'ws';
import { MemoryBroker } from '../../src/bus/memory.js';
import { MemoryHistory } from '../../src/history/memory.js';
import { LoadError, LoadGenerator, resolveOptions, runLoad } from '../../src/load/index.js';
import { REPO_ROOT, startTestGateway, type TestGateway } from '../../src/testkit/gateway.js';
import { waitFor } from '../../src/procs/wait.js';

/** A server that speaks enough confab.v1 to be joined and acks every pub, but delivers nothing: every ack is a loss. */
async function startLossyServer(): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    if (req.method === 'POST' && req.url === '/api/session') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: 't', user: { id: 'u', handle: 'h' }, expiresAt: Date.now() + 60_000 }));
    } else res.writeHead(404).end();
  });
  const wss = new WebSocketServer({ server, path: '/ws', handleProtocols: () => 'confab.v1' });
  let offset = 0;
  wss.on('connection', (ws) => {
    ws.send(JSON.stringify({ t: 'welcome', v: 1, node: 'lossy', region: 'test', version: '0', user: { id: 'u', handle: 'h' }, rooms: [], limits: { maxFrameBytes: 16384, maxTextChars: 2000, maxRooms: 50, ratePerSec: 1000, pingIntervalMs: 25000 } }));
    ws.on('message', (data) => {
      const f = JSON.parse(String(data)) as { t: string; room?: string; id?: string };
      if (f.t === 'join') ws.send(JSON.stringify({ t: 'joined', room: f.room, epoch: 'e', last: offset, recovered: false, members: [] }));
      if (f.t === 'pub') ws.send(JSON.stringify({ t: 'ack', id: f.id, room: f.room, offset: ++offset, epoch: 'e', dup: false }));
      if (f.t === 'ping') ws.send(JSON.stringify({ t: 'pong' }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      for (const c of wss.clients) c.terminate();
      wss.close();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe('load generator', () => {
  const closers: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of closers.reverse()) await c();
  });

  it('against one gateway: everything acked is delivered to every member once, with latency per delivery', async () => {
    const gw = await startTestGateway();
    closers.push(() => gw.close());
    const progress: string[] = [];
    const r = await runLoad({ urls: [gw.url], clients: 30, rooms: 3, publishers: 3, rate: 60, durationMs: 1500, onProgress: (p) => progress.push(p.phase) });
    assert.equal(r.ok, true);
    assert.equal(r.scheduled, 90);
    assert.equal(r.acked, 90);
    assert.equal(r.expected, 90 * 10, 'each message is owed to the 10 members of its room');
    assert.equal(r.delivered, r.expected);
    assert.equal(r.latencyMs.count, r.delivered);
    assert.ok(r.latencyMs.p50 > 0 && r.latencyMs.p50 <= r.latencyMs.p99 && r.latencyMs.p99 <= r.latencyMs.max);
    assert.equal(r.lost + r.duplicates + r.orderViolations + r.gaps + r.offsetMismatches, 0);
    assert.deepEqual(r.states, { connected: 30 });
    assert.equal(r.perRoom.length, 3);
    for (const room of r.perRoom) assert.equal(room.members, 10);
    assert.ok(progress.includes('send'));
    assert.ok(JSON.parse(JSON.stringify(r)).ok, 'the report is plain JSON');
  });

  it('two gateways, one drained mid-run: its clients fail over to the other and come back re-joined; nothing lost', async () => {
    const broker = new MemoryBroker();
    const history = new MemoryHistory();
    const gws: TestGateway[] = [];
    for (const node of ['a', 'b']) gws.push(await startTestGateway({ broker, history, env: { CONFAB_NODE_ID: node, CONFAB_RATE_BURST: '200' } }));
    closers.push(async () => void (await Promise.all(gws.map((g) => g.close().catch(() => {})))));
    const g = new LoadGenerator({ urls: gws.map((x) => x.url), clients: 20, rooms: 2, publishers: 4, rate: 40, durationMs: 2500, client: { backoff: { minMs: 50, maxMs: 200 } } });
    closers.push(async () => g.close());
    await g.connect();
    assert.deepEqual(g.report().nodesAtStart, { a: 10, b: 10 }, 'round-robin over the URLs');
    const sending = g.send();
    await waitFor(() => g.tracker.acked >= 20, { what: 'some traffic first' });
    await gws[0]!.gw.drain();
    await sending;
    const r = g.report();
    assert.equal(r.ok, true);
    assert.equal(r.lost, 0);
    assert.equal(r.unacked, 0);
    assert.equal(r.reconnects.count, 10, 'the ten clients of the drained gateway reconnected once each');
    for (const s of r.reconnects.samples) assert.deepEqual([s.from, s.to], ['a', 'b']);
    assert.deepEqual(r.nodesAtEnd, { b: 20 });
    assert.equal(r.notBack, 0);
  });

  it('a server that acks but never delivers: every owed delivery is reported lost and the run is not ok', async () => {
    const lossy = await startLossyServer();
    closers.push(() => lossy.close());
    const r = await runLoad({ urls: [lossy.url], clients: 4, rooms: 2, publishers: 2, rate: 20, durationMs: 500, tailMs: 300 });
    assert.equal(r.acked, 10);
    assert.equal(r.expected, 20);
    assert.equal(r.delivered, 0);
    assert.equal(r.lost, 20);
    assert.equal(r.drained, false);
    assert.equal(r.ok, false);
  });

  it('confab load against that server exits 1 and says FAILED; --json holds the same verdict', async () => {
    const lossy = await startLossyServer();
    closers.push(() => lossy.close());
    const json = join(mkdtempSync(join(tmpdir(), 'confab-load-')), 'r.json');
    const args = ['--import', 'tsx', join(REPO_ROOT, 'src/cli/confab.ts'), 'load', '--url', lossy.url, '--clients', '2', '--rooms', '1', '--publishers', '1', '--rate', '10', '--duration', '0.3', '--tail', '0.2', '--quiet', '--json', json];
    // the lossy server runs in this process: spawn asynchronously so it can answer
    const child = spawn(process.execPath, args, { cwd: REPO_ROOT });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    assert.equal(code, 1, out);
    assert.match(out, /result: FAILED/);
    assert.match(out, /lost\s+6\b/);
    const report = JSON.parse(readFileSync(json, 'utf8')) as { ok: boolean; lost: number };
    assert.deepEqual([report.ok, report.lost], [false, 6]);
  });

  it('bad options are typed errors naming the option', () => {
    const bad: [object, RegExp][] = [
      [{ urls: [] }, /urls/],
      [{ urls: ['ftp://x'] }, /url/],
      [{ urls: ['http://127.0.0.1:1'], clients: 0 }, /clients/],
      [{ urls: ['http://127.0.0.1:1'], clients: 5, publishers: 6 }, /publishers/],
      [{ urls: ['http://127.0.0.1:1'], clients: 5, publishers: 1, rooms: 6 }, /rooms/],
      [{ urls: ['http://127.0.0.1:1'], rate: -1 }, /rate/],
      [{ urls: ['http://127.0.0.1:1'], durationMs: 1.5 }, /durationMs/],
      [{ urls: ['http://127.0.0.1:1'], roomPrefix: 'Bad Room' }, /roomPrefix/],
      [{ urls: ['http://127.0.0.1:1'], layout: 'ring' }, /layout/],
    ];
    for (const [o, re] of bad) {
      assert.throws(() => resolveOptions(o as never), (e: unknown) => e instanceof LoadError && e.code === 'bad_option' && re.test(e.message), JSON.stringify(o));
    }
    assert.equal(resolveOptions({ urls: ['http://127.0.0.1:1'], clients: 5, publishers: 1, rooms: 6, layout: 'one' }).rooms, 6, 'one room: rooms may exceed clients');
  });

  it('an unreachable gateway is a typed session_failed error, quickly', async () => {
    const gw = await startTestGateway();
    const url = gw.url;
    await gw.close();
    await assert.rejects(runLoad({ urls: [url], clients: 2, rooms: 1, publishers: 1, durationMs: 100 }), (e: unknown) => e instanceof LoadError && e.code === 'session_failed' && /ECONNREFUSED/.test(e.message));
  });

  it('a gateway refusing the upgrade (too many connections per IP) fails the setup at once, saying what to change', async () => {
    const gw = await startTestGateway({ env: { CONFAB_MAX_CONN_PER_IP: '3', CONFAB_MAX_HTTP_PER_IP: '100' } });
    closers.push(() => gw.close());
    await assert.rejects(runLoad({ urls: [gw.url], clients: 6, rooms: 1, publishers: 1, durationMs: 100, connectConcurrency: 6 }), (e: unknown) => e instanceof LoadError && e.code === 'connect_failed' && /429/.test(e.message) && /CONFAB_MAX_CONN_PER_IP/.test(e.message));
  });
});
