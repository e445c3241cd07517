/**
 * The load generator: a child process (forked by the runner, pinned to its own
 * core) that holds every simulated client. It is driven over IPC with
 * {@link LoadgenRequest} commands and answers each with one reply.
 *
 * Latency is measured from the *scheduled* send time written into each payload
 * (no coordinated omission: when the sender falls behind it catches up with the
 * original timestamps). Every delivery is counted per (client, publisher), so
 * loss, duplicates and order violations are measured, not assumed.
 */
import { performance } from 'node:perf_hooks';
import { Histogram } from './stats.js';
import { WireSocket } from './wire.js';
import {
  protocolFor,
  ready,
  resetErrorsSeen,
  resetSyncSeen,
  errorsSeen,
  syncSeen,
  type BenchClient,
  type Protocol,
  type SystemKind,
} from './protocols.js';

/** How clients are arranged in rooms. */
export type Layout =
  /** `n` receivers and `pubs` publishers in room `r0`. */
  | { kind: 'room'; n: number; pubs: number }
  /** `n` clients, each in a personal room `u<i>` and a group `g<k>` of `groupSize`; members publish to their group. */
  | { kind: 'groups'; n: number; groupSize: number };

export type LoadgenRequest =
  | { cmd: 'init'; system: SystemKind; host: string; port: number; port2?: number; layout: Layout; concurrency: number }
  | { cmd: 'step'; rate: number; durationMs: number; drainMs: number; payloadBytes: number }
  | { cmd: 'connect'; n: number }
  | { cmd: 'storm'; jitterMs: number; timeoutMs: number }
  | { cmd: 'resume'; missed: number; timeoutMs: number }
  | { cmd: 'slow'; fraction: number }
  | { cmd: 'unslow'; waitMs: number }
  | { cmd: 'shutdown' };

/** Result of one load step. Latencies in µs. */
export interface StepResult {
  rate: number;
  durationMs: number;
  sent: number;
  sendFailed: number;
  expected: number;
  received: number;
  dup: number;
  outOfOrder: number;
  late: number;
  lost: number;
  /** Offered deliveries per second (expected / send duration). */
  offeredPerSec: number;
  /** Delivered per second over the send duration (received / send duration). */
  deliveredPerSec: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
  /** Load generator CPU over the step, % of one core. */
  loadgenCpuPct: number;
  /** Worst lag of the send scheduler behind its schedule, ms. */
  sendLagMs: number;
  closedByServer: number;
  errors: number;
  wallMs: number;
  hist: ReturnType<Histogram['toJSON']>;
}

const CONNECT_TIMEOUT_MS = 30_000;
const MARK = Buffer.from('B|');

let proto: Protocol;
let host = '127.0.0.1';
let port = 0;
let layout: Layout;
const clients: BenchClient[] = [];
let nextIdx = 0;
/** Non-excluded receiving members per room. */
let roomCount = new Map<string, number>();

interface StepState {
  id: number;
  hist: Histogram;
  recv: number;
  dup: number;
  ooo: number;
  expected: number;
}
let stepSeq = 0;
let cur: StepState = { id: -1, hist: new Histogram(), recv: 0, dup: 0, ooo: 0, expected: 0 };
let late = 0;
let closedByServer = 0;
let dropping = false;

function newClient(rooms: string[], role: BenchClient['role']): BenchClient {
  return { idx: nextIdx++, rooms, role, ws: null, ready: false, excluded: false, onReady: null, stepId: -1, last: null, pendingJoins: 0, gaps: 0 };
}

function recount(): void {
  roomCount = new Map();
  for (const c of clients) {
    if (c.role === 'pub' || c.excluded) continue;
    for (const r of c.rooms) roomCount.set(r, (roomCount.get(r) ?? 0) + 1);
  }
}

function onMessage(c: BenchClient, buf: Buffer, s: number, e: number): void {
  const i = buf.indexOf(MARK, s);
  if (i < 0 || i >= e) {
    proto.control(c, buf, s, e);
    return;
  }
  proto.onBench(c, buf, s, e);
  // B|step|pub|seq|usec|
  const v = [0, 0, 0, 0];
  let k = i + 2;
  for (let f = 0; f < 4; f++) {
    let n = 0;
    for (; k < e; k++) {
      const ch = buf[k]!;
      if (ch === 0x7c) break;
      n = n * 10 + (ch - 48);
    }
    v[f] = n;
    k++;
  }
  const [step, pub, seq, usec] = v as [number, number, number, number];
  if (step !== cur.id) {
    late++;
    return;
  }
  if (c.role === 'pub' || pub === c.idx || c.excluded) return;
  if (c.stepId !== step) {
    c.stepId = step;
    c.last = new Map();
  }
  const last = c.last!;
  const prev = last.get(pub);
  if (prev !== undefined && seq <= prev) {
    if (seq === prev) cur.dup++;
    else cur.ooo++;
    return;
  }
  last.set(pub, seq);
  cur.recv++;
  cur.hist.record(performance.now() * 1000 - usec);
}

/** Open (or reopen) a client's socket; resolves null when subscribed, else the reason. */
function connect(c: BenchClient, timeoutMs = CONNECT_TIMEOUT_MS): Promise<string | null> {
  return new Promise((resolve) => {
    c.ready = false;
    const timer = setTimeout(() => {
      c.onReady = null;
      const w = c.ws;
      c.ws = null;
      w?.destroy();
      resolve('timeout');
    }, timeoutMs);
    c.onReady = (ok, why) => {
      clearTimeout(timer);
      resolve(ok ? null : (why ?? 'failed'));
    };
    const me: WireSocket = new WireSocket(c.port ?? port, host, proto.path(c), proto.headers(c), {
      open: () => proto.open(c),
      message: (buf, s, e) => onMessage(c, buf, s, e),
      close: (info) => {
        if (c.ws !== me) return;
        c.ws = null;
        const wasReady = c.ready;
        c.ready = false;
        if (c.onReady) {
          const why = info.status && info.status !== 101 ? `HTTP ${info.status}` : info.code ? `closed ${info.code}` : (info.error ?? 'closed');
          ready(c, false, why);
        } else if (wasReady && !dropping) closedByServer++;
      },
    });
    c.ws = me;
  });
}

async function pool<T>(items: T[], concurrency: number, fn: (t: T) => Promise<void>): Promise<void> {
  let i = 0;
  const workers = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (i < items.length) await fn(items[i++]!);
  });
  await Promise.all(workers);
}

async function createSessions(list: BenchClient[]): Promise<void> {
  if (proto.kind !== 'confab') return;
  const base = `http://${host}:${port}`;
  // a handle stays held for its session's lifetime (docs/auth.md): every batch takes handles of its own
  const tag = Math.random().toString(36).slice(2, 6);
  await pool(list, 32, async (c) => {
    for (let attempt = 0; attempt < 5; attempt++) {
      const handle = attempt === 0 ? `b${tag}${c.idx}` : `b${tag}${c.idx}x${attempt}`;
      const res = await fetch(`${base}/api/session`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ handle }),
      });
      const body = (await res.json()) as { token?: string; code?: string };
      if (res.ok && body.token) {
        c.token = body.token;
        return;
      }
      if (res.status !== 409) throw new Error(`POST /api/session ${res.status} ${JSON.stringify(body)}`);
    }
    throw new Error('could not get a free handle');
  });
}

async function connectAll(list: BenchClient[], concurrency: number): Promise<{ ms: number; ok: number; failed: number; reasons: Record<string, number> }> {
  const reasons: Record<string, number> = {};
  let ok = 0;
  const t0 = performance.now();
  await pool(list, concurrency, async (c) => {
    let why: string | null = 'not tried';
    for (let attempt = 0; attempt < 3 && why; attempt++) why = await connect(c);
    if (why) reasons[why] = (reasons[why] ?? 0) + 1;
    else ok++;
  });
  return { ms: performance.now() - t0, ok, failed: list.length - ok, reasons };
}

async function init(req: Extract<LoadgenRequest, { cmd: 'init' }>): Promise<unknown> {
  proto = protocolFor(req.system);
  host = req.host;
  port = req.port;
  layout = req.layout;
  if (layout.kind === 'room') {
    for (let i = 0; i < layout.n; i++) clients.push(newClient(['r0'], 'recv'));
    for (let i = 0; i < layout.pubs; i++) clients.push(newClient(['r0'], 'pub'));
  } else {
    for (let i = 0; i < layout.n; i++) clients.push(newClient([`u${i}`, `g${Math.floor(i / layout.groupSize)}`], 'both'));
  }
  if (req.port2) for (const c of clients) if (c.role === 'recv' && c.idx % 2 === 1) c.port = req.port2;
  recount();
  const ts = performance.now();
  await createSessions(clients);
  const sessionMs = performance.now() - ts;
  const r = await connectAll(clients, req.concurrency);
  return { ...r, sessionMs, clients: clients.length };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function waitFor(cond: () => boolean, timeoutMs: number, pollMs = 5): Promise<boolean> {
  const end = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > end) return false;
    await sleep(pollMs);
  }
  return true;
}

function payload(step: number, pub: number, seq: number, usec: number, size: number): string {
  const head = `B|${step}|${pub}|${seq}|${usec}|`;
  return head.length >= size ? head : head + 'x'.repeat(size - head.length);
}

/** Pick the publisher and room of message number `seq`. */
function route(seq: number, pubs: BenchClient[]): { c: BenchClient; room: string } {
  if (layout.kind === 'room') return { c: pubs[seq % pubs.length]!, room: 'r0' };
  const c = pubs[Math.floor(Math.random() * pubs.length)]!;
  return { c, room: c.rooms[1]! };
}

function beginStep(): StepState {
  cur = { id: ++stepSeq, hist: new Histogram(), recv: 0, dup: 0, ooo: 0, expected: 0 };
  late = 0;
  closedByServer = 0;
  resetErrorsSeen();
  return cur;
}

function sendOne(st: StepState, pubs: BenchClient[], seq: number, usec: number, size: number): boolean {
  const { c, room } = route(seq, pubs);
  if (!c.ws || !c.ready) return false;
  c.ws.sendText(proto.pub(room, payload(st.id, c.idx, seq, usec, size), `p${c.idx}s${st.id}n${seq}`));
  const members = roomCount.get(room) ?? 0;
  st.expected += members - (c.role !== 'pub' && !c.excluded ? 1 : 0);
  return true;
}

async function step(req: Extract<LoadgenRequest, { cmd: 'step' }>): Promise<StepResult> {
  const st = beginStep();
  const pubs = clients.filter((c) => c.role !== 'recv' && !c.excluded);
  const total = Math.max(1, Math.round((req.rate * req.durationMs) / 1000));
  const interval = 1000 / req.rate;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let seq = 0;
  let sendFailed = 0;
  let lag = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      const due = Math.min(total, Math.floor((now - t0) / interval) + 1);
      if (due > seq) lag = Math.max(lag, now - (t0 + seq * interval));
      while (seq < due) {
        const sched = t0 + seq * interval;
        if (!sendOne(st, pubs, seq, Math.round(sched * 1000), req.payloadBytes)) sendFailed++;
        seq++;
      }
      if (seq >= total) resolve();
      else setTimeout(tick, Math.max(0, Math.min(1, t0 + seq * interval - performance.now())));
    };
    tick();
  });
  const sendEnd = performance.now();
  await waitFor(() => st.recv >= st.expected, req.drainMs);
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const sendDur = Math.max(sendEnd - t0, interval * total) / 1000;
  return {
    rate: req.rate,
    durationMs: req.durationMs,
    sent: seq - sendFailed,
    sendFailed,
    expected: st.expected,
    received: st.recv,
    dup: st.dup,
    outOfOrder: st.ooo,
    late,
    lost: Math.max(0, st.expected - st.recv),
    offeredPerSec: st.expected / sendDur,
    deliveredPerSec: st.recv / sendDur,
    p50: st.hist.percentile(50),
    p99: st.hist.percentile(99),
    p999: st.hist.percentile(99.9),
    max: st.hist.max,
    loadgenCpuPct: ((cpu.user + cpu.system) / 1000 / wall) * 100,
    sendLagMs: lag,
    closedByServer,
    errors: errorsSeen,
    wallMs: wall,
    hist: st.hist.toJSON(),
  };
}

async function connectMore(n: number): Promise<unknown> {
  const list: BenchClient[] = [];
  for (let i = 0; i < n; i++) list.push(newClient(['c0'], 'recv'));
  await createSessions(list);
  const cpu0 = process.cpuUsage();
  const r = await connectAll(list, n);
  const cpu = process.cpuUsage(cpu0);
  clients.push(...list);
  recount();
  return { ...r, perSec: (r.ok / r.ms) * 1000, loadgenCpuPct: ((cpu.user + cpu.system) / 1000 / r.ms) * 100 };
}

function pctl(sorted: number[], q: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.ceil((q / 100) * sorted.length) - 1)]!;
}

async function storm(req: Extract<LoadgenRequest, { cmd: 'storm' }>): Promise<unknown> {
  const targets = clients.filter((c) => c.role !== 'pub' && c.ready);
  dropping = true;
  for (const c of targets) {
    const w = c.ws;
    c.ws = null;
    c.ready = false;
    w?.destroy();
  }
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const times: number[] = [];
  let attempts = 0;
  const reasons: Record<string, number> = {};
  const attempt = (c: BenchClient, k: number) => {
    attempts++;
    void connect(c, 10_000).then((why) => {
      if (!why) {
        times.push(performance.now() - t0);
        return;
      }
      reasons[why] = (reasons[why] ?? 0) + 1;
      setTimeout(() => attempt(c, k + 1), Math.random() * Math.min(5000, 250 * 2 ** k));
    });
  };
  for (const c of targets) setTimeout(() => attempt(c, 0), Math.random() * req.jitterMs);
  await waitFor(() => times.length >= targets.length, req.timeoutMs, 10);
  dropping = false;
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  times.sort((a, b) => a - b);
  return {
    clients: targets.length,
    back: times.length,
    attempts,
    reasons,
    jitterMs: req.jitterMs,
    t50: pctl(times, 50),
    t99: times.length >= Math.ceil(targets.length * 0.99) ? times[Math.ceil(targets.length * 0.99) - 1]! : null,
    t100: times.length === targets.length ? times[times.length - 1]! : null,
    loadgenCpuPct: ((cpu.user + cpu.system) / 1000 / wall) * 100,
  };
}

async function resume(req: Extract<LoadgenRequest, { cmd: 'resume' }>): Promise<unknown> {
  const receivers = clients.filter((c) => c.role === 'recv' && c.ready);
  const pub = clients.find((c) => c.role === 'pub' && c.ready);
  if (!pub?.ws) throw new Error('no publisher');
  dropping = true;
  for (const c of receivers) {
    const w = c.ws;
    c.ws = null;
    c.ready = false;
    c.gaps = 0;
    c.recovered = undefined;
    w?.destroy();
  }
  const st = beginStep();
  resetSyncSeen();
  for (let seq = 0; seq < req.missed; seq++) {
    pub.ws.sendText(proto.pub('r0', payload(st.id, pub.idx, seq, Math.round(performance.now() * 1000), 100), `p${pub.idx}s${st.id}n${seq}`));
  }
  const sync = proto.sync();
  if (sync) pub.ws.sendText(sync);
  const synced = await waitFor(() => syncSeen >= (sync ? 1 : req.missed), 10_000);
  if (!synced) throw new Error(`publisher not synced (${syncSeen})`);
  st.expected = receivers.length * req.missed;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const fails: Record<string, number> = {};
  await Promise.all(
    receivers.map(async (c) => {
      const why = await connect(c);
      if (why) fails[why] = (fails[why] ?? 0) + 1;
    }),
  );
  const connectedMs = performance.now() - t0;
  await waitFor(() => st.recv >= st.expected, req.timeoutMs);
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  dropping = false;
  let gaps = 0;
  let notRecovered = 0;
  for (const c of receivers) {
    gaps += c.gaps;
    if (c.recovered === false) notRecovered++;
  }
  return {
    clients: receivers.length,
    missed: req.missed,
    expected: st.expected,
    received: st.recv,
    dup: st.dup,
    outOfOrder: st.ooo,
    lost: Math.max(0, st.expected - st.recv),
    gaps,
    notRecovered,
    connectFailures: fails,
    connectedMs,
    ms,
    loadgenCpuPct: ((cpu.user + cpu.system) / 1000 / ms) * 100,
  };
}

function slow(fraction: number): unknown {
  const receivers = clients.filter((c) => c.role === 'recv' && c.ready);
  const every = Math.max(1, Math.round(1 / fraction));
  let n = 0;
  for (let i = 0; i < receivers.length; i += every) {
    const c = receivers[i]!;
    c.excluded = true;
    c.ws?.pause();
    n++;
  }
  recount();
  return { slow: n };
}

async function unslow(waitMs: number): Promise<unknown> {
  const slowOnes = clients.filter((c) => c.excluded);
  const open = () => slowOnes.filter((c) => c.ws !== null).length;
  for (const c of slowOnes) c.ws?.resume();
  await waitFor(() => open() === 0, waitMs, 20);
  return { slow: slowOnes.length, closedByServer: slowOnes.length - open() };
}

async function handle(req: LoadgenRequest): Promise<unknown> {
  switch (req.cmd) {
    case 'init':
      return init(req);
    case 'step':
      return step(req);
    case 'connect':
      return connectMore(req.n);
    case 'storm':
      return storm(req);
    case 'resume':
      return resume(req);
    case 'slow':
      return slow(req.fraction);
    case 'unslow':
      return unslow(req.waitMs);
    case 'shutdown':
      dropping = true;
      for (const c of clients) c.ws?.destroy();
      setImmediate(() => process.exit(0));
      return { ok: true };
  }
}

if (process.send) {
  process.on('message', (m: { id: number; req: LoadgenRequest }) => {
    handle(m.req).then(
      (result) => process.send!({ id: m.id, ok: true, result }),
      (err: unknown) => process.send!({ id: m.id, ok: false, error: err instanceof Error ? err.message : String(err) }),
    );
  });
  process.on('disconnect', () => process.exit(0));
}
