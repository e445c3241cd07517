/**
 * The bus hop: one confab gateway on the in-process bus against two gateways
 * joined by a bus, half of the room on each, the publishers on the first, at the
 * fixed 50k deliveries/s: NATS (a real nats-server with JetStream history), Redis
 * (pub/sub + Streams history) and Google Cloud Pub/Sub — the local EMULATOR, not
 * Google's service — with Redis Streams history. A bus whose server is not
 * installed is reported as skipped, with the reason.
 */
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { startSystem, freePort, Loadgen, confabDist, type SystemProc } from './systems.js';
import { measuredStep, type BenchSizes, type Step } from './scenarios.js';

/** null when the bus hop can run, else why not. */
export function busHopAvailable(): string | null {
  if (!existsSync(path.join(confabDist(), 'nats', 'index.js'))) return 'no NATS adapter (dist/nats/index.js) yet';
  try {
    execFileSync('nats-server', ['--version'], { stdio: 'ignore' });
  } catch {
    return 'nats-server not installed';
  }
  return null;
}

async function startNats(): Promise<{ url: string; stop(): Promise<void> }> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), 'confab-bench-nats-'));
  const child = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`nats-server not ready: ${log.slice(-500)}`)), 15_000);
    const on = (d: Buffer) => {
      log += d.toString();
      if (log.includes('Server is ready')) {
        clearTimeout(t);
        resolve();
      }
    };
    child.stdout!.on('data', on);
    child.stderr!.on('data', on);
    child.once('exit', (c) => {
      clearTimeout(t);
      reject(new Error(`nats-server exited ${c}: ${log.slice(-500)}`));
    });
  });
  return {
    url: `nats://127.0.0.1:${port}`,
    async stop() {
      const done = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await done;
      clearTimeout(t);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function measure(servers: SystemProc[], n: number, s: BenchSizes): Promise<Step> {
  const lg = new Loadgen();
  try {
    const init = await lg.call<{ failed: number; reasons: Record<string, number> }>({
      cmd: 'init',
      system: 'confab',
      host: servers[0]!.host,
      port: servers[0]!.port,
      port2: servers[1]?.port,
      layout: { kind: 'room', n, pubs: 4 },
      concurrency: 256,
    });
    if (init.failed > 0) throw new Error(`${init.failed} clients failed to connect: ${JSON.stringify(init.reasons)}`);
    const rate = 50_000 / n;
    await lg.call({ cmd: 'step', rate, durationMs: 300, drainMs: s.drainMs, payloadBytes: 100 });
    return await measuredStep(servers, lg, { rate, durationMs: s.stepMs * 2, drainMs: s.drainMs, payloadBytes: 100 });
  } finally {
    await lg.stop();
  }
}

/** The buses the hop is measured over. */
export const HOP_BUSES = ['nats', 'redis', 'pubsub'] as const;
export type HopBus = (typeof HOP_BUSES)[number];

interface Broker {
  env: Record<string, string>;
  stop(): Promise<void>;
}

/**
 * The broker(s) one pair of gateways needs: NATS with its JetStream history; Redis with its Streams
 * history; the Google Cloud Pub/Sub EMULATOR (a local Java server, not Google's service) with a Redis
 * Streams history, since Pub/Sub keeps none.
 */
async function startBroker(bus: HopBus): Promise<Broker> {
  if (bus === 'nats') {
    const nats = await startNats();
    return { env: { CONFAB_BUS: 'nats', NATS_URL: nats.url }, stop: () => nats.stop() };
  }
  const { startRedis } = await import('../procs/redis.js');
  const redis = await startRedis();
  if (bus === 'redis') return { env: { CONFAB_BUS: 'redis', REDIS_URL: redis.url }, stop: () => redis.close() };
  const { startPubSubEmulator } = await import('../testkit/pubsub-emulator.js');
  const emu = await startPubSubEmulator().catch(async (e: unknown) => {
    await redis.close();
    throw e;
  });
  return {
    env: { ...emu.env(), CONFAB_BUS: 'pubsub', CONFAB_HISTORY: 'redis', REDIS_URL: redis.url },
    stop: async () => {
      await emu.close();
      await redis.close();
    },
  };
}

/** Why a bus cannot be measured here (null: it can). */
export async function hopBusMissing(bus: HopBus): Promise<string | null> {
  if (bus === 'nats') return busHopAvailable();
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
  } catch {
    return 'redis-server not installed';
  }
  if (bus === 'pubsub') return (await import('../testkit/pubsub-emulator.js')).pubsubEmulatorMissing();
  return null;
}

export interface BusHopResult {
  n: number;
  single: Step;
  /** Two gateways over each bus (an error string when that bus could not be measured). */
  pairs: Partial<Record<HopBus, Step | string>>;
  /** Kept for older readers of the JSON: the NATS pair. */
  pair: Step | null;
}

export async function busHop(s: BenchSizes, buses: readonly HopBus[] = HOP_BUSES): Promise<BusHopResult> {
  const n = s.fanout[0]!.n;
  const single = await startSystem('confab');
  let one: Step;
  try {
    one = await measure([single], n, s);
  } finally {
    await single.stop();
  }
  const pairs: BusHopResult['pairs'] = {};
  for (const bus of buses) {
    const why = await hopBusMissing(bus);
    if (why) {
      pairs[bus] = `skipped: ${why}`;
      continue;
    }
    const broker = await startBroker(bus);
    const env = { ...broker.env, CONFAB_SECRET: randomBytes(24).toString('hex') };
    const started: SystemProc[] = [];
    try {
      started.push(await startSystem('confab', { env: { ...env, CONFAB_NODE_ID: 'bench-a' } }));
      started.push(await startSystem('confab', { env: { ...env, CONFAB_NODE_ID: 'bench-b' } }));
      pairs[bus] = await measure(started, n, s);
    } catch (e) {
      pairs[bus] = e instanceof Error ? e.message : String(e);
    } finally {
      for (const x of started) await x.stop();
      await broker.stop();
    }
  }
  const nats = pairs.nats;
  return { n, single: one, pairs, pair: typeof nats === 'object' ? nats : null };
}
