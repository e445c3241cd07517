/**
 * Ack and delivery latency per region on a running `confab cluster up` (best with
 * `--wan-latency 100`), for rooms homed in each region: where a member sends from
 * its room's home region ("home") or from another region ("away").
 *
 *   npm run measure:wan -- --dir .confab-cluster [--members 3] [--messages 40] [--rooms ord-wan,syd-wan] [--senders syd]
 *
 * Per room, `members` clients join through each region's HAProxy; every client sends
 * `messages` messages one at a time (the next after the ack), all clients at once
 * (`--senders`: only the members of those regions send; the others only receive).
 * Measured on one clock (one process): ack = send → ack at the sender; delivery =
 * send → `msg` at every other member, grouped by the receiver's region. The room's
 * home is the region its name starts with (`ord-…`), the rule of CONFAB_ROOM_HOMES'
 * default; before home regions existed every room lived in the first region's stream.
 * Prints one table (and JSON with --json).
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { ClusterState } from '../cli/cluster-plan.js';
import { createSession } from '../testkit/gateway.js';
import { RawClient } from '../testkit/raw-client.js';
import { waitFor } from '../procs/wait.js';

interface Member {
  region: string;
  c: RawClient;
}

function pct(v: number[], p: number): number {
  if (v.length === 0) return NaN;
  const s = [...v].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

export interface WanRow {
  room: string;
  home: string;
  sender: string;
  where: 'home' | 'away';
  ack: { p50: number; p99: number; n: number };
  delivery: Record<string, { p50: number; p99: number; n: number }>;
}

async function measureRoom(state: ClusterState, room: string, members: number, messages: number, senders?: string[]): Promise<WanRow[]> {
  const regions = state.regions.map((r) => r.name);
  const home = regions.find((r) => room.startsWith(`${r}-`)) ?? regions[0]!;
  const all: Member[] = [];
  for (const r of state.regions) {
    const url = r.haproxy.url;
    const wsUrl = `${url.replace(/^http/, 'ws')}/ws`;
    for (let i = 0; i < members; i++) {
      const s = await createSession(url, `${r.name}${i}${room.replace(/[^a-z0-9]/g, '')}`.slice(0, 32));
      const c = await RawClient.connect(wsUrl, s.token);
      c.send({ t: 'join', room });
      await c.next('joined', (j) => j.room === room, 30_000);
      all.push({ region: r.name, c });
    }
  }
  const sentAt = new Map<string, number>();
  const acks = new Map<string, number[]>(); // sender region -> ms
  const deliveries = new Map<string, number[]>(); // `${sender}>${receiver}` -> ms
  for (const m of all) {
    m.c.ws.on('message', (d) => {
      const f = JSON.parse(d.toString()) as { t: string; id?: string; room?: string };
      if (f.t !== 'msg' || f.room !== room || !f.id) return;
      const t0 = sentAt.get(f.id);
      const from = f.id.split('_')[0]!;
      if (t0 === undefined) return;
      const k = `${from}>${m.region}`;
      (deliveries.get(k) ?? deliveries.set(k, []).get(k)!).push(performance.now() - t0);
    });
  }
  await Promise.all(
    all.map(async (m, idx) => {
      if (senders && !senders.includes(m.region)) return;
      for (let k = 0; k < messages; k++) {
        const id = `${m.region}_${idx}_${k}`;
        const t0 = performance.now();
        sentAt.set(id, t0);
        m.c.send({ t: 'pub', id, room, text: `wan ${id}` });
        const answer = await Promise.race([m.c.next('ack', (a) => a.id === id, 30_000), m.c.next('error', (e) => (e as { id?: string }).id === id, 30_000)]);
        if (answer.t === 'error') throw new Error(`send ${id}: ${JSON.stringify(answer)}`);
        (acks.get(m.region) ?? acks.set(m.region, []).get(m.region)!).push(performance.now() - t0);
      }
    }),
  );
  const sending = all.filter((m) => !senders || senders.includes(m.region)).length;
  const expected = sending * messages * (all.length - 1);
  await waitFor(() => [...deliveries.values()].reduce((a, v) => a + v.length, 0) >= expected, { what: 'every delivery', timeoutMs: 30_000 }).catch(() => {});
  for (const m of all) m.c.close();
  return regions.filter((r) => !senders || senders.includes(r)).map((sender) => ({
    room,
    home,
    sender,
    where: sender === home ? 'home' : 'away',
    ack: { p50: pct(acks.get(sender) ?? [], 50), p99: pct(acks.get(sender) ?? [], 99), n: acks.get(sender)?.length ?? 0 },
    delivery: Object.fromEntries(
      regions.map((to) => {
        const v = deliveries.get(`${sender}>${to}`) ?? [];
        return [to, { p50: pct(v, 50), p99: pct(v, 99), n: v.length }];
      }),
    ),
  }));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { dir: { type: 'string', default: '.confab-cluster' }, members: { type: 'string', default: '3' }, messages: { type: 'string', default: '40' }, rooms: { type: 'string' }, senders: { type: 'string' }, json: { type: 'boolean', default: false } },
    strict: true,
  });
  const state = JSON.parse(readFileSync(join(resolve(values.dir), 'cluster.json'), 'utf8')) as ClusterState;
  const rooms = (values.rooms ?? state.regions.map((r) => `${r.name}-wan${Date.now().toString(36)}`).join(',')).split(',');
  const rows: WanRow[] = [];
  for (const room of rooms) rows.push(...(await measureRoom(state, room, Number(values.members), Number(values.messages), values.senders?.split(','))));
  if (values.json) {
    process.stdout.write(JSON.stringify({ wan: state.wan ?? null, rows }, null, 2) + '\n');
    return;
  }
  const regions = state.regions.map((r) => r.name);
  process.stdout.write(`WAN ${state.wan ? `${state.wan.latencyMs} ms RTT, ${state.wan.lossPct}% loss` : 'none'}; ms p50 / p99\n`);
  process.stdout.write(['room', 'home', 'sender', '', 'ack', ...regions.map((r) => `delivery to ${r}`)].join('\t') + '\n');
  for (const r of rows) {
    process.stdout.write([r.room, r.home, r.sender, r.where, `${r.ack.p50.toFixed(0)} / ${r.ack.p99.toFixed(0)}`, ...regions.map((x) => (r.delivery[x]!.n ? `${r.delivery[x]!.p50.toFixed(0)} / ${r.delivery[x]!.p99.toFixed(0)}` : '-'))].join('\t') + '\n');
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
