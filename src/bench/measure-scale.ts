/**
 * The scaled-down run of docs/scaling.md: `confab load` (the library) against every gateway of a
 * running `confab cluster up` (clients spread round-robin over the gateways' own URLs), with each
 * gateway's /metrics sampled in an idle window and a steady sending window. Per gateway: clients,
 * rooms with local members, CPU %, RSS, deliveries/s, publishes/s, bus bytes/s in and out by class
 * (confab_bus_bytes_total); for the run: delivery latency and the WAN bytes (supervisor's /wan).
 *
 *   npm run measure:scale -- --dir .confab-cluster [--clients 2000] [--rooms 100] [--publishers 100]
 *       [--rate 200] [--duration 40] [--idle 10] [--json file]
 *
 * Client i's gateway is i mod G and its room i mod rooms: rooms a multiple of G put each room on
 * one gateway; rooms coprime with G put every room on every gateway (the interest-based bus cost).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { ClusterState } from '../cli/cluster-plan.js';
import { LoadGenerator } from '../load/index.js';

const { values: a } = parseArgs({
  options: {
    dir: { type: 'string', default: '.confab-cluster' },
    clients: { type: 'string', default: '2000' },
    rooms: { type: 'string', default: '100' },
    publishers: { type: 'string', default: '100' },
    rate: { type: 'string', default: '200' },
    duration: { type: 'string', default: '40' },
    idle: { type: 'string', default: '10' },
    size: { type: 'string', default: '100' },
    json: { type: 'string' },
  },
});

type Sample = { at: number; m: Map<string, number> };

async function scrape(url: string): Promise<Sample> {
  const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    // drop the node/region labels every series carries, keep the others (dir, class, code)
    const key = line.slice(0, sp).replace(/,?(node|region)="[^"]*"/g, '').replace('{,', '{').replace('{}', '');
    m.set(key, Number(line.slice(sp + 1)));
  }
  return { at: Date.now(), m };
}

const v = (s: Sample, k: string) => s.m.get(k) ?? 0;
const rate = (s0: Sample, s1: Sample, k: string) => (v(s1, k) - v(s0, k)) / ((s1.at - s0.at) / 1000);

async function wan(state: ClusterState): Promise<number> {
  if (!state.wan) return 0;
  const r = await fetch(`http://127.0.0.1:${state.controlPort}/wan`, { headers: { authorization: `Bearer ${state.controlToken}` } });
  const body = (await r.json()) as { proxies: { out: { bytes: number }; back: { bytes: number } }[] };
  return body.proxies.reduce((s, p) => s + p.out.bytes + p.back.bytes, 0);
}

function figures(s0: Sample, s1: Sample) {
  const bus = (dir: string, cls: string) => rate(s0, s1, `confab_bus_bytes_total{dir="${dir}",class="${cls}"}`);
  return {
    seconds: (s1.at - s0.at) / 1000,
    connections: v(s1, 'confab_connections'),
    rooms: v(s1, 'confab_rooms'),
    cpuPct: rate(s0, s1, 'process_cpu_seconds_total') * 100,
    rssMiB: v(s1, 'process_resident_memory_bytes') / 2 ** 20,
    heapMiB: v(s1, 'nodejs_heap_size_used_bytes') / 2 ** 20,
    deliveriesPerSec: rate(s0, s1, 'confab_messages_out_total'),
    publishesPerSec: rate(s0, s1, 'confab_messages_in_total'),
    busInRoomBps: bus('in', 'room'),
    busInCtlBps: bus('in', 'ctl'),
    busOutRoomBps: bus('out', 'room'),
    busOutCtlBps: bus('out', 'ctl'),
    busInRoomMsgs: rate(s0, s1, 'confab_bus_messages_total{dir="in",class="room"}'),
  };
}

const dir = resolve(a.dir);
const state = JSON.parse(readFileSync(join(dir, 'cluster.json'), 'utf8')) as ClusterState;
const gws = state.regions.flatMap((r) => r.gateways.map((g) => ({ region: r.name, name: g.name, url: g.url })));
const all = () => Promise.all(gws.map((g) => scrape(g.url)));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const before = await all();
const load = new LoadGenerator({
  urls: gws.map((g) => g.url),
  clients: Number(a.clients),
  rooms: Number(a.rooms),
  publishers: Number(a.publishers),
  rate: Number(a.rate),
  durationMs: Number(a.duration) * 1000,
  payloadBytes: Number(a.size),
  tailMs: 15_000,
  connectTimeoutMs: 420_000, // joins in the region away from the stream read history across the WAN; the machine is shared
});
try {
  const t0 = Date.now();
  await load.connect();
  console.error(`connected ${a.clients} clients in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  await sleep(3000);
  const i0 = await all();
  await sleep(Number(a.idle) * 1000);
  const i1 = await all();
  const w0 = await wan(state);
  const sending = load.send();
  await sleep(4000); // warm-up
  const s0 = await all();
  const w1 = await wan(state);
  await sleep(Number(a.duration) * 1000 - 8000);
  const s1 = await all();
  const w2 = await wan(state);
  await sending;
  const r = load.report();
  const rows = gws.map((g, i) => ({ region: g.region, gateway: g.name, rssBeforeMiB: v(before[i]!, 'process_resident_memory_bytes') / 2 ** 20, idle: figures(i0[i]!, i1[i]!), steady: figures(s0[i]!, s1[i]!) }));
  const out = {
    args: a,
    wan: state.wan ?? null,
    load: { ok: r.ok, acked: r.acked, scheduled: r.scheduled, delivered: r.delivered, expected: r.expected, lost: r.lost, duplicates: r.duplicates, latencyMs: r.latencyMs, reconnects: r.reconnects.count, notBack: r.notBack, warnings: r.warnings, deliveredPerSec: r.deliveredPerSec, nodesAtEnd: r.nodesAtEnd, clientErrors: r.clientErrors },
    wanBytesPerSec: { warmup: (w1 - w0) / 4, steady: (w2 - w1) / ((s1[0]!.at - s0[0]!.at) / 1000) },
    gateways: rows,
  };
  const f = (n: number, d = 0) => n.toFixed(d).padStart(9);
  console.log(`scaled run: ${a.clients} clients, ${a.rooms} rooms, ${a.publishers} publishers, ${a.rate} msg/s, ${gws.length} gateways${state.wan ? `, WAN ${state.wan.latencyMs} ms` : ''}`);
  console.log('gateway        conns    rooms  cpu%idle  cpu%send  rss MiB  deliv/s   pub/s  busIn room  busIn ctl  busOut room busOut ctl (B/s, steady)');
  for (const g of rows) {
    console.log(`${`${g.region}/${g.gateway}`.padEnd(12)}${f(g.steady.connections)}${f(g.steady.rooms)}${f(g.idle.cpuPct, 1)}${f(g.steady.cpuPct, 1)}${f(g.steady.rssMiB)}${f(g.steady.deliveriesPerSec)}${f(g.steady.publishesPerSec)}${f(g.steady.busInRoomBps, 0).padStart(12)}${f(g.steady.busInCtlBps).padStart(11)}${f(g.steady.busOutRoomBps).padStart(12)}${f(g.steady.busOutCtlBps).padStart(11)}`);
  }
  console.log(`idle bus in per gateway (B/s): ${rows.map((g) => (g.idle.busInRoomBps + g.idle.busInCtlBps).toFixed(0)).join(', ')}`);
  console.log(`latency ms p50 ${r.latencyMs.p50.toFixed(1)} p99 ${r.latencyMs.p99.toFixed(1)} p99.9 ${r.latencyMs.p999.toFixed(1)}; delivered ${r.delivered}/${r.expected}; lost ${r.lost}, dup ${r.duplicates}; ok ${r.ok}; reconnects ${r.reconnects.count}`);
  console.log(`WAN bytes/s (both directions, all proxies): ${out.wanBytesPerSec.steady.toFixed(0)}`);
  if (a.json) writeFileSync(a.json, JSON.stringify(out, null, 2));
} finally {
  load.close();
}
