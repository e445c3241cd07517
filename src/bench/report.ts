/**
 * Aggregation and reporting: medians with ranges over runs, confab's ratios to
 * each baseline (median of per-run ratios, same run), the target check, and the
 * same tables rendered for the terminal and as markdown.
 */
import { summarize, ratioSummary, fmtNum, fmtMs, type Summary } from './stats.js';
import { P99_BOUND_US, CLIENT_BOUND_PCT, NOISY_PCT, type BenchSizes, type FanoutResult, type GroupsResult, type ConnRateResult, type ResumeResult, type SlowResult, type Step } from './scenarios.js';

export interface RunRecord {
  run: number;
  scenario: string;
  system: string;
  result: unknown;
  error?: string;
  ms: number;
}

export interface BenchMeta {
  date: string;
  command: string;
  machine: string;
  pinning: string;
  quick: boolean;
  runs: number;
  systems: string[];
  notes: string[];
  sizes: BenchSizes;
  totalSeconds?: number;
  /** CPU used by other processes during load steps, % of one core. */
  otherLoad?: { median: number; max: number; steps: number };
}

/** One point of a latency/throughput curve: medians over runs at one offered rate. */
export interface CurvePoint {
  rate: number;
  offered: number;
  delivered: number;
  p50: number;
  p99: number;
  p999: number;
  ok: boolean;
  clientBound: boolean;
  /** CPU used by other processes on the machine during the step, % of one core (median over runs). */
  other: number;
  runs: number;
}

export interface LoadSummary {
  capacity: Summary | null;
  clientBound: boolean;
  curve: CurvePoint[];
  /** At the fixed 50k deliveries/s step, when the scenario has one. */
  p50At50k: Summary | null;
  p99At50k: Summary | null;
  p999At50k: Summary | null;
  cpuUsAt50k: Summary | null;
  /** 1 s / cpuUsAt50k: capacity if server CPU were the only limit. */
  cpuCapacity: Summary | null;
  errors: string[];
}

export interface Aggregate {
  meta: BenchMeta;
  load: Record<string, Record<string, LoadSummary>>;
  /** Per-run raw series, for ratios. */
  series: Record<string, Record<string, (number | null)[]>>;
  tables: Table[];
  targets: Target[];
}

export interface Table {
  title: string;
  header: string[];
  rows: string[][];
  note?: string;
}

export interface Target {
  name: string;
  ratio: Summary | null;
  want: string;
  met: boolean | null;
}

const FIXED_LOAD = 50_000;

function get<T>(records: RunRecord[], scenario: string, system: string, runs: number): (T | null)[] {
  const out: (T | null)[] = Array.from({ length: runs }, () => null);
  for (const r of records) if (r.scenario === scenario && r.system === system && !r.error && r.result) out[r.run] = r.result as T;
  return out;
}

/** The step offering 50k deliveries/s (fan-out), or the one nearest to it (groups). */
function fixedStep(steps: Step[], n: number | null): Step | undefined {
  if (n) return steps.find((s) => Math.abs(s.rate * n - FIXED_LOAD) < 1);
  let best: Step | undefined;
  for (const s of steps) if (!best || Math.abs(Math.log(s.offeredPerSec / FIXED_LOAD)) < Math.abs(Math.log(best.offeredPerSec / FIXED_LOAD))) best = s;
  return best;
}

/** Deliveries/s one core could make if CPU were the only limit: 1 s / CPU per delivery. Robust to a shared machine. */
const cpuCap = (us: number | null | undefined) => (typeof us === 'number' && us > 0 ? 1e6 / us : null);

function loadSummary(results: ({ steps: Step[]; capacity: number | null; capacityClientBound: boolean; error?: string } | null)[], n: number | null, errs: string[]): LoadSummary {
  const byRate = new Map<number, Step[]>();
  for (const r of results) for (const st of r?.steps ?? []) byRate.set(st.rate, [...(byRate.get(st.rate) ?? []), st]);
  const curve: CurvePoint[] = [...byRate.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([rate, st]) => ({
      rate,
      offered: summarize(st.map((x) => x.offeredPerSec))!.median,
      delivered: summarize(st.map((x) => x.deliveredPerSec))!.median,
      p50: summarize(st.map((x) => x.p50))?.median ?? NaN,
      p99: summarize(st.map((x) => x.p99))?.median ?? NaN,
      p999: summarize(st.map((x) => x.p999))?.median ?? NaN,
      ok: st.filter((x) => x.ok).length * 2 > st.length,
      clientBound: st.some((x) => x.clientBound),
      other: summarize(st.map((x) => x.otherCpuPct))?.median ?? NaN,
      runs: st.length,
    }));
  const fixed = results.map((r) => (r ? fixedStep(r.steps, n) : undefined));
  return {
    capacity: summarize(results.map((r) => r?.capacity)),
    clientBound: results.some((r) => r?.capacityClientBound),
    curve,
    p50At50k: summarize(fixed.map((s) => s?.p50)),
    p99At50k: summarize(fixed.map((s) => s?.p99)),
    p999At50k: summarize(fixed.map((s) => s?.p999)),
    cpuUsAt50k: summarize(fixed.map((s) => s?.cpuUsPerDelivery)),
    cpuCapacity: summarize(fixed.map((s) => cpuCap(s?.cpuUsPerDelivery))),
    errors: [...errs, ...results.flatMap((r) => (r?.error ? [r.error] : []))],
  };
}

const fmtS = (s: Summary | null, f: (n: number) => string = (n) => fmtNum(n), runs = 1): string => {
  if (!s) return '–';
  if (runs <= 1 || s.n <= 1 || s.min === s.max) return f(s.median);
  return `${f(s.median)} [${f(s.min)}–${f(s.max)}]`;
};
const fmtR = (s: Summary | null): string => (s ? `${s.median.toFixed(2)}×${s.n > 1 && s.min !== s.max ? ` [${s.min.toFixed(2)}–${s.max.toFixed(2)}]` : ''}` : '–');
const mib = (b: number) => (b / 2 ** 20).toFixed(1);
const kib = (b: number) => (b / 1024).toFixed(1);

export function aggregate(records: RunRecord[], meta: BenchMeta): Aggregate {
  const runs = meta.runs;
  const systems = [...meta.systems];
  const s = meta.sizes;
  const load: Aggregate['load'] = {};
  const series: Aggregate['series'] = {};
  const put = (metric: string, system: string, vals: (number | null | undefined)[]) => {
    (series[metric] ??= {})[system] = vals.map((v) => (typeof v === 'number' && Number.isFinite(v) ? v : null));
  };
  const errorsOf = (scenario: string, system: string) => records.filter((r) => r.scenario === scenario && r.system === system && r.error).map((r) => `run ${r.run + 1}: ${r.error}`);
  const tables: Table[] = [];
  const sysLabel = (k: string) => (k === 'raw' ? 'raw ws' : k === 'sio' ? 'Socket.IO 4' : k);
  const ratioCols = (metric: string, sys: string): string[] => {
    if (sys !== 'confab') return ['', ''];
    const c = series[metric]?.confab ?? [];
    return [fmtR(ratioSummary(c, series[metric]?.raw ?? [])), fmtR(ratioSummary(c, series[metric]?.sio ?? []))];
  };

  const loadScenarios: { name: string; n: number | null; title: string }[] = [
    ...s.fanout.map((f) => ({ name: f.name, n: f.n, title: `Fan-out: one room of ${f.n.toLocaleString('en')} clients, 4 publishers, ~100-byte messages` })),
    { name: 'groups', n: null, title: `Many rooms: ${s.groups.n.toLocaleString('en')} clients, each in a personal room and a group of ${s.groups.groupSize}; members publish to their group` },
  ];
  for (const sc of loadScenarios) {
    const per: Record<string, LoadSummary> = {};
    for (const sys of systems) {
      const res = get<FanoutResult | GroupsResult>(records, sc.name, sys, runs);
      if (res.every((r) => r === null) && errorsOf(sc.name, sys).length === 0) continue;
      per[sys] = loadSummary(res, sc.n, errorsOf(sc.name, sys));
      put(`${sc.name}.capacity`, sys, res.map((r) => r?.capacity));
      const fixed = res.map((r) => (r ? fixedStep(r.steps, sc.n) : undefined));
      put(`${sc.name}.p99At50k`, sys, fixed.map((x) => x?.p99));
      put(`${sc.name}.cpuUsAt50k`, sys, fixed.map((x) => x?.cpuUsPerDelivery));
      put(`${sc.name}.cpuCapacity`, sys, fixed.map((x) => cpuCap(x?.cpuUsPerDelivery)));
    }
    if (Object.keys(per).length === 0) continue;
    load[sc.name] = per;
    const rows = Object.entries(per).map(([sys, l]) => [
      sysLabel(sys),
      fmtS(l.capacity, fmtNum, runs) + (l.clientBound ? ' (client-bound)' : ''),
      ...ratioCols(`${sc.name}.capacity`, sys),
      fmtS(l.cpuCapacity, fmtNum, runs),
      ...ratioCols(`${sc.name}.cpuCapacity`, sys),
      ...(sc.n ? [fmtS(l.p50At50k, fmtMs, runs), fmtS(l.p99At50k, fmtMs, runs), fmtS(l.p999At50k, fmtMs, runs)] : []),
      fmtS(l.cpuUsAt50k, (v) => v.toFixed(2), runs),
      ...ratioCols(`${sc.name}.cpuUsAt50k`, sys),
      l.errors.length ? `errors: ${l.errors.length}` : '',
    ]);
    tables.push({
      title: sc.title,
      header: ['system', 'capacity deliveries/s', '× raw', '× sio', 'CPU-bound capacity', '× raw', '× sio', ...(sc.n ? ['p50 ms @50k/s', 'p99 ms @50k/s', 'p99.9 ms @50k/s'] : []), `CPU µs/delivery @${sc.n ? '' : '~'}50k/s`, '× raw', '× sio', ''],
      rows,
      note: `capacity = highest offered deliveries/s with p99 ≤ ${P99_BOUND_US / 1000} ms and 0 lost/duplicated/reordered; "client-bound" = the load generator used > ${CLIENT_BOUND_PCT}% of its core at the step that ended the climb, so the true capacity may be higher. CPU-bound capacity = 1 s / server CPU per delivery at ${sc.n ? '' : 'the step nearest '}50k deliveries/s: what one core could deliver if CPU were the only limit (not distorted by other load on the machine).`,
    });
    const stepRows: string[][] = [];
    for (const [sys, l] of Object.entries(per))
      for (const p of l.curve)
        stepRows.push([sysLabel(sys), String(p.rate), fmtNum(p.offered), fmtNum(p.delivered), fmtMs(p.p50), fmtMs(p.p99), fmtMs(p.p999), p.ok ? 'ok' : 'FAIL', p.clientBound ? 'yes' : '', Number.isFinite(p.other) ? p.other.toFixed(0) : '–', String(p.runs)]);
    tables.push({
      title: `${sc.name}: steps (medians over runs)`,
      header: ['system', 'msgs/s', 'offered/s', 'delivered/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'pass', 'client-bound', 'other load %', 'runs'],
      rows: stepRows,
      note: `other load % = CPU used by processes other than the server and the load generator during the step (% of one core); above ${NOISY_PCT}% the machine was shared and latency figures are inflated.`,
    });
  }

  // idle memory + storm (from the big-room fan-out)
  {
    const rows: string[][] = [];
    for (const sys of systems) {
      const res = get<FanoutResult>(records, s.bigRoom, sys, runs);
      if (res.every((r) => !r?.idle)) continue;
      put('idle.rssPerConn', sys, res.map((r) => r?.idle?.rssPerConn));
      put('idle.heapPerConn', sys, res.map((r) => r?.idle?.heapPerConn));
      put('storm.t99', sys, res.map((r) => r?.storm?.t99));
      rows.push([
        sysLabel(sys),
        fmtS(summarize(series['idle.rssPerConn']![sys]!), kib, runs),
        ...ratioCols('idle.rssPerConn', sys),
        fmtS(summarize(series['idle.heapPerConn']![sys]!), kib, runs),
        fmtS(summarize(res.map((r) => r?.storm?.t50)), (v) => v.toFixed(0), runs),
        fmtS(summarize(series['storm.t99']![sys]!), (v) => v.toFixed(0), runs),
        ...ratioCols('storm.t99', sys),
        fmtS(summarize(res.map((r) => (r?.storm ? r.storm.clients - r.storm.back : null))), (v) => v.toFixed(0), runs),
      ]);
    }
    const n = s.fanout.find((f) => f.name === s.bigRoom)?.n ?? 0;
    if (rows.length)
      tables.push({
        title: `Idle memory per connection (${n.toLocaleString('en')} connections, after full GC) and reconnect storm (${n.toLocaleString('en')} dropped at once, reconnect with ${s.storm.jitterMs} ms jitter)`,
        header: ['system', 'RSS KiB/conn', '× raw', '× sio', 'heap KiB/conn', 'storm: 50% back ms', '99% back ms', '× raw', '× sio', 'not back'],
        rows,
      });
  }
  {
    const rows: string[][] = [];
    for (const sys of systems) {
      const res = get<ConnRateResult>(records, 'connrate', sys, runs);
      if (res.every((r) => r === null)) continue;
      put('connrate.perSec', sys, res.map((r) => r?.perSec));
      rows.push([
        sysLabel(sys),
        fmtS(summarize(series['connrate.perSec']![sys]!), fmtNum, runs) + (res.some((r) => r?.clientBound) ? ' (client-bound)' : ''),
        ...ratioCols('connrate.perSec', sys),
        fmtS(summarize(res.map((r) => r?.ms)), (v) => v.toFixed(0), runs),
        fmtS(summarize(res.map((r) => r?.failed)), (v) => v.toFixed(0), runs),
      ]);
    }
    if (rows.length) tables.push({ title: `Connection rate: ${s.connRate.toLocaleString('en')} clients connect at once (until subscribed; sessions made beforehand)`, header: ['system', 'connections/s', '× raw', '× sio', 'all in ms', 'failed'], rows });
  }
  {
    const rows: string[][] = [];
    for (const sys of systems) {
      const raw = records.filter((r) => r.scenario === 'resume' && r.system === sys);
      if (raw.length === 0) continue;
      const skipped = raw.find((r) => r.result && typeof r.result === 'object' && 'skipped' in r.result);
      if (skipped) {
        rows.push([sysLabel(sys), 'n/a', '', '', '', '', (skipped.result as { skipped: string }).skipped]);
        continue;
      }
      const res = get<ResumeResult>(records, 'resume', sys, runs);
      put('resume.ms', sys, res.map((r) => r?.ms));
      rows.push([
        sysLabel(sys),
        fmtS(summarize(series['resume.ms']![sys]!), (v) => v.toFixed(0), runs),
        fmtS(summarize(res.map((r) => r?.lost)), (v) => v.toFixed(0), runs),
        fmtS(summarize(res.map((r) => r?.dup)), (v) => v.toFixed(0), runs),
        fmtS(summarize(res.map((r) => r?.outOfOrder)), (v) => v.toFixed(0), runs),
        fmtS(summarize(res.map((r) => r?.gaps)), (v) => v.toFixed(0), runs),
        errorsOf('resume', sys).join('; '),
      ]);
    }
    if (rows.length)
      tables.push({
        title: `Resume: ${s.resume.n.toLocaleString('en')} clients each miss ${s.resume.missed} messages, then reconnect at once with their position`,
        header: ['system', 'all caught up ms', 'lost', 'dup', 'reordered', 'gaps reported', ''],
        rows,
        note: 'Socket.IO 4 runs with connectionStateRecovery on for this scenario only.',
      });
  }
  {
    const rows: string[][] = [];
    for (const sys of systems) {
      const res = get<SlowResult>(records, 'slow', sys, runs);
      if (res.every((r) => r === null)) continue;
      rows.push([
        sysLabel(sys),
        fmtS(summarize(res.map((r) => r?.clean.p99)), fmtMs, runs),
        fmtS(summarize(res.map((r) => r?.withSlow.p99)), fmtMs, runs),
        fmtS(summarize(res.map((r) => r?.withSlow.lost)), (v) => v.toFixed(0), runs),
        fmtS(summarize(res.map((r) => r?.rssGrowth)), mib, runs),
        fmtS(summarize(res.map((r) => r?.slowClosedByServer)), (v) => v.toFixed(0), runs) + ` of ${res.find((r) => r)?.slow ?? '?'}`,
      ]);
    }
    if (rows.length)
      tables.push({
        title: `Slow consumers: room of ${s.slow.n.toLocaleString('en')} at ${fmtNum(s.slow.rate * s.slow.n)} deliveries/s of ${s.slow.payloadBytes}-byte messages for ${s.slow.stepMs / 1000} s; then again with ${s.slow.fraction * 100}% not reading`,
        header: ['system', 'others p99 ms (clean)', 'others p99 ms (with slow)', 'others lost', 'peak RSS growth MiB', 'slow ones closed by server'],
        rows,
      });
  }
  {
    const rows: string[][] = [];
    for (const r of records.filter((x) => x.scenario === 'bushop')) {
      if (r.error) {
        rows.push([`run ${r.run + 1}`, 'error', r.error, '', '', '']);
        continue;
      }
      const b = r.result as { single: Step | null; pair: Step | null; pairs?: Record<string, Step | string> };
      rows.push([`run ${r.run + 1}`, 'one gateway, in-process bus', fmtMs(b.single?.p50), fmtMs(b.single?.p99), b.single?.ok ? 'ok' : 'FAIL']);
      const pairs = b.pairs ?? (b.pair ? { nats: b.pair } : {});
      for (const [bus, st] of Object.entries(pairs)) {
        const label = `two gateways over ${bus === 'pubsub' ? 'Pub/Sub (emulator) + Redis history' : bus === 'nats' ? 'NATS + JetStream' : 'Redis pub/sub + Streams'}`;
        if (typeof st === 'string') rows.push([`run ${r.run + 1}`, label, '—', '—', st]);
        else rows.push([`run ${r.run + 1}`, label, fmtMs(st.p50), fmtMs(st.p99), st.ok ? 'ok' : 'FAIL']);
      }
    }
    if (rows.length) tables.push({ title: 'Bus hop at 50k deliveries/s: one gateway on the in-process bus vs two gateways over each bus (half the room on each; Pub/Sub is the local emulator)', header: ['run', 'setup', 'p50 ms', 'p99 ms', 'pass'], rows });
  }

  {
    const rows: string[][] = [];
    for (const r of records.filter((x) => x.scenario === 'fallback')) {
      if (r.error) {
        rows.push(['error', r.error, '', '', '', '', '']);
        continue;
      }
      for (const x of (r.result as { rows: { transport: string; receivers: number; delivered: number; expected: number; cpuUsPerDelivery: number; bytesPerDelivery: number; p50Ms: number; p99Ms: number }[] }).rows) {
        rows.push([x.transport, String(x.receivers), `${x.delivered}/${x.expected}`, x.cpuUsPerDelivery.toFixed(2), x.bytesPerDelivery.toFixed(0), x.p50Ms.toFixed(1), x.p99Ms.toFixed(1)]);
      }
    }
    if (rows.length) tables.push({ title: 'HTTP fallback (Server-Sent Events) vs WebSocket: one gateway, one room of N receivers each, the same publisher and rate; cost per delivery', header: ['transport', 'receivers', 'delivered', 'gateway CPU µs/delivery', 'bytes/delivery', 'p50 ms', 'p99 ms'], rows });
  }

  const others: number[] = [];
  for (const r of records) {
    const res = r.result as { steps?: Step[]; clean?: Step; withSlow?: Step } | null;
    for (const st of [...(res?.steps ?? []), ...(res?.clean ? [res.clean] : []), ...(res?.withSlow ? [res.withSlow] : [])]) others.push(st.otherCpuPct);
  }
  const o = summarize(others);
  if (o) {
    meta.otherLoad = { median: o.median, max: o.max, steps: o.n };
    if (o.median > NOISY_PCT) meta.notes.push(`the machine was shared: other processes used a median ${o.median.toFixed(0)}% of a core (max ${o.max.toFixed(0)}%) during load steps; latencies and capacities are pessimistic`);
  }
  const targets = computeTargets(series, records, runs, s);
  return { meta, load, series, tables, targets };
}

function computeTargets(series: Aggregate['series'], records: RunRecord[], runs: number, s: BenchSizes): Target[] {
  const t: Target[] = [];
  const r = (metric: string, base: string) => ratioSummary(series[metric]?.confab ?? [], series[metric]?.[base] ?? []);
  const add = (name: string, metric: string, base: string, op: '>=' | '<=', bound: number) => {
    if (!series[metric]?.confab || !series[metric]?.[base]) return;
    const ratio = r(metric, base);
    t.push({ name, ratio, want: `${op} ${bound}×`, met: ratio ? (op === '>=' ? ratio.median >= bound : ratio.median <= bound) : false });
  };
  for (const f of s.fanout) {
    add(`${f.name} capacity vs raw ws`, `${f.name}.capacity`, 'raw', '>=', 0.9);
    add(`${f.name} capacity vs Socket.IO`, `${f.name}.capacity`, 'sio', '>=', 1.6);
    add(`${f.name} CPU-bound capacity vs raw ws`, `${f.name}.cpuCapacity`, 'raw', '>=', 0.9);
    add(`${f.name} CPU-bound capacity vs Socket.IO`, `${f.name}.cpuCapacity`, 'sio', '>=', 1.6);
    add(`${f.name} CPU per delivery @50k/s vs raw ws`, `${f.name}.cpuUsAt50k`, 'raw', '<=', 1.15);
    add(`${f.name} p99 @50k/s vs raw ws`, `${f.name}.p99At50k`, 'raw', '<=', 1.2);
  }
  add('groups capacity vs raw ws', 'groups.capacity', 'raw', '>=', 0.9);
  add('groups capacity vs Socket.IO', 'groups.capacity', 'sio', '>=', 1.6);
  add('groups CPU-bound capacity vs raw ws', 'groups.cpuCapacity', 'raw', '>=', 0.9);
  add('groups CPU-bound capacity vs Socket.IO', 'groups.cpuCapacity', 'sio', '>=', 1.6);
  add('RSS per idle connection vs raw ws', 'idle.rssPerConn', 'raw', '<=', 1.3);
  add('RSS per idle connection vs Socket.IO', 'idle.rssPerConn', 'sio', '<=', 0.5);
  add('connections/s vs raw ws', 'connrate.perSec', 'raw', '>=', 0.8);
  add('connections/s vs Socket.IO', 'connrate.perSec', 'sio', '>=', 1.6);
  const res = get<ResumeResult>(records, 'resume', 'confab', runs).filter((x): x is ResumeResult => !!x && 'ms' in x);
  if (res.length) {
    const ms = summarize(res.map((x) => x.ms));
    const clean = res.every((x) => x.lost === 0 && x.dup === 0 && x.gaps === 0 && x.outOfOrder === 0);
    t.push({ name: `resume ${s.resume.n} × ${s.resume.missed} missed: time (ms), 0 gaps, 0 dup`, ratio: ms, want: '< 1000 ms, clean', met: !!ms && ms.median < 1000 && clean });
  }
  return t;
}

function renderText(t: Table): string {
  const all = [t.header, ...t.rows];
  const w = t.header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (c ?? '').padEnd(w[i]!)).join('  ').trimEnd();
  return [`== ${t.title}`, line(t.header), w.map((n) => '-'.repeat(n)).join('  '), ...t.rows.map(line), ...(t.note ? [`   ${t.note}`] : [])].join('\n');
}

function renderMd(t: Table): string {
  const esc = (c: string) => (c ?? '').replace(/\|/g, '\\|');
  return [`### ${t.title}`, '', `| ${t.header.map(esc).join(' | ')} |`, `|${t.header.map(() => '---').join('|')}|`, ...t.rows.map((r) => `| ${r.map(esc).join(' | ')} |`), ...(t.note ? ['', `_${t.note}_`] : []), ''].join('\n');
}

function targetTable(a: Aggregate): Table {
  return {
    title: 'Targets (confab vs baselines, ratios from the same run; median [range] over runs)',
    header: ['target', 'confab', 'want', 'met'],
    rows: a.targets.map((t) => [t.name, t.name.startsWith('resume') ? fmtS(t.ratio, (v) => v.toFixed(0), a.meta.runs) : fmtR(t.ratio), t.want, t.met === null ? '–' : t.met ? 'yes' : 'NO']),
  };
}

export function renderTable(a: Aggregate): string {
  const m = a.meta;
  const head = [
    `confab bench — ${m.date}`,
    `command: ${m.command}`,
    `machine: ${m.machine}; pinning: ${m.pinning}`,
    `runs per scenario: ${m.runs}${m.quick ? ' (QUICK MODE: one run, smaller N — not for comparison)' : ' (figures are medians [min–max])'}`,
    ...m.notes.map((n) => `note: ${n}`),
  ].join('\n');
  const tables = [...a.tables, ...(a.targets.length ? [targetTable(a)] : [])];
  return `${head}\n\n${tables.map(renderText).join('\n\n')}\n`;
}

export function renderMarkdown(a: Aggregate, charts: string[]): string {
  const m = a.meta;
  const tables = [...(a.targets.length ? [targetTable(a)] : []), ...a.tables];
  return [
    '# Benchmarks',
    '',
    'Produced by `npm run bench` (`src/bench/`). Every system runs in its own process on the same machine in the same run;',
    'each figure is the median of the runs with its range in brackets, and confab’s ratios are taken per run against the',
    'baselines measured in that run. See [the method](#method) below.',
    '',
    `- **Date:** ${m.date}`,
    `- **Command:** \`${m.command}\``,
    `- **Machine:** ${m.machine}`,
    `- **Pinning:** ${m.pinning}`,
    `- **Runs per scenario:** ${m.runs}${m.quick ? ' (quick mode: one run, smaller N; not for comparison)' : ''}`,
    `- **Total time:** ${m.totalSeconds ? `${m.totalSeconds.toFixed(0)} s` : '?'}`,
    ...m.notes.map((n) => `- Note: ${n}`),
    '',
    ...charts.map((c) => `![chart](${c})\n`),
    ...tables.map(renderMd),
    METHOD,
  ].join('\n');
}

const METHOD = `## Method

**Processes.** Each system under test runs alone in its own Node process, pinned with \`taskset\` to core 0 when the
machine has one; the load generator is another process pinned to core 1. Systems run one after another (never two
servers at once), and the order of systems rotates between runs. Every server is started with
\`--inspect=127.0.0.1:0\` so memory is read the same way for all (full GC through the inspector, then
\`process.memoryUsage()\`); server CPU comes from \`/proc/PID/stat\`, RSS from \`/proc/PID/status\`.

**Systems.**
- *raw ws*: \`src/bench/baselines.ts raw\` — \`ws\` server; a publish is framed once and the same bytes are written
  straight to every member's socket (the floor Node allows); a member with more than 1 MiB buffered is dropped.
- *Socket.IO 4*: \`src/bench/baselines.ts sio\` — \`socket.io\` 4.8, WebSocket transport only, no compression,
  \`socket.to(room).emit('msg', text)\`; connection-state recovery on only for the resume scenario.
- *confab*: \`node dist/cli/confab.js start\` with the in-process bus and the LMDB history (every publish is stored and
  synced before it is acknowledged and fanned out), \`LOG_LEVEL=warn\`, per-IP/rate limits raised so only the load is
  measured (\`CONFAB_MAX_CONN_PER_IP=100000\`, \`CONFAB_RATE_PER_SEC/BURST=1000000\`), \`CONFAB_RECENT_ON_JOIN=0\`,
  1 MiB send buffer per connection (the default).

**Load generator** (\`src/bench/loadgen.ts\`, \`wire.ts\`, \`protocols.ts\`). One process holds every client. It speaks
each wire protocol directly over a minimal WebSocket client written on \`net\` (reads into one shared buffer through
\`onread\`, frames parsed in place, client frames masked with a zero key), because the \`ws\` and \`socket.io-client\`
clients cost more per message than the servers they would measure. confab: \`POST /api/session\` per client (distinct
handles, not timed), \`/ws?token=…\` with subprotocol \`confab.v1\`, \`join\`/\`joined\`, \`pub\`, \`msg\`; Socket.IO:
\`/socket.io/?EIO=4&transport=websocket\`, \`0{…}\`, \`40{auth}\`, \`42[…]\`, ping \`2\` / pong \`3\`.

**Messages and latency.** Publishers send ~100-byte payloads \`B|step|publisher|seq|µs|…\` at a fixed schedule. The
timestamp is the *scheduled* send time: when the sender falls behind it catches up with the original timestamps, so
queueing in the sender counts against the system (no coordinated omission). Latency is recorded per delivery in a
log-linear histogram (< 1% error). Each receiver tracks the last sequence number per publisher, so duplicates and
order violations are counted; loss is expected deliveries minus unique deliveries after a drain period. Publishers'
own echoes are not counted (confab echoes to the sender, the baselines do not).

**Steps and capacity.** Each fan-out scenario climbs through fixed publish rates; a step passes when p99 ≤ 250 ms and
nothing is lost, duplicated or reordered. *Capacity* is the highest
passing offered rate in deliveries/s; the climb always runs through the 50,000 deliveries/s step and stops at the first
failure from there on (or after two failures in a row below it). *CPU µs per delivery* is server CPU time over the step divided by deliveries, at
the step that offers 50,000 deliveries/s. A step where the load generator used more than 85% of its core is marked
*client-bound* (the server might do more than was measured). The CPU used by every other process on the machine during
the step is reported as *other load*: this machine may be shared, and figures from noisy steps are pessimistic.

**Other scenarios.** *Idle memory*: RSS and heap after a full GC with N idle connections minus the same before they
connected, per connection. *Reconnect storm*: all N clients of the big room are dropped at once by the client side and
reconnect after a uniform random delay (jitter), retrying with full-jitter backoff; time until 50%/99% are back *and
subscribed* (confab resumes with \`since\`). *Connection rate*: N clients connect at once (sessions made beforehand)
until each is subscribed (confab: \`welcome\` + \`joined\`; Socket.IO: \`40\` + a \`ready\` event; raw: a \`ready\` text).
*Resume*: clients drop, a publisher sends 100 messages and waits until they are processed, then all reconnect at once
with their position; time until every client has all 100 (confab \`since\`; Socket.IO connection-state recovery).
*Slow consumers*: a room at a fixed load of 32 KB messages runs once clean, then with 1% of clients that stop reading;
reported: the others' p99 both times and the growth of the server's peak RSS. *Bus hop*: one confab gateway on the
in-process bus against two gateways over a real \`nats-server\` (JetStream history), \`redis-server\` (Streams history) and the
Google Cloud Pub/Sub *emulator* (a local Java server, not Google's service; Redis Streams history), half the room on each, at 50,000 deliveries/s.

**Runs.** The full run repeats every scenario 3 times (\`--runs\`), rotating the order of systems; figures are medians
with [min–max], and confab's ratios are medians of per-run ratios against the baselines of the same run.
\`--quick\` uses smaller N and one run (for CI: it proves the harness works; its numbers are not for comparison).

Raw results (JSON with every step) are written to \`bench/results/\`; large JSON files are not committed.
`;
