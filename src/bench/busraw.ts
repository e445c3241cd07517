/**
 * The bus alone, without gateways: two Bus instances ("nodes") on one broker, one publishing on a
 * subject the other subscribes to. Reports the publish→receive time of single messages sent one at a
 * time (p50/p99 of 200) and how long a burst of 5,000 messages of 200 bytes takes to arrive (msgs/s),
 * for NATS (core), Redis (pub/sub) and Google Cloud Pub/Sub — the local EMULATOR, not Google's service.
 * Light enough to mean something on a busy machine, unlike the gateway bus hop at 50k deliveries/s.
 *
 *   node dist/bench/busraw.js [--buses nats,redis,pubsub] [--json FILE]
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import pino from 'pino';
import type { Bus } from '../bus/types.js';
import { loadConfig } from '../config/config.js';
import { busHopAvailable, hopBusMissing, HOP_BUSES, type HopBus } from './bushop.js';

const log = pino({ level: 'silent' });

export interface BusRawResult {
  bus: HopBus;
  /** One message at a time: publish → the other node's handler, ms. */
  p50: number;
  p99: number;
  /** A burst of `burst` messages: delivered per second (arrival of the last), and how many never arrived within 20 s. */
  burst: number;
  perSec: number;
  lost: number;
}

async function twoBuses(bus: HopBus, env: Record<string, string>): Promise<[Bus, Bus]> {
  const open = async (node: string): Promise<Bus> => {
    const e = { ...env, CONFAB_NODE_ID: node, CONFAB_SECRET: 'bench-secret-0123456789' };
    if (bus === 'nats') {
      const { createNatsBus } = await import('../nats/index.js');
      return createNatsBus(loadConfig(e), log, { env: e });
    }
    if (bus === 'redis') {
      const { createRedisBus } = await import('../redis/index.js');
      return createRedisBus(loadConfig({ ...e, CONFAB_HISTORY: 'redis' }), log, { env: e });
    }
    const { createPubSubBus } = await import('../pubsub/index.js');
    return createPubSubBus({ ...loadConfig({ ...e, CONFAB_BUS: 'memory', CONFAB_HISTORY: 'memory' }), bus: 'pubsub' }, log, { env: e });
  };
  return [await open('raw-a'), await open('raw-b')];
}

async function startServer(bus: HopBus): Promise<{ env: Record<string, string>; stop(): Promise<void> }> {
  if (bus === 'nats') {
    const { startNats } = await import('../procs/nats.js');
    const s = await startNats({ jetstream: false });
    return { env: { NATS_URL: s.url }, stop: () => s.close() };
  }
  if (bus === 'redis') {
    const { startRedis } = await import('../procs/redis.js');
    const s = await startRedis();
    return { env: { REDIS_URL: s.url }, stop: () => s.close() };
  }
  const { startPubSubEmulator } = await import('../testkit/pubsub-emulator.js');
  const s = await startPubSubEmulator();
  return { env: { ...s.env(), CONFAB_PUBSUB_TOPIC: 'bench-raw' }, stop: () => s.close() };
}

const pct = (xs: number[], p: number) => xs.slice().sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]!;

export async function busRaw(bus: HopBus, burst = 5000): Promise<BusRawResult> {
  const server = await startServer(bus);
  let buses: Bus[] = [];
  try {
    const [a, b] = (buses = await twoBuses(bus, server.env));
    const subject = 'room.bench';
    let got = 0;
    let last = '';
    b.subscribe(subject, (d) => {
      got++;
      last = Buffer.from(d.buffer, d.byteOffset, 12).toString();
    });
    await a.flush();
    // warm up until the subscription is seen (brokers route interest asynchronously)
    const t0 = Date.now();
    while (got === 0) {
      if (Date.now() - t0 > 20_000) throw new Error('no delivery within 20 s');
      a.publish(subject, Buffer.from('warmup-00000'));
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, 300));
    const lat: number[] = [];
    for (let i = 0; i < 200; i++) {
      const tag = `l${String(i).padStart(11, '0')}`;
      const s = process.hrtime.bigint();
      a.publish(subject, Buffer.from(tag));
      const until = Date.now() + 5000;
      while (last !== tag && Date.now() < until) await new Promise((r) => setImmediate(r));
      lat.push(Number(process.hrtime.bigint() - s) / 1e6);
    }
    got = 0;
    const payload = Buffer.alloc(200, 120);
    const s = process.hrtime.bigint();
    for (let i = 0; i < burst; i++) {
      a.publish(subject, payload);
      if (i % 500 === 499) await new Promise((r) => setImmediate(r)); // let the client write
    }
    const until = Date.now() + 20_000;
    while (got < burst && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
    const secs = Number(process.hrtime.bigint() - s) / 1e9;
    return { bus, p50: pct(lat, 50), p99: pct(lat, 99), burst, perSec: got / secs, lost: burst - got };
  } finally {
    for (const x of buses) await x.close().catch(() => undefined);
    await server.stop();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { buses: { type: 'string' }, json: { type: 'string' } } });
  const buses = (values.buses?.split(',') ?? [...HOP_BUSES]) as HopBus[];
  const out: (BusRawResult | { bus: HopBus; skipped: string })[] = [];
  for (const bus of buses) {
    const why = bus === 'nats' ? busHopAvailable() : await hopBusMissing(bus);
    if (why) {
      out.push({ bus, skipped: why });
      continue;
    }
    out.push(await busRaw(bus));
  }
  process.stdout.write('bus                     one at a time p50 ms  p99 ms  burst of 5000 msgs/s  lost\n');
  for (const r of out) {
    const name = r.bus === 'pubsub' ? 'Pub/Sub (emulator)' : r.bus === 'nats' ? 'NATS core' : 'Redis pub/sub';
    if ('skipped' in r) process.stdout.write(`${name.padEnd(24)}skipped: ${r.skipped}\n`);
    else process.stdout.write(`${name.padEnd(24)}${r.p50.toFixed(2).padStart(20)}  ${r.p99.toFixed(2).padStart(6)}  ${Math.round(r.perSec).toString().padStart(20)}  ${r.lost}\n`);
  }
  if (values.json) writeFileSync(values.json, JSON.stringify(out, null, 1));
}

if (process.argv[1]?.endsWith('busraw.js')) {
  main().then(
    () => process.exit(0),
    (e: unknown) => {
      process.stderr.write(`busraw failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    },
  );
}
