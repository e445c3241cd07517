/**
 * The WAN proxy (src/procs/wan-proxy.ts) in front of a loopback echo server:
 * it delays each direction by half the round trip, keeps order through
 * "retransmitted" chunks, bounds what it holds (back-pressure), counts NATS
 * messages by subject across chunk boundaries, and holds/releases on demand;
 * `cluster up` flags for it.
 */
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { resolve } from 'node:path';
import { parseClusterArgs, planCluster, natsEnvFor, plannedPorts, UsageError } from '../../src/cli/cluster-plan.js';
import { NatsMessageCounter, WanProxy } from '../../src/procs/wan-proxy.js';
import { waitFor } from '../../src/procs/wait.js';

function echoServer(): Promise<Server> {
  const s = createServer((c) => c.pipe(c));
  return new Promise((res) => s.listen(0, '127.0.0.1', () => res(s)));
}

function dial(port: number): Promise<Socket> {
  return new Promise((res, rej) => {
    const c = connect({ host: '127.0.0.1', port }, () => res(c));
    c.once('error', rej);
  });
}

/** Write `data`, resolve with the time until it all came back. */
async function roundTrip(c: Socket, data: Buffer): Promise<{ ms: number; got: Buffer }> {
  const parts: Buffer[] = [];
  let n = 0;
  const t0 = performance.now();
  return new Promise((res) => {
    const on = (d: Buffer) => {
      parts.push(d);
      n += d.length;
      if (n >= data.length) {
        c.off('data', on);
        res({ ms: performance.now() - t0, got: Buffer.concat(parts) });
      }
    };
    c.on('data', on);
    c.write(data);
  });
}

describe('WAN proxy', () => {
  let echo: Server;
  const proxies: WanProxy[] = [];
  const sockets: Socket[] = [];
  const proxy = async (o: Parameters<typeof WanProxy.listen>[0] = {}) => {
    const p = await WanProxy.listen({ target: { port: (echo.address() as { port: number }).port }, ...o });
    proxies.push(p);
    const c = await dial(p.port);
    sockets.push(c);
    return { p, c };
  };
  before(async () => {
    echo = await echoServer();
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    for (const p of proxies) await p.close();
    await new Promise((r) => echo.close(r));
  });

  it('adds the round trip: half of it in each direction', async () => {
    const { p, c } = await proxy({ latencyMs: 120 });
    const { ms, got } = await roundTrip(c, Buffer.from('ping'));
    assert.equal(got.toString(), 'ping');
    assert.ok(ms >= 118, `a round trip through a 120 ms WAN took ${ms.toFixed(1)} ms`);
    const s = p.stats();
    assert.equal(s.out.bytes, 4);
    assert.equal(s.back.bytes, 4);
    assert.equal(s.connections, 1);
  });

  it('keeps the byte order when chunks are "lost" and retransmitted, and counts the retransmits', async () => {
    let r = 0;
    const { p, c } = await proxy({ latencyMs: 10, lossPct: 50, random: () => [0.1, 0.9][r++ % 2]! });
    const data = Buffer.alloc(0);
    const chunks: Buffer[] = [];
    for (let i = 0; i < 40; i++) chunks.push(Buffer.from(`<${i}>`));
    const all = Buffer.concat([data, ...chunks]);
    const got: Buffer[] = [];
    let n = 0;
    const done = new Promise<void>((res) => c.on('data', (d: Buffer) => {
      got.push(d);
      n += d.length;
      if (n >= all.length) res();
    }));
    for (const ch of chunks) {
      c.write(ch);
      await new Promise((res) => setImmediate(res));
    }
    await done;
    assert.equal(Buffer.concat(got).toString(), all.toString(), 'same bytes, same order');
    const s = p.stats();
    assert.ok(s.out.retransmits > 0 && s.out.retransmits < s.out.chunks, `some chunks retransmitted: ${JSON.stringify(s.out)}`);
  });

  it('holds data while held (bounded: it stops reading the sender) and delivers all of it, in order, on release', async () => {
    const { p, c } = await proxy({ latencyMs: 0, maxBufferedBytes: 256 * 1024 });
    p.hold();
    const big = Buffer.alloc(8 * 1024 * 1024);
    for (let i = 0; i < big.length; i += 4) big.writeUInt32LE(i, i);
    let n = 0;
    const got: Buffer[] = [];
    c.on('data', (d: Buffer) => {
      got.push(d);
      n += d.length;
    });
    c.write(big);
    await waitFor(() => p.stats().peakBuffered > 200 * 1024, { what: 'the proxy to fill its buffer', timeoutMs: 5000 });
    await new Promise((r) => setTimeout(r, 100)); // time the sender would need to push far more through, if unbounded
    assert.equal(n, 0, 'nothing delivered while held');
    assert.ok(p.stats().peakBuffered <= 256 * 1024 + 128 * 1024, `at most the bound plus one read in flight: ${p.stats().peakBuffered}`);
    p.release();
    await waitFor(() => n >= big.length, { what: 'everything echoed back', timeoutMs: 10_000 });
    assert.ok(Buffer.concat(got).equals(big), 'every byte, in order');
  });

  it('counts NATS messages and their subjects across chunk boundaries', () => {
    const seen: [string, number][] = [];
    const counter = new NatsMessageCounter((s, b) => seen.push([s, b]));
    const wire = Buffer.from(
      'INFO {"gateway":"syd"}\r\nPING\r\nRS+ $G confab.room.a\r\nRMSG $G confab.hs.syd.0.r1 _INBOX.x 5\r\nhe\r\nl\r\nHMSG $G $JS.API.STREAM.INFO.X reply 12 14\r\nNATS/1.0\r\n\r\nhi\r\nMSG foo 1 3\r\nabc\r\nPONG\r\n',
    );
    for (let i = 0; i < wire.length; i += 7) counter.feed(wire.subarray(i, i + 7));
    assert.deepEqual(seen, [['confab.hs.syd.0.r1', 5], ['$JS.API.STREAM.INFO.X', 14], ['foo', 3]]);
  });

  it('cluster up: --wan-latency / --wan-loss plan a proxy per NATS node, advertised to the other regions', () => {
    const all = ['regions', 'nats-per-region', 'gateways-per-region', 'base-port', 'dir', 'region-names', 'wan-latency', 'wan-loss'];
    const o = parseClusterArgs(['--wan-latency', '100', '--wan-loss', '0.5', '--nats-per-region', '2', '--dir', '/tmp/x'], all);
    assert.equal(o.wanLatencyMs, 100);
    assert.equal(o.wanLossPct, 0.5);
    assert.throws(() => parseClusterArgs(['--wan-loss', '80'], all), UsageError);
    assert.throws(() => parseClusterArgs(['--wan-latency', '100', '--regions', '1'], all), UsageError);
    const s = planCluster(o, 't');
    assert.deepEqual(s.wan, { latencyMs: 100, lossPct: 0.5 });
    const [ord, syd] = s.regions;
    assert.deepEqual(ord!.nats.map((n) => n.wanPort), [14170, 14171]);
    assert.ok(plannedPorts(s).includes(14271));
    const env = natsEnvFor(s, ord!, ord!.nats[0]!);
    assert.equal(env.NATS_GATEWAY_ADVERTISE, '127.0.0.1:14170');
    // its own region by its real gateway ports, the other one only through the proxies
    assert.equal(env.NATS_GATEWAYS, 'ord=nats://127.0.0.1:14140|nats://127.0.0.1:14141;syd=nats://127.0.0.1:14270|nats://127.0.0.1:14271');
    assert.equal(syd!.nats[0]!.gatewayPort, 14240);
    const plain = planCluster(parseClusterArgs(['--dir', resolve('/tmp/x')], all), 't');
    assert.equal(plain.wan, undefined);
    assert.equal(natsEnvFor(plain, plain.regions[0]!, plain.regions[0]!.nats[0]!).NATS_GATEWAY_ADVERTISE, undefined);
  });
});
