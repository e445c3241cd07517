/**
 * One chaos scenario, start to finish: a fresh cluster, the ledger's clients
 * connected and joined, steady traffic, the fault in the middle of it, then
 * (bounded, polled) the return to healthy, a settle period, the verdicts, and
 * everything stopped by PID whatever happened.
 */
import { performance } from 'node:perf_hooks';
import { ChaosCluster, type Crash } from './cluster.js';
import { Ledger, type LedgerFigures } from './ledger.js';
import type { ClientUrls, FaultContext, Scale, Scenario } from './scenarios.js';

export interface ScenarioResult extends LedgerFigures {
  scenario: string;
  title: string;
  scale: Scale['name'];
  clients: number;
  rooms: number;
  publishers: number;
  /** Messages per second over all publishers. */
  rate: number;
  /** Time spent sending, ms. */
  sendMs: number;
  /** What the fault did, with the time since sending started (ms). */
  notes: { at: number; text: string }[];
  faultError?: string;
  /** Every part ready and every client back within the bound after the fault. */
  healthy: boolean;
  /** From the end of the fault to healthy, ms (undefined when it never got there). */
  healthyAfterMs?: number;
  /** What was still wrong when the health wait gave up. */
  unhealthy: string[];
  /** Nothing owed or queued at the end of the settle period. */
  settled: boolean;
  settleMs: number;
  /** Processes that exited by themselves; `at` is ms since sending started. */
  crashes: Crash[];
  logErrors: { message: string; count: number; gateways: string[] }[];
  /** Setup failure (the scenario did not run). */
  setupError?: string;
  pass: boolean;
  /** Why it did not pass. */
  failures: string[];
}

export interface RunOptions {
  log?: (line: string) => void;
  /** Keep the cluster's directory (logs) after the run. */
  keepDir?: boolean;
  /** Called with the cluster's directory once it is up (e.g. to print where the logs are). */
  onCluster?: (c: ChaosCluster) => void;
}

function urlsFor(kind: ClientUrls, c: ChaosCluster): (i: number) => string[] {
  const haps = c.haproxyUrls();
  return (i) => {
    const r = i % haps.length;
    const own = haps[r]!;
    if (kind === 'haproxy+gateways') return [own, ...c.gatewayUrls(c.regions[r])];
    if (kind === 'haproxy+regions') return [own, ...haps.filter((_, k) => k !== r)];
    return [own];
  };
}

const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function verdict(r: Omit<ScenarioResult, 'pass' | 'failures'>): string[] {
  const f: string[] = [];
  if (r.setupError) f.push(`setup failed: ${r.setupError}`);
  if (r.faultError) f.push(`fault step failed: ${r.faultError}`);
  if (r.lost > 0) f.push(`${r.lost} deliveries lost (${r.lostMessages} acked messages)`);
  if (r.duplicated > 0) f.push(`${r.duplicated} duplicate deliveries`);
  if (r.reorderedRoom > 0) f.push(`${r.reorderedRoom} room order violations`);
  if (r.reorderedSender > 0) f.push(`${r.reorderedSender} sender order inversions`);
  if (r.gaps > 0) f.push(`${r.gaps} gaps`);
  if (r.storedTwice > 0) f.push(`${r.storedTwice} messages stored twice (seen at two offsets)`);
  if (r.stuck > 0) f.push(`${r.stuck} outbox entries stuck`);
  if (r.falseLeaves > 0) f.push(`${r.falseLeaves} false leave notices (${r.falseLeaveUsers} users)`);
  if (r.crashes.length > 0) f.push(`${r.crashes.length} processes exited by themselves (${r.crashes.map((c) => c.name).join(', ')})`);
  if (!r.healthy) f.push(`not healthy again: ${r.unhealthy.slice(0, 6).join('; ')}`);
  if (r.epochs > 1) f.push(`${r.epochs} epochs in acks`);
  return f;
}

/** Run one scenario at one scale; never throws for what the system under test does (that is the result), only for bad input. */
export async function runScenario(s: Scenario, scale: Scale, o: RunOptions = {}): Promise<ScenarioResult> {
  const log = o.log ?? (() => {});
  let cluster: ChaosCluster | undefined;
  let ledger: Ledger | undefined;
  const notes: ScenarioResult['notes'] = [];
  const rate = scale.publishers * scale.ratePerPublisher;
  const base = { scenario: s.name, title: s.title, scale: scale.name, clients: scale.clients, rooms: scale.rooms, publishers: scale.publishers, rate };
  try {
    try {
      cluster = await ChaosCluster.start({ ...s.topology, keepDir: o.keepDir, log: (l) => log(`[${s.name}] ${l}`) });
      o.onCluster?.(cluster);
      const c = cluster;
      ledger = new Ledger({ urlsFor: urlsFor(s.clientUrls ?? 'haproxy', c), clients: scale.clients, rooms: scale.rooms, publishers: scale.publishers, ratePerPublisher: scale.ratePerPublisher });
      const tc = performance.now();
      await ledger.connect();
      log(`[${s.name}] ${scale.clients} clients joined in ${Math.round(performance.now() - tc)} ms`);
    } catch (e) {
      const r = { ...base, ...emptyFigures(), sendMs: 0, notes, healthy: false, unhealthy: [], settled: false, settleMs: 0, crashes: cluster?.crashes ?? [], logErrors: cluster?.gatewayLogErrors() ?? [], setupError: (e as Error).message };
      return { ...r, pass: false, failures: verdict(r) };
    }
    const c = cluster;
    const l = ledger;

    // ---- traffic and fault --------------------------------------------------
    const t0 = performance.now();
    const since = () => Math.round(performance.now() - t0);
    const note = (text: string) => {
      notes.push({ at: since(), text });
      log(`[${s.name}] +${(since() / 1000).toFixed(1)}s ${text}`);
    };
    let faultDoneAt: number | undefined = s.fault ? undefined : -1;
    let faultError: string | undefined;
    const ctx: FaultContext = { cluster: c, ledger: l, scale, note, hold: delay };
    const faulting = (async () => {
      if (!s.fault) return;
      await delay(s.faultAtMs);
      try {
        await s.fault(ctx);
      } catch (e) {
        faultError = (e as Error).message.split('\n').slice(0, 4).join(' | ');
        note(`fault step failed: ${faultError}`);
      } finally {
        faultDoneAt = performance.now();
      }
    })();
    const interval = 1000 / rate;
    const HARD_CAP_MS = 240_000;
    let k = 0;
    await new Promise<void>((resolve) => {
      const tick = () => {
        const now = performance.now();
        const done =
          now - t0 >= HARD_CAP_MS ||
          (now - t0 >= s.minSendMs && faultDoneAt !== undefined && (faultError !== undefined || faultDoneAt < 0 || now - faultDoneAt >= s.afterFaultMs));
        if (done) return resolve();
        while (t0 + k * interval <= now) {
          l.publish(k % scale.publishers, t0 + k * interval);
          k++;
        }
        setTimeout(tick, Math.max(1, Math.min(t0 + k * interval - now, 50)));
      };
      tick();
    });
    const sendMs = since();
    await faulting;
    note(`sending stopped: ${l.tracker.scheduled} sent, ${l.tracker.acked} acked`);

    // ---- back to healthy (polled, bounded) ----------------------------------
    // from the end of the fault (without one: from the end of sending)
    const faultEnd = faultDoneAt !== undefined && faultDoneAt >= 0 ? faultDoneAt : performance.now();
    let healthyAfterMs: number | undefined;
    let unhealthy: string[] = [];
    const hDeadline = performance.now() + scale.healthTimeoutMs;
    for (;;) {
      const h = await c.health();
      const back = l.back();
      unhealthy = [...h.problems, ...(back < scale.clients ? [`${scale.clients - back} clients not connected and re-joined`] : [])];
      if (unhealthy.length === 0) {
        healthyAfterMs = Math.round(performance.now() - faultEnd);
        break;
      }
      if (performance.now() > hDeadline) break;
      await delay(250);
    }
    note(healthyAfterMs !== undefined ? `healthy (${healthyAfterMs} ms after the fault ended)` : `NOT healthy after ${scale.healthTimeoutMs} ms: ${unhealthy.slice(0, 5).join('; ')}`);

    // ---- settle: everything owed delivered, every outbox empty (polled, bounded)
    // (on a cluster that did not come back, a shorter wait: what is stuck there is stuck for that reason)
    const ts = performance.now();
    const settleBound = healthyAfterMs !== undefined ? scale.settleMs : Math.min(scale.settleMs, 5000);
    while (!l.settled() && performance.now() - ts < settleBound) await delay(100);
    const settled = l.settled();
    const settleMs = Math.round(performance.now() - ts);
    note(settled ? `settled in ${settleMs} ms` : `not settled after ${settleMs} ms: ${l.tracker.inflight} unacked, ${l.tracker.missing} deliveries owed, ${l.outboxTotal()} in outboxes`);

    // times in the result are ms since sending started
    const fig = l.figures();
    for (const x of [...fig.examples.falseLeaves, ...fig.examples.gaps, ...fig.examples.order]) x.at = Math.round(x.at - t0);
    for (const x of fig.examples.falseLeaves) {
      x.userOutages = x.userOutages?.map((o) => ({ down: Math.round(o.down - t0), ...(o.up !== undefined ? { up: Math.round(o.up - t0) } : {}) }));
    }
    const shift = Math.round(t0 - c.t0);
    const r = {
      ...base,
      ...fig,
      sendMs,
      notes,
      ...(faultError ? { faultError } : {}),
      healthy: healthyAfterMs !== undefined,
      ...(healthyAfterMs !== undefined ? { healthyAfterMs } : {}),
      unhealthy,
      settled,
      settleMs,
      crashes: c.crashes.map((x) => ({ ...x, at: x.at - shift })),
      logErrors: c.gatewayLogErrors(),
    };
    const failures = verdict(r);
    return { ...r, pass: failures.length === 0, failures };
  } finally {
    ledger?.close();
    await cluster?.stop();
  }
}

function emptyFigures(): LedgerFigures {
  return {
    sent: 0, acked: 0, dupAcks: 0, refused: {}, unacked: 0, lost: 0, lostMessages: 0, duplicated: 0, reorderedRoom: 0, reorderedSender: 0, gaps: 0, storedTwice: 0, stuck: 0, epochs: 0,
    reconnects: { count: 0, p50: 0, p99: 0, max: 0 }, notBack: 0, leaves: 0, falseLeaves: 0, falseLeaveUsers: 0, clientErrors: {}, busDownNotices: 0,
    examples: { lost: [], senderInversions: [], falseLeaves: [], gaps: [], storedTwice: [], order: [], stuck: [], duplicated: [] },
  };
}
