/**
 * History write capacity by shard count: appends/s on a three-node NATS JetStream
 * cluster (replicas 3) with CONFAB_STREAM_SHARDS = 1 (the one stream), 4 and 16.
 * Three writers (one connection each, to a different node, like three gateways)
 * keep `inFlight` appends in flight in total, spread over `rooms` rooms; each
 * append is the adapter's full append (publish with the expected per-room
 * sequence, the confirming leader read, the room-bounds bookkeeping). Loopback,
 * one machine: the client and three servers share its cores.
 *   npm run bench -- --shards [--shard-counts 1,4,16] [--appends 6000]
 */
import pino from 'pino';
import { loadConfig } from '../config/config.js';
import type { History } from '../history/types.js';
import { createJetStreamHistory } from '../nats/index.js';
import { startNatsCluster } from '../procs/nats.js';

export interface ShardBenchOptions {
  counts: number[];
  appends: number;
  inFlight: number;
  rooms: number;
  log: (line: string) => void;
}

export interface ShardBenchRow {
  shards: number;
  streams: number;
  appendsPerSec: number;
  p50Ms: number;
  p99Ms: number;
}

const from = { user: 'bench', handle: 'bench', node: 'n1', region: 'local' };
const text = 'x'.repeat(100);

async function drive(hs: History[], o: ShardBenchOptions, tag: string, n: number): Promise<{ rate: number; lat: number[] }> {
  let next = 0;
  const lat: number[] = [];
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: o.inFlight }, async (_, w) => {
      const h = hs[w % hs.length]!;
      for (let i = next++; i < n; i = next++) {
        const s = performance.now();
        // a room is written through one writer (one gateway) at a time, as when its members sit on one node
        const room = `${tag}-${(i * 7919) % o.rooms}-${w % hs.length}`;
        await h.append({ room, id: `${tag}${i}`, kind: 'msg', text, from, ts: Date.now() });
        lat.push(performance.now() - s);
      }
    }),
  );
  return { rate: n / ((performance.now() - t0) / 1000), lat };
}

const pct = (v: number[], p: number) => [...v].sort((a, b) => a - b)[Math.min(v.length - 1, Math.floor((p / 100) * v.length))] ?? NaN;

export async function runShardBench(o: ShardBenchOptions): Promise<ShardBenchRow[]> {
  const cluster = await startNatsCluster(3);
  const rows: ShardBenchRow[] = [];
  try {
    for (const shards of o.counts) {
      const hs: History[] = [];
      for (let i = 0; i < 3; i++) {
        const env = {
          NATS_URL: cluster.servers[i]!.url,
          CONFAB_SECRET: 'bench-secret-0123456789',
          CONFAB_NODE_ID: `w${i}`,
          CONFAB_STREAM_NAME: `BS${shards}`,
          CONFAB_NATS_PREFIX: `bs${shards}`,
          CONFAB_STREAM_SHARDS: String(shards),
          CONFAB_STREAM_REPLICAS: '3',
        };
        hs.push((await createJetStreamHistory(loadConfig(env), pino({ level: 'silent' }), { env })).history);
      }
      await drive(hs, o, `warm${shards}`, Math.min(1000, o.appends));
      const { rate, lat } = await drive(hs, o, `s${shards}`, o.appends);
      rows.push({ shards, streams: shards, appendsPerSec: Math.round(rate), p50Ms: pct(lat, 50), p99Ms: pct(lat, 99) });
      o.log(`${shards} shard(s): ${Math.round(rate)} appends/s, p50 ${pct(lat, 50).toFixed(1)} ms, p99 ${pct(lat, 99).toFixed(1)} ms`);
      for (const h of hs) await h.close();
    }
  } finally {
    await cluster.stop();
  }
  return rows;
}

export function shardTable(rows: ShardBenchRow[], o: Pick<ShardBenchOptions, 'appends' | 'inFlight' | 'rooms'>): string {
  const lines = [
    `${o.appends} appends of ${text.length} characters, ${o.inFlight} in flight over ${o.rooms} rooms through 3 connections; 3-node JetStream cluster, replicas 3`,
    '| shards (streams) | appends/s | append p50 ms | append p99 ms |',
    '|---|---|---|---|',
    ...rows.map((r) => `| ${r.shards} | ${r.appendsPerSec.toLocaleString('en')} | ${r.p50Ms.toFixed(1)} | ${r.p99Ms.toFixed(1)} |`),
  ];
  return lines.join('\n') + '\n';
}
