/**
 * Bench scenarios. Each starts a fresh server process for one system and a
 * fresh load generator, runs, stops both, and returns plain data. Servers run
 * one at a time, so every system gets core 0 to itself and the load generator
 * core 1.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { startSystem, Loadgen, machineBusySeconds, profileDuring, type SystemProc, type Memory } from './systems.js';
import type { SystemKind } from './protocols.js';
import type { StepResult } from './loadgen.js';

/** Latency bound for a step to count toward capacity, µs. */
export const P99_BOUND_US = 250_000;
/** Load generator CPU above this marks a measurement client-bound. */
export const CLIENT_BOUND_PCT = 85;
/** CPU used by other processes on the machine above this (% of one core) marks a step noisy. */
export const NOISY_PCT = 20;

export interface BenchSizes {
  quick: boolean;
  stepMs: number;
  drainMs: number;
  fanout: { name: string; n: number; rates: number[] }[];
  /** The fan-out scenario whose server gets the idle-memory and storm measurements. */
  bigRoom: string;
  groups: { n: number; groupSize: number; rates: number[] };
  connRate: number;
  storm: { jitterMs: number; timeoutMs: number };
  resume: { n: number; missed: number };
  slow: { n: number; rate: number; payloadBytes: number; stepMs: number; fraction: number };
}

export function sizes(quick: boolean): BenchSizes {
  if (quick) {
    return {
      quick,
      stepMs: 1000,
      drainMs: 1500,
      fanout: [{ name: 'room-500', n: 500, rates: [20, 100, 400, 1600] }],
      bigRoom: 'room-500',
      groups: { n: 1000, groupSize: 10, rates: [1000, 5000, 20000] },
      connRate: 500,
      storm: { jitterMs: 500, timeoutMs: 20_000 },
      resume: { n: 200, missed: 100 },
      slow: { n: 200, rate: 50, payloadBytes: 32_000, stepMs: 2000, fraction: 0.01 },
    };
  }
  return {
    quick,
    stepMs: 1500,
    drainMs: 1500,
    fanout: [
      { name: 'room-1k', n: 1000, rates: [10, 50, 100, 200, 400, 800] },
      { name: 'room-10k', n: 10_000, rates: [1, 5, 10, 20, 40, 80] },
    ],
    bigRoom: 'room-10k',
    groups: { n: 10_000, groupSize: 10, rates: [2500, 5000, 10_000, 20_000, 40_000] },
    connRate: 2000,
    storm: { jitterMs: 1000, timeoutMs: 30_000 },
    resume: { n: 1000, missed: 100 },
    slow: { n: 200, rate: 50, payloadBytes: 32_000, stepMs: 6000, fraction: 0.01 },
  };
}

/** One load step as reported: the load generator's figures plus the server's CPU. */
export interface Step extends Omit<StepResult, 'hist'> {
  serverCpuPct: number;
  cpuUsPerDelivery: number;
  clientBound: boolean;
  /** CPU used by processes other than the server and the load generator during the step, % of one core. */
  otherCpuPct: number;
  noisy: boolean;
  /** p99 within bound and nothing lost, duplicated or reordered. */
  ok: boolean;
}

export interface FanoutResult {
  clients: number;
  connectMs: number;
  connectFailed: number;
  connectReasons: Record<string, number>;
  steps: Step[];
  /** Highest offered deliveries/s of a passing step (the climb stops at the first failure at or above ~50k/s, or after two failures in a row). */
  capacity: number | null;
  /** True if the step that ended the climb (or the top step) was client-bound: capacity is then a lower bound. */
  capacityClientBound: boolean;
  idle?: { clients: number; rssPerConn: number; heapPerConn: number; before: Memory; after: Memory };
  storm?: StormResult;
  error?: string;
}

export interface StormResult {
  clients: number;
  back: number;
  attempts: number;
  reasons: Record<string, number>;
  jitterMs: number;
  t50: number | null;
  t99: number | null;
  t100: number | null;
  loadgenCpuPct: number;
}

/** Measure server CPU and the machine's other load around one load-generator step. */
export async function measuredStep(sys: SystemProc | SystemProc[], lg: Loadgen, req: { rate: number; durationMs: number; drainMs: number; payloadBytes: number }): Promise<Step> {
  const list = Array.isArray(sys) ? sys : [sys];
  const c0 = list.reduce((a, x) => a + x.cpu(), 0);
  const m0 = machineBusySeconds();
  const r = await lg.call<StepResult>({ cmd: 'step', ...req });
  const cpu = list.reduce((a, x) => a + x.cpu(), 0) - c0;
  const busyPct = ((machineBusySeconds() - m0) * 1e5) / r.wallMs;
  return toStep(r, cpu, busyPct);
}

function toStep(r: StepResult, cpuSec: number, machineBusyPct: number): Step {
  const { hist: _h, ...rest } = r;
  void _h;
  const serverCpuPct = (cpuSec * 1000 * 100) / r.wallMs;
  const otherCpuPct = Math.max(0, machineBusyPct - serverCpuPct - r.loadgenCpuPct);
  return {
    ...rest,
    otherCpuPct,
    noisy: otherCpuPct > NOISY_PCT,
    serverCpuPct,
    cpuUsPerDelivery: r.received > 0 ? (cpuSec * 1e6) / r.received : NaN,
    clientBound: r.loadgenCpuPct > CLIENT_BOUND_PCT,
    ok: r.p99 <= P99_BOUND_US && r.lost === 0 && r.dup === 0 && r.outOfOrder === 0 && r.received > 0,
  };
}

async function withSystem<T>(kind: SystemKind, fn: (sys: SystemProc, lg: Loadgen) => Promise<T>, recovery = false): Promise<T> {
  const sys = await startSystem(kind, { recovery });
  const lg = new Loadgen();
  try {
    return await fn(sys, lg);
  } finally {
    await lg.stop();
    await sys.stop();
  }
}

interface InitResult {
  ms: number;
  ok: number;
  failed: number;
  reasons: Record<string, number>;
  sessionMs: number;
}

async function runSteps(sys: SystemProc, lg: Loadgen, rates: number[], s: BenchSizes, payloadBytes = 100): Promise<Step[]> {
  // warm-up (JIT), not reported
  await lg.call({ cmd: 'step', rate: rates[0]!, durationMs: 300, drainMs: s.drainMs, payloadBytes });
  const steps: Step[] = [];
  let fails = 0;
  for (const rate of rates) {
    const st = await measuredStep(sys, lg, { rate, durationMs: s.stepMs, drainMs: s.drainMs, payloadBytes });
    steps.push(st);
    fails = st.ok ? 0 : fails + 1;
    // always run through the fixed 50k deliveries/s step (CPU per delivery is taken there), then stop at a failure
    if (!st.ok && (st.offeredPerSec >= 40_000 || fails >= 2)) break;
  }
  return steps;
}

function capacityOf(steps: Step[]): { capacity: number | null; bound: boolean } {
  let cap: number | null = null;
  for (const st of steps) if (st.ok) cap = st.offeredPerSec;
  const last = steps[steps.length - 1];
  return { capacity: cap, bound: !!last && last.clientBound };
}

/** One room of n clients at stepped rates; optionally idle memory per connection and the reconnect storm. */
export async function fanout(kind: SystemKind, n: number, rates: number[], s: BenchSizes, extras: boolean): Promise<FanoutResult> {
  return withSystem(kind, async (sys, lg) => {
    const before = extras ? await sys.memory() : undefined;
    const init = await lg.call<InitResult>({ cmd: 'init', system: kind, host: sys.host, port: sys.port, layout: { kind: 'room', n, pubs: 4 }, concurrency: 256 });
    const res: FanoutResult = {
      clients: n,
      connectMs: init.ms,
      connectFailed: init.failed,
      connectReasons: init.reasons,
      steps: [],
      capacity: null,
      capacityClientBound: false,
    };
    if (init.failed > 0) {
      res.error = `${init.failed} clients failed to connect: ${JSON.stringify(init.reasons)}`;
      return res;
    }
    if (extras && before) {
      const after = await sys.memory();
      res.idle = { clients: n, rssPerConn: (after.rss - before.rss) / n, heapPerConn: (after.heapUsed - before.heapUsed) / n, before, after };
      res.storm = await lg.call<StormResult>({ cmd: 'storm', jitterMs: s.storm.jitterMs, timeoutMs: s.storm.timeoutMs });
    }
    const dir = process.env.CONFAB_BENCH_PROFILE_DIR;
    if (dir && kind === 'confab') {
      // sample the server's CPU during the load steps only (not connection setup)
      const { value, profile } = await profileDuring(sys, () => runSteps(sys, lg, rates, s));
      res.steps = value;
      writeFileSync(path.join(dir, `confab-room-${n}-${Date.now()}.cpuprofile`), JSON.stringify(profile));
    } else res.steps = await runSteps(sys, lg, rates, s);
    const c = capacityOf(res.steps);
    res.capacity = c.capacity;
    res.capacityClientBound = c.bound;
    return res;
  });
}

export interface GroupsResult {
  clients: number;
  groupSize: number;
  connectMs: number;
  connectFailed: number;
  steps: Step[];
  capacity: number | null;
  capacityClientBound: boolean;
  error?: string;
}

/** n clients, each in a personal room and a group of groupSize; members publish to their group. */
export async function groups(kind: SystemKind, s: BenchSizes): Promise<GroupsResult> {
  const { n, groupSize, rates } = s.groups;
  return withSystem(kind, async (sys, lg) => {
    const init = await lg.call<InitResult>({ cmd: 'init', system: kind, host: sys.host, port: sys.port, layout: { kind: 'groups', n, groupSize }, concurrency: 256 });
    const res: GroupsResult = { clients: n, groupSize, connectMs: init.ms, connectFailed: init.failed, steps: [], capacity: null, capacityClientBound: false };
    if (init.failed > 0) {
      res.error = `${init.failed} clients failed to connect: ${JSON.stringify(init.reasons)}`;
      return res;
    }
    res.steps = await runSteps(sys, lg, rates, s);
    const c = capacityOf(res.steps);
    res.capacity = c.capacity;
    res.capacityClientBound = c.bound;
    return res;
  });
}

export interface ConnRateResult {
  n: number;
  ok: number;
  failed: number;
  ms: number;
  perSec: number;
  reasons: Record<string, number>;
  loadgenCpuPct: number;
  clientBound: boolean;
}

/** n clients connect at once (sessions made beforehand); time until all are subscribed. */
export async function connRate(kind: SystemKind, s: BenchSizes): Promise<ConnRateResult> {
  return withSystem(kind, async (sys, lg) => {
    await lg.call({ cmd: 'init', system: kind, host: sys.host, port: sys.port, layout: { kind: 'room', n: 0, pubs: 0 }, concurrency: 1 });
    const r = await lg.call<Omit<ConnRateResult, 'n' | 'clientBound'>>({ cmd: 'connect', n: s.connRate });
    return { n: s.connRate, ...r, clientBound: r.loadgenCpuPct > CLIENT_BOUND_PCT };
  });
}

export interface ResumeResult {
  clients: number;
  missed: number;
  expected: number;
  received: number;
  dup: number;
  outOfOrder: number;
  lost: number;
  gaps: number;
  notRecovered: number;
  connectFailures: Record<string, number>;
  connectedMs: number;
  ms: number;
  loadgenCpuPct: number;
}

/** n clients drop, miss `missed` messages, come back with their position: time until all caught up. */
export async function resume(kind: SystemKind, s: BenchSizes): Promise<ResumeResult | { skipped: string }> {
  if (kind === 'raw') return { skipped: 'raw ws has no history to resume from' };
  return withSystem(
    kind,
    async (sys, lg) => {
      const init = await lg.call<InitResult>({ cmd: 'init', system: kind, host: sys.host, port: sys.port, layout: { kind: 'room', n: s.resume.n, pubs: 1 }, concurrency: 256 });
      if (init.failed > 0) throw new Error(`resume setup: ${init.failed} failed ${JSON.stringify(init.reasons)}`);
      await lg.call({ cmd: 'step', rate: 50, durationMs: 200, drainMs: 2000, payloadBytes: 100 });
      return lg.call<ResumeResult>({ cmd: 'resume', missed: s.resume.missed, timeoutMs: 20_000 });
    },
    true,
  );
}

export interface SlowResult {
  clients: number;
  slow: number;
  clean: Step;
  withSlow: Step;
  rssStart: number;
  rssPeakClean: number;
  rssPeakSlow: number;
  /** Peak RSS during the slow step minus peak during the clean step. */
  rssGrowth: number;
  slowClosedByServer: number;
}

async function sampledStep(sys: SystemProc, lg: Loadgen, s: BenchSizes): Promise<{ step: Step; peak: number }> {
  let peak = sys.rss();
  const t = setInterval(() => (peak = Math.max(peak, sys.rss())), 50);
  try {
    const step = await measuredStep(sys, lg, { rate: s.slow.rate, durationMs: s.slow.stepMs, drainMs: s.drainMs, payloadBytes: s.slow.payloadBytes });
    return { step, peak: Math.max(peak, sys.rss()) };
  } finally {
    clearInterval(t);
  }
}

/**
 * A room at fixed load with 32 KB messages, first clean, then with a fraction of clients not reading.
 * On loopback the kernel absorbs ~4 MB per stalled socket before the server has to buffer, so the
 * per-client byte rate (1.6 MB/s) and the step length are chosen to go well past that.
 */
export async function slowConsumers(kind: SystemKind, s: BenchSizes): Promise<SlowResult> {
  return withSystem(kind, async (sys, lg) => {
    const init = await lg.call<InitResult>({ cmd: 'init', system: kind, host: sys.host, port: sys.port, layout: { kind: 'room', n: s.slow.n, pubs: 4 }, concurrency: 256 });
    if (init.failed > 0) throw new Error(`slow setup: ${init.failed} failed ${JSON.stringify(init.reasons)}`);
    await lg.call({ cmd: 'step', rate: s.slow.rate, durationMs: 300, drainMs: s.drainMs, payloadBytes: s.slow.payloadBytes });
    const rssStart = sys.rss();
    const clean = await sampledStep(sys, lg, s);
    const sl = await lg.call<{ slow: number }>({ cmd: 'slow', fraction: s.slow.fraction });
    const withSlow = await sampledStep(sys, lg, s);
    const un = await lg.call<{ closedByServer: number }>({ cmd: 'unslow', waitMs: 3000 });
    return {
      clients: s.slow.n,
      slow: sl.slow,
      clean: clean.step,
      withSlow: withSlow.step,
      rssStart,
      rssPeakClean: clean.peak,
      rssPeakSlow: withSlow.peak,
      rssGrowth: withSlow.peak - clean.peak,
      slowClosedByServer: un.closedByServer,
    };
  });
}
