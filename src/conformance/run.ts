/**
 * Run the conformance checks against one deployment and report pass / fail / skip per check.
 * Checks run one after another; each gets fresh users, rooms and sockets, which are closed when
 * it ends, and fails if any frame it received did not match the protocol schema.
 */
import { CHECKS, type Check } from './checks.js';
import { CheckContext, Skip, type RunTotals } from './context.js';
import { CheckFailure, Endpoint } from './probe.js';

export interface ConformanceOptions {
  /** Base URL of the deployment: http(s)://host:port */
  url: string;
  /** Base URL of a second gateway of the same deployment: enables the cluster.* checks. */
  peer?: string;
  /** Run alert.send (it sends an alert to every connected user). */
  alerts?: boolean;
  /** Run only checks whose id starts with one of these (and what they require). */
  only?: string[];
  /** Longest wait for any one answer (ms, default 5000). */
  timeoutMs?: number;
  /** The sockets' transport: 'websocket' (default) or 'fallback' (the HTTP fallback; the upgrade.* checks still test the upgrade). */
  transport?: 'websocket' | 'fallback';
  /** Told about each result as it is known. */
  onResult?: (r: CheckResult) => void;
}

export type CheckStatus = 'pass' | 'fail' | 'skip';

export interface CheckResult {
  id: string;
  name: string;
  section: string;
  status: CheckStatus;
  /** Why it failed or was skipped. */
  reason?: string;
  ms: number;
}

export interface ConformanceReport {
  url: string;
  /** The transport of the checks' sockets. */
  transport: 'websocket' | 'fallback';
  peer?: string;
  runId: string;
  startedAt: string;
  durationMs: number;
  results: CheckResult[];
  passed: number;
  failed: number;
  skipped: number;
  /** Frames received in the run, and how many did not match docs/protocol.schema.json. */
  frames: { received: number; invalid: number };
  ok: boolean;
}

/** Longest time one check may take before it is failed (its sockets are then closed). */
const CHECK_DEADLINE_MS = 30_000;

export const SCHEMA_CHECK = {
  id: 'frames.schema',
  name: 'every frame received in this run matches docs/protocol.schema.json',
  section: 'protocol.md §4, docs/protocol.schema.json',
};

/** The checks to run for `only` (prefixes), with every check they require. */
export function selectChecks(only: string[] | undefined, all: readonly Check[] = CHECKS): Check[] {
  if (!only || only.length === 0) return [...all];
  const want = new Set<string>();
  const add = (id: string) => {
    if (want.has(id)) return;
    want.add(id);
    for (const r of all.find((c) => c.id === id)?.requires ?? []) add(r);
  };
  for (const c of all) if (only.some((o) => c.id.startsWith(o))) add(c.id);
  return all.filter((c) => want.has(c.id));
}

async function runOne(check: Check, ctx: CheckContext, passed: Set<string>): Promise<Omit<CheckResult, 'ms'>> {
  const base = { id: check.id, name: check.name, section: check.section };
  const unmet = (check.requires ?? []).filter((r) => !passed.has(r));
  if (unmet.length > 0) return { ...base, status: 'skip', reason: `needs ${unmet.join(', ')} to pass first` };
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`did not finish within ${CHECK_DEADLINE_MS / 1000} s`)), CHECK_DEADLINE_MS);
  });
  const running = Promise.resolve().then(() => check.run(ctx)); // a check that throws at once fails like one that rejects
  running.catch(() => undefined); // when the deadline wins, its own failure is not the one reported
  let outcome: Omit<CheckResult, 'ms'>;
  try {
    await Promise.race([running, deadline]);
    outcome = { ...base, status: 'pass' };
  } catch (e) {
    if (e instanceof Skip) outcome = { ...base, status: 'skip', reason: e.message };
    else outcome = { ...base, status: 'fail', reason: e instanceof CheckFailure ? e.message : e instanceof Error ? `${e.name}: ${e.message}` : String(e) };
  } finally {
    clearTimeout(timer);
  }
  const violations = await ctx.closeProbes();
  if (violations.length > 0 && outcome.status !== 'skip') {
    const v = `${violations.length} frame(s) did not match the schema: ${violations.slice(0, 3).join(' | ')}`;
    outcome = { ...base, status: 'fail', reason: outcome.status === 'fail' ? `${outcome.reason}; ${v}` : v };
  }
  return outcome;
}

/** Run the checks; never throws for what the server does (that is a failed check). */
export async function runConformance(opts: ConformanceOptions): Promise<ConformanceReport> {
  const ep = new Endpoint(opts.url);
  const peer = opts.peer ? new Endpoint(opts.peer) : undefined;
  const runId = CheckContext.newRunId();
  const totals: RunTotals = { frames: 0, invalid: 0 };
  const ctx = new CheckContext(ep, peer, runId, { alerts: opts.alerts ?? false, timeoutMs: opts.timeoutMs ?? 5_000, transport: opts.transport ?? 'websocket' }, totals);
  const started = Date.now();
  const results: CheckResult[] = [];
  const passed = new Set<string>();
  const record = (r: CheckResult) => {
    results.push(r);
    if (r.status === 'pass') passed.add(r.id);
    opts.onResult?.(r);
  };
  for (const check of selectChecks(opts.only)) {
    const t0 = Date.now();
    const r = await runOne(check, ctx, passed);
    record({ ...r, ms: Date.now() - t0 });
  }
  record({
    ...SCHEMA_CHECK,
    status: totals.frames === 0 ? 'skip' : totals.invalid === 0 ? 'pass' : 'fail',
    reason: totals.frames === 0 ? 'no frames were received' : totals.invalid === 0 ? undefined : `${totals.invalid} of ${totals.frames} frames did not match (see the failed checks)`,
    ms: 0,
  });
  const count = (s: CheckStatus) => results.filter((r) => r.status === s).length;
  const failed = count('fail');
  return {
    url: ep.base,
    transport: opts.transport ?? 'websocket',
    ...(peer ? { peer: peer.base } : {}),
    runId,
    startedAt: new Date(started).toISOString(),
    durationMs: Date.now() - started,
    results,
    passed: count('pass'),
    failed,
    skipped: count('skip'),
    frames: { received: totals.frames, invalid: totals.invalid },
    ok: failed === 0,
  };
}

/** The report as a table: one row per check, then the reason of every failure or skip, then totals. */
export function formatConformanceReport(r: ConformanceReport): string {
  const head = ['check', 'result', 'ms', 'section', 'what'];
  const rows = r.results.map((x) => [x.id, x.status.toUpperCase(), String(x.ms), x.section, x.name]);
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  width[4] = 0; // the last column is not padded
  const line = (cells: string[]) => cells.map((c, i) => (i === 2 ? c.padStart(width[i]!) : c.padEnd(width[i]!))).join('  ').trimEnd();
  const out = [`confab conformance ${r.url}${r.peer ? ` (peer ${r.peer})` : ''}${r.transport === 'fallback' ? ' over the HTTP fallback' : ''}  run ${r.runId}`, '', line(head), ...rows.map(line)];
  const notes = r.results.filter((x) => x.status !== 'pass' && x.reason);
  if (notes.length > 0) {
    out.push('');
    for (const x of notes) out.push(`${x.status.toUpperCase()} ${x.id}: ${x.reason}`);
  }
  out.push('', `${r.passed} passed, ${r.failed} failed, ${r.skipped} skipped in ${(r.durationMs / 1000).toFixed(1)} s; ${r.frames.received} frames received, ${r.frames.invalid} invalid`);
  return out.join('\n') + '\n';
}
