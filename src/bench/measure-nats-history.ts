/**
 * Measurements behind the JetStream history's choices (docs/nats.md):
 * append rate (one at a time and many rooms in flight) and replay speed with
 * direct gets vs an ordered consumer, on a single node and on a 3-node R3 cluster.
 * Run: npm run measure:nats-history  (starts its own nats-servers on loopback)
 */
import pino from 'pino';
import { loadConfig } from '../config/config.js';
import { startNats, startNatsCluster } from '../procs/nats.js';
import { createNatsAdapters } from '../nats/index.js';
import type { ReplayMode } from '../nats/history.js';

const log = pino({ level: 'silent' });
const from = { user: 'u1', handle: 'bench', node: 'b', region: 'local' };

async function open(url: string, replicas: number, replay: ReplayMode) {
  const env = { NATS_URL: url, CONFAB_SECRET: 'measure-secret-0123456789', CONFAB_STREAM_NAME: 'MEASURE', CONFAB_NATS_PREFIX: 'measure', CONFAB_STREAM_REPLICAS: String(replicas) };
  const a = await createNatsAdapters(loadConfig(env), log, { env, replay });
  return a;
}

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

async function scenario(label: string, url: string, replicas: number): Promise<void> {
  const direct = await open(url, replicas, 'direct');
  const consumer = await open(url, replicas, 'consumer');
  const h = direct.history;
  const N = 2000;
  const room = `m${Date.now().toString(36)}`;
  const seqMs = await time(async () => {
    for (let i = 0; i < N; i++) await h.append({ room, id: `s${i}`, kind: 'msg', text: `message ${i}`, from, ts: Date.now() });
  });
  const rooms = 64;
  const par = await time(async () => {
    await Promise.all(Array.from({ length: rooms }, async (_, r) => {
      for (let i = 0; i < N / rooms; i++) await h.append({ room: `${room}p${r}`, id: `p${i}`, kind: 'msg', text: `message ${i}`, from, ts: Date.now() });
    }));
  });
  console.log(`${label}: append one at a time ${Math.round((N / seqMs) * 1000)} msg/s; ${rooms} rooms in parallel ${Math.round((N / par) * 1000)} msg/s`);
  for (const count of [10, 50, 500, 1000]) {
    const reps = count >= 500 ? 5 : 20;
    const d = await time(async () => {
      for (let i = 0; i < reps; i++) if ((await direct.history.read(room, N - count, count)).messages.length !== count) throw new Error('short read');
    });
    const c = await time(async () => {
      for (let i = 0; i < reps; i++) if ((await consumer.history.read(room, N - count, count)).messages.length !== count) throw new Error('short read');
    });
    console.log(`${label}: replay ${count} msgs: direct get ${(d / reps).toFixed(1)} ms, ordered consumer ${(c / reps).toFixed(1)} ms`);
  }
  const r = await time(async () => {
    for (let i = 0; i < 20; i++) await h.recent(room, 50);
  });
  console.log(`${label}: recent(50) ${(r / 20).toFixed(1)} ms`);
  for (const a of [direct, consumer]) {
    await a.bus.close();
    await a.history.close();
  }
}

const single = await startNats();
try {
  await scenario('single node, R1', single.url, 1);
} finally {
  await single.close();
}
const cluster = await startNatsCluster(3);
try {
  await scenario('3-node cluster, R3', cluster.urls, 3);
} finally {
  await cluster.stop();
}
