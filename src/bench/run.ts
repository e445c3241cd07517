/**
 * `npm run bench` entry: runs every scenario against raw `ws`, Socket.IO 4 and
 * confab (when built), in the same run on the same machine, and writes a table
 * to stdout plus JSON, SVG charts and markdown to bench/results/.
 *
 *   node dist/bench/run.js [--quick] [--runs N] [--systems raw,sio,confab]
 *                          [--only room-1k,groups,…] [--out DIR] [--docs] [--nice N]
 *
 * --quick: smaller N, one run per scenario (said so in the output), < 2 min.
 * --docs:  also rewrite docs/benchmarks.md from this run (the hand-written findings below its marker are kept).
 * --confab-dist DIR: run confab from DIR (a compiled dist/, e.g. of a candidate change) instead of a snapshot of dist/.
 * --profile DIR: write a V8 CPU profile of confab during the fan-out load steps into DIR.
 * --nice:  run servers and the load generator at this niceness (e.g. -5 on a machine shared with other work).
 * --shards [--shard-counts 1,4,16] [--appends 6000]: only the history write capacity by shard count on a
 *          three-node JetStream cluster (src/bench/measure-shards.ts), a markdown table on stdout.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { sizes, fanout, groups, connRate, resume, slowConsumers } from './scenarios.js';
import { confabAvailable, hasTaskset, snapshotConfab, ROOT, SERVER_CORE, LOADGEN_CORE } from './systems.js';
import { busHop, busHopAvailable } from './bushop.js';
import { abuseTable, underAbuse, type AbuseResult } from './abuse.js';
import { fallbackCost, fallbackTable, type FallbackCostResult } from './fallback.js';
import { aggregate, renderTable, renderMarkdown, type RunRecord, type BenchMeta } from './report.js';
import { renderChart } from './chart.js';
import type { SystemKind } from './protocols.js';

interface Args {
  quick: boolean;
  runs: number;
  systems: SystemKind[];
  only: string[] | null;
  out: string;
  docs: boolean;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { quick: false, runs: 3, systems: ['raw', 'sio', 'confab'], only: null, out: path.join(ROOT, 'bench', 'results'), docs: false };
  let runsGiven = false;
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const next = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${k} needs a value`);
      return v;
    };
    if (k === '--quick') a.quick = true;
    else if (k === '--runs') {
      a.runs = Number(next());
      runsGiven = true;
      if (!Number.isInteger(a.runs) || a.runs < 1 || a.runs > 20) throw new Error('--runs must be 1..20');
    } else if (k === '--systems') {
      const list = next().split(',');
      for (const s of list) if (s !== 'raw' && s !== 'sio' && s !== 'confab') throw new Error(`unknown system ${s}`);
      a.systems = list as SystemKind[];
    } else if (k === '--only') a.only = next().split(',');
    else if (k === '--out') a.out = path.resolve(next());
    else if (k === '--docs') a.docs = true;
    else if (k === '--profile') process.env.CONFAB_BENCH_PROFILE_DIR = path.resolve(next());
    else if (k === '--confab-dist') process.env.CONFAB_BENCH_CONFAB_DIST = path.resolve(next());
    else if (k === '--nice') {
      const n = Number(next());
      if (!Number.isInteger(n) || n < -20 || n > 19) throw new Error('--nice must be -20..19');
      process.env.CONFAB_BENCH_NICE = String(n);
    }
    else if (k === '--help' || k === '-h') {
      process.stdout.write('usage: node dist/bench/run.js [--quick] [--runs N] [--systems raw,sio,confab] [--only SCENARIOS] [--out DIR] [--docs] [--nice N] [--profile DIR] [--confab-dist DIR]\n');
      process.exit(0);
    } else throw new Error(`unknown argument ${k}`);
  }
  if (a.quick && !runsGiven) a.runs = 1;
  return a;
}

/** docs/benchmarks.md: everything from this line on is written by hand and kept by `--docs`. */
const FINDINGS_MARKER = '<!-- findings: hand-written, kept by --docs -->';

function gitHead(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: ROOT, encoding: 'utf8' }).trim() !== '';
    return `${head}${dirty ? ' + uncommitted changes in src/' : ''}`;
  } catch {
    return 'unknown';
  }
}

function rotate<T>(list: T[], by: number): T[] {
  const k = by % list.length;
  return [...list.slice(k), ...list.slice(0, k)];
}

/** `--shards`: only the history write capacity by shard count (src/bench/measure-shards.ts). */
async function shardsOnly(argv: string[]): Promise<void> {
  const { runShardBench, shardTable } = await import('./measure-shards.js');
  const val = (k: string, d: string) => {
    const i = argv.indexOf(k);
    return i >= 0 && argv[i + 1] ? argv[i + 1]! : d;
  };
  const counts = val('--shard-counts', '1,4,16').split(',').map(Number);
  if (counts.some((c) => !Number.isInteger(c) || c < 1 || c > 64)) throw new Error('--shard-counts: 1..64 each');
  const o = { counts, appends: Number(val('--appends', '6000')), inFlight: 256, rooms: 1024, log: (l: string) => process.stderr.write(`[bench shards] ${l}\n`) };
  const rows = await runShardBench(o);
  process.stdout.write(shardTable(rows, o));
}

async function main(): Promise<void> {
  if (process.argv.includes('--shards')) return shardsOnly(process.argv.slice(2));
  const args = parseArgs(process.argv.slice(2));
  const s = sizes(args.quick);
  const notes: string[] = [];
  let systems = args.systems;
  const given = process.env.CONFAB_BENCH_CONFAB_DIST;
  const snap = !given && args.systems.includes('confab') && existsSync(path.join(ROOT, 'dist', 'cli', 'confab.js')) ? snapshotConfab() : null;
  if (given) notes.push(`confab measured from ${given} (--confab-dist)`);
  process.on('exit', () => snap?.remove());
  if (snap) notes.push(`confab measured from a snapshot of dist/ taken at the start (git ${gitHead()})`);
  if (systems.includes('confab') && !confabAvailable()) {
    notes.push('confab skipped: dist/cli/confab.js does not exist (gateway not built yet)');
    systems = systems.filter((x) => x !== 'confab');
  }
  if (!hasTaskset()) notes.push('taskset unavailable or fewer than 2 cores: processes are not pinned');
  if (args.quick) notes.push('quick mode: smaller N and ONE run per scenario (no medians over runs; ranges are empty)');
  const cpu = os.cpus()[0]?.model ?? 'unknown cpu';
  const meta: BenchMeta = {
    date: new Date().toISOString(),
    command: (process.env.npm_lifecycle_event === 'bench' ? `npm run bench -- ${process.argv.slice(2).join(' ')}` : `node dist/bench/run.js ${process.argv.slice(2).join(' ')}`).trim(),
    machine: `${os.cpus().length} × ${cpu}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.type()} ${os.release()}, Node ${process.version}`,
    pinning: (hasTaskset() ? `servers on core ${SERVER_CORE}, load generator on core ${LOADGEN_CORE}` : 'none') + (process.env.CONFAB_BENCH_NICE ? `, nice ${process.env.CONFAB_BENCH_NICE}` : ''),
    quick: args.quick,
    runs: args.runs,
    systems,
    notes,
    sizes: s,
  };
  if (process.env.CONFAB_BENCH_PROFILE_DIR) mkdirSync(process.env.CONFAB_BENCH_PROFILE_DIR, { recursive: true });
  const want = (name: string) => !args.only || args.only.includes(name);
  const records: RunRecord[] = [];
  const t0 = performance.now();
  const log = (m: string) => process.stderr.write(`[bench ${((performance.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${m}\n`);
  for (const n of notes) log(n);

  const runOne = async (run: number, scenario: string, system: SystemKind | 'confab-nats', fn: () => Promise<unknown>) => {
    const st = performance.now();
    log(`run ${run + 1}/${args.runs} ${scenario} ${system} …`);
    try {
      const result = await fn();
      const ms = performance.now() - st;
      records.push({ run, scenario, system, result, ms });
      log(`  done in ${(ms / 1000).toFixed(1)}s ${brief(result)}`);
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      records.push({ run, scenario, system, result: null, error, ms: performance.now() - st });
      log(`  FAILED: ${error}`);
    }
  };

  for (let run = 0; run < args.runs; run++) {
    const order = rotate(systems, run);
    for (const f of s.fanout) {
      if (!want(f.name)) continue;
      for (const sys of order) await runOne(run, f.name, sys, () => fanout(sys, f.n, f.rates, s, f.name === s.bigRoom));
    }
    if (want('groups')) for (const sys of order) await runOne(run, 'groups', sys, () => groups(sys, s));
    if (want('connrate')) for (const sys of order) await runOne(run, 'connrate', sys, () => connRate(sys, s));
    if (want('resume')) for (const sys of order) await runOne(run, 'resume', sys, () => resume(sys, s));
    if (want('slow')) for (const sys of order) await runOne(run, 'slow', sys, () => slowConsumers(sys, s));
    if (want('bushop') && systems.includes('confab')) {
      const why = busHopAvailable();
      if (why) {
        if (run === 0) {
          notes.push(`bus hop skipped: ${why}`);
          log(`bus hop skipped: ${why}`);
        }
      } else if (run === 0) await runOne(run, 'bushop', 'confab-nats', () => busHop(s)); // once per bench: it needs its own three processes
    }
  }
  // confab only, once per bench (three gateway processes in turn): canary latency alone and beside an attacker at the limits
  if (want('under-abuse') && systems.includes('confab')) {
    await runOne(0, 'under-abuse', 'confab', () => underAbuse(s));
    const r = records.find((x) => x.scenario === 'under-abuse' && x.result);
    if (r) log(`under abuse:\n${abuseTable(r.result as AbuseResult)}`);
  }
  // confab only, once per bench: the HTTP fallback's delivery cost beside WebSocket's (one gateway, one room each)
  if (want('fallback') && systems.includes('confab')) {
    await runOne(0, 'fallback', 'confab', () => fallbackCost(s));
    const r = records.find((x) => x.scenario === 'fallback' && x.result);
    if (r) log(`HTTP fallback vs WebSocket:\n${fallbackTable(r.result as FallbackCostResult)}`);
  }
  meta.totalSeconds = (performance.now() - t0) / 1000;
  const agg = aggregate(records, meta);
  const table = renderTable(agg);
  process.stdout.write(`\n${table}\n`);

  mkdirSync(args.out, { recursive: true });
  const stamp = args.quick ? 'quick' : 'full';
  writeFileSync(path.join(args.out, `${stamp}.json`), JSON.stringify({ meta, summary: agg, records }, null, 1));
  const charts: string[] = [];
  for (const f of s.fanout) {
    if (!want(f.name)) continue;
    const file = `${stamp}-${f.name}.svg`;
    const svg = renderChart(agg, f.name, `p99 latency vs delivered msgs/s: one room of ${f.n.toLocaleString('en')} clients`);
    if (svg) {
      writeFileSync(path.join(args.out, file), svg);
      charts.push(file);
    }
  }
  if (want('groups')) {
    const svg = renderChart(agg, 'groups', `p99 latency vs delivered msgs/s: ${s.groups.n.toLocaleString('en')} clients in groups of ${s.groups.groupSize}`);
    if (svg) {
      writeFileSync(path.join(args.out, `${stamp}-groups.svg`), svg);
      charts.push(`${stamp}-groups.svg`);
    }
  }
  const md = renderMarkdown(agg, charts.map((c) => `../bench/results/${c}`));
  writeFileSync(path.join(args.out, `${stamp}.md`), renderMarkdown(agg, charts));
  if (args.docs) {
    // keep the hand-written part (profile findings) below the marker
    const docPath = path.join(ROOT, 'docs', 'benchmarks.md');
    const old = existsSync(docPath) ? readFileSync(docPath, 'utf8') : '';
    const at = old.indexOf(FINDINGS_MARKER);
    writeFileSync(docPath, at >= 0 ? `${md}\n${old.slice(at)}` : md);
  }
  log(`wrote ${path.join(args.out, stamp)}.{json,md} and ${charts.length} chart(s) in ${meta.totalSeconds.toFixed(0)}s`);
  const failed = records.filter((r) => r.error);
  if (failed.length) log(`${failed.length} scenario run(s) failed; see the JSON`);
}

function brief(r: unknown): string {
  if (!r || typeof r !== 'object') return '';
  const o = r as Record<string, unknown>;
  const parts: string[] = [];
  if ('capacity' in o) parts.push(`capacity=${o.capacity === null ? 'none' : Math.round(o.capacity as number)}/s${o.capacityClientBound ? ' (client-bound)' : ''}`);
  if ('perSec' in o) parts.push(`conn/s=${Math.round(o.perSec as number)}`);
  if ('ms' in o && 'missed' in o) parts.push(`resume=${Math.round(o.ms as number)}ms lost=${String(o.lost)} dup=${String(o.dup)} gaps=${String(o.gaps)}`);
  if ('rssGrowth' in o) parts.push(`rssGrowth=${((o.rssGrowth as number) / 2 ** 20).toFixed(1)}MiB slowClosed=${String(o.slowClosedByServer)}`);
  if ('skipped' in o) parts.push(`skipped: ${String(o.skipped)}`);
  if ('error' in o && o.error) parts.push(`error=${String(o.error)}`);
  return parts.join(' ');
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
