/**
 * Shared scenario for test/integration/broker-faults-*.test.ts (G10, R5, R11): two real
 * gateway processes (`confab start`, spawned by the test kit) on one broker, a writer
 * client on each, a fault injected for a while and healed, and a report of what the
 * gateways did meanwhile. Each property is then asserted on its own (a subtest each):
 *
 * (a) no gateway process exits;
 * (b) `/readyz` behaves as the fault calls for (503 at some point while the gateway
 *     cannot reach the broker; 200 throughout while the broker is merely slow; back to
 *     200 while a cluster node is still down when the gateway can fail over);
 * (c) every `pub` frame sent during and around the fault is answered (an `ack` or a typed
 *     `error` carrying its id) within ANSWER_BOUND_MS — no silence;
 * (d) after the fault everything returns by itself: `/readyz` 200 on both, the writers'
 *     outboxes drain (resent like the SDK does), a new publish is acknowledged and
 *     delivered to the member on the other gateway, and every acknowledged message
 *     reaches both members once, in one unbroken chain (catch-up);
 * (e) no presence `leave` notice for a user who never left;
 * (f) G9: each writer's messages are stored in the order it sent them.
 *
 * The writers behave like the SDK's outbox: a message refused with a retryable error
 * (`bus_unavailable`, `store_failed`, `fenced`, `rate_limited`, `internal`) stays queued and the queue
 * is resent in order after a short delay, and at once when a `status: up` frame arrives.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { spawnGateway, type GatewayProcess } from '../../src/testkit/gateway.js';
import { pollStatus, statusRuns, type StatusSample } from '../../src/testkit/faults.js';
import { joinRoom, RawClient } from '../../src/testkit/raw-client.js';
import { waitFor } from '../../src/procs/wait.js';

/** A pub frame must be answered within this long after it was sent. */
export const ANSWER_BOUND_MS = 20_000;
/** How long recovery may take after the fault is healed, per step. */
export const RECOVERY_MS = 30_000;
const RETRYABLE = new Set(['bus_unavailable', 'store_failed', 'fenced', 'rate_limited', 'internal']);
export const LOG_DIR = join(tmpdir(), 'confab-broker-faults');

// ---------------------------------------------------------------- gateways

export interface Gw {
  readonly name: string;
  proc: GatewayProcess;
  url: string;
  wsUrl: string;
  /** Every run of this gateway that ended while it was supposed to be up. */
  deaths: { at: number; code: number | null; signal: string | null; log: string; logPath: string }[];
  runs: number;
}

export const alive = (g: Gw): boolean => g.proc.child.exitCode === null && g.proc.child.signalCode === null;

/** Gateway processes started for one suite; a gateway that died is started again (and the death kept as evidence). */
export class GatewaySet {
  readonly gws: Gw[] = [];
  /** Every writer opened in this suite (kept open until the end: a late false leave still shows). */
  readonly writers: Writer[] = [];
  private readonly envs = new Map<string, Record<string, string>>();

  constructor(readonly suite: string) {
    mkdirSync(LOG_DIR, { recursive: true });
  }

  async spawn(name: string, env: Record<string, string>): Promise<Gw> {
    const full = {
      CONFAB_NODE_ID: name,
      CONFAB_RATE_PER_SEC: '500',
      CONFAB_RATE_BURST: '1000',
      CONFAB_DRAIN_READY_DELAY_MS: '0',
      CONFAB_DRAIN_WINDOW_MS: '200',
      ...env,
    };
    this.envs.set(name, full);
    const proc = await spawnGateway(full, { timeoutMs: 60_000 }); // port 0: the kernel's choice, read back
    const g: Gw = { name, proc, url: proc.url, wsUrl: proc.url.replace(/^http/, 'ws') + '/ws', deaths: [], runs: 1 };
    this.watch(g);
    this.gws.push(g);
    return g;
  }

  private watch(g: Gw): void {
    const proc = g.proc;
    proc.child.once('exit', (code, signal) => {
      if (g.proc !== proc || this.stopping) return;
      const logPath = this.writeLog(g, proc, `died-${g.runs}`);
      g.deaths.push({ at: Date.now(), code, signal, log: proc.output(), logPath });
    });
  }

  private stopping = false;

  /** Start again every gateway that exited (a death is recorded by the exit watcher). */
  async ensure(): Promise<void> {
    for (const g of this.gws) {
      if (alive(g)) continue;
      const proc = await spawnGateway(this.envs.get(g.name)!, { timeoutMs: 60_000 });
      g.proc = proc;
      g.url = proc.url;
      g.wsUrl = proc.url.replace(/^http/, 'ws') + '/ws';
      g.runs++;
      this.watch(g);
    }
  }

  writeLog(g: Gw, proc: GatewayProcess, tag: string): string {
    const path = join(LOG_DIR, `${this.suite}-${g.name}-${tag}.log`);
    writeFileSync(path, proc.output());
    return path;
  }

  async stopAll(): Promise<void> {
    this.stopping = true;
    for (const g of this.gws) {
      this.writeLog(g, g.proc, `run${g.runs}`);
      await g.proc.kill();
    }
  }

  /** Close every writer of the suite. */
  closeWriters(): void {
    for (const w of this.writers) w.close();
  }
}

// ---------------------------------------------------------------- writers

interface Answer {
  at: number;
  t: 'ack' | 'error';
  code?: string;
  offset?: number;
}

/** A raw WebSocket client joined to one room that publishes like the SDK (outbox, resend in order). */
export class Writer {
  readonly outbox: string[] = [];
  readonly created: string[] = [];
  readonly sends = new Map<string, number[]>();
  readonly answers = new Map<string, Answer[]>();
  readonly acked = new Map<string, number>();
  /** Messages refused with a non-retryable error (dropped from the outbox). */
  readonly dropped = new Map<string, string>();
  readonly presence: { at: number; event: 'join' | 'leave'; user: string; handle: string }[] = [];
  readonly status: { at: number; bus: string }[] = [];
  private flushTimer: NodeJS.Timeout | undefined;
  private n = 0;
  userId = '';

  private constructor(readonly c: RawClient, readonly handle: string, readonly room: string) {
    c.ws.on('message', (d) => this.onFrame(JSON.parse(d.toString()) as Record<string, unknown>));
  }

  static async open(g: Gw, handle: string, room: string): Promise<Writer> {
    const { c, s } = await RawClient.session(g, handle);
    const w = new Writer(c, handle, room);
    w.userId = s.user.id;
    await joinRoom(c, room);
    return w;
  }

  private onFrame(f: Record<string, unknown>): void {
    const at = Date.now();
    if (f.t === 'presence' && f.room === this.room) {
      const u = f.user as { id: string; handle: string };
      this.presence.push({ at, event: f.event as 'join' | 'leave', user: u.id, handle: u.handle });
      return;
    }
    if (f.t === 'status') {
      this.status.push({ at, bus: String(f.bus) });
      if (f.bus === 'up') this.flush();
      return;
    }
    if ((f.t !== 'ack' && f.t !== 'error') || typeof f.id !== 'string' || !this.sends.has(f.id)) return;
    const id = f.id;
    const list = this.answers.get(id) ?? [];
    list.push({ at, t: f.t, code: f.code as string | undefined, offset: f.offset as number | undefined });
    this.answers.set(id, list);
    if (f.t === 'ack') {
      this.acked.set(id, f.offset as number);
      const i = this.outbox.indexOf(id);
      if (i >= 0) this.outbox.splice(i, 1);
    } else if (RETRYABLE.has(String(f.code))) {
      this.scheduleFlush();
    } else if (this.outbox.includes(id)) {
      this.dropped.set(id, String(f.code));
      this.outbox.splice(this.outbox.indexOf(id), 1);
    }
  }

  private send(id: string): void {
    const list = this.sends.get(id) ?? [];
    list.push(Date.now());
    this.sends.set(id, list);
    this.c.send({ t: 'pub', id, room: this.room, text: `${this.handle} ${id}` });
  }

  private inFlight(id: string): boolean {
    return (this.sends.get(id)?.length ?? 0) > (this.answers.get(id)?.length ?? 0);
  }

  /** A new message: queued, and sent at once (like the SDK on a joined room). */
  pub(tag: string): string {
    const id = `${tag}-${this.n++}`;
    this.created.push(id);
    this.outbox.push(id);
    this.send(id);
    return id;
  }

  /** Resend the queue in order, up to the first message still waiting for its answer. */
  flush(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.c.closeCode !== undefined) return;
    for (const id of [...this.outbox]) {
      if (this.inFlight(id)) break;
      this.send(id);
    }
  }

  private scheduleFlush(): void {
    if (this.flushTimer) return;
    this.flushTimer = setTimeout(() => this.flush(), 800 + Math.random() * 700);
    this.flushTimer.unref();
  }

  /** Every send of every message has been answered and nothing is queued. */
  settled(): boolean {
    return this.outbox.length === 0 && [...this.sends.keys()].every((id) => !this.inFlight(id));
  }

  /** Sends answered later than `bound` after they were sent, or not at all (by now, or ever: socket closed). */
  lateOrSilent(bound: number, now = Date.now()): { id: string; sentAt: number; waitedMs: number; answered: boolean }[] {
    const out: { id: string; sentAt: number; waitedMs: number; answered: boolean }[] = [];
    for (const [id, sends] of this.sends) {
      const ans = this.answers.get(id) ?? [];
      sends.forEach((sentAt, k) => {
        const a = ans[k];
        const waited = (a?.at ?? now) - sentAt;
        // on a closed socket an unanswered send will never be answered: silence, however recent
        if (waited > bound || (!a && this.c.closeCode !== undefined)) out.push({ id, sentAt, waitedMs: waited, answered: a !== undefined });
      });
    }
    return out;
  }

  maxAnswerMs(): number {
    let m = 0;
    for (const [id, sends] of this.sends) {
      const ans = this.answers.get(id) ?? [];
      sends.forEach((s, k) => {
        if (ans[k]) m = Math.max(m, ans[k]!.at - s);
      });
    }
    return m;
  }

  /** Answers that are errors without a code from the table. */
  untypedErrors(): string[] {
    const out: string[] = [];
    for (const [id, ans] of this.answers) for (const a of ans) if (a.t === 'error' && (!a.code || a.code === 'internal')) out.push(`${id}:${a.code}`);
    return out;
  }

  errorCodes(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const ans of this.answers.values()) for (const a of ans) if (a.t === 'error') out[a.code!] = (out[a.code!] ?? 0) + 1;
    return out;
  }

  close(): void {
    clearTimeout(this.flushTimer);
    this.c.close();
  }
}

// ---------------------------------------------------------------- one fault

export type ReadyExpectation =
  /** cannot reach the broker: /readyz must answer 503 at some point during the fault */
  | '503'
  /** broker merely slow (or not this gateway's problem): /readyz 200 throughout */
  | '200'
  /** cluster: may dip while it fails over, but must be 200 again before the fault ends */
  | 'failover';

export interface FaultSpec {
  /** Short id used in handles, rooms and message ids. */
  tag: string;
  /** How long the fault lasts (the scenario's duration). */
  holdMs: number;
  inject(): Promise<void> | void;
  heal(): Promise<void> | void;
  /** Always run at the end, also when the scenario threw (e.g. SIGCONT, restore). */
  cleanup?(): Promise<void> | void;
  ready: [Gw, ReadyExpectation][];
  /** A new message from each writer every this many ms during the fault (default 1000; `b` overrides it for writer b). */
  pubEveryMs?: number;
  pubEveryMsB?: number;
  /** True when every message must be acknowledged on the first send (a slow broker must not refuse). */
  noErrors?: boolean;
  /** Which writers publish during the fault (default both). */
  pubFrom?: ('a' | 'b')[];
}

export interface FaultReport {
  spec: FaultSpec;
  gws: Gw[];
  writers: Writer[];
  t: { inject: number; heal: number; ready?: number; settled?: number };
  deathsBefore: Map<Gw, number>;
  readiness: Map<Gw, StatusSample[]>;
  post: { ok: boolean; detail: string };
  catchup: { ok: boolean; detail: string };
  notes: string[];
}

const fmt = (r: FaultReport, at: number) => `${((at - r.t.inject) / 1000).toFixed(1)}s`;

/** waitFor that gives up at once when a gateway of the case has exited (nothing will come back by itself then). */
async function waitLive(gws: Gw[], cond: () => boolean | Promise<boolean>, opts: { timeoutMs: number; intervalMs?: number; what: string }): Promise<void> {
  await waitFor(async () => {
    const dead = gws.filter((g) => !alive(g));
    if (dead.length > 0) throw new Error(`${opts.what}: gave up, ${dead.map((g) => g.name).join(', ')} exited`);
    return cond();
  }, opts);
}

/** Run one fault against gateways `a` and `b` (writers on each, one fresh room); never throws for what it measures. */
export async function runFault(set: GatewaySet, a: Gw, b: Gw, spec: FaultSpec): Promise<FaultReport> {
  await set.ensure();
  const room = `f-${spec.tag}`;
  const deathsBefore = new Map(set.gws.map((g) => [g, g.deaths.length]));
  const wa = await Writer.open(a, `${spec.tag}-a`, room);
  const wb = await Writer.open(b, `${spec.tag}-b`, room);
  const writers = [wa, wb];
  set.writers.push(wa, wb);
  const r: FaultReport = { spec, gws: [a, b], writers, t: { inject: 0, heal: 0 }, deathsBefore, readiness: new Map(), post: { ok: false, detail: 'not reached' }, catchup: { ok: false, detail: 'not reached' }, notes: [] };
  // both see each other before the fault, and a message each way is delivered
  await waitFor(() => wa.presence.some((p) => p.user === wb.userId && p.event === 'join'), { what: `${spec.tag}: a sees b join`, timeoutMs: 15_000 });
  for (const w of writers) w.pub(`${spec.tag}-pre-${w === wa ? 'a' : 'b'}`);
  await waitFor(() => writers.every((w) => w.acked.size === 1) && writers.every((w) => w.c.msgs(room).length === 2), { what: `${spec.tag}: warm-up messages delivered`, timeoutMs: 15_000 });

  const pollers = new Map([a, b].map((g) => [g, pollStatus(`${g.url}/readyz`, { intervalMs: 150, timeoutMs: 1500 })]));
  try {
    r.t.inject = Date.now();
    await spec.inject();
    const every = { a: spec.pubEveryMs ?? 1000, b: spec.pubEveryMsB ?? spec.pubEveryMs ?? 1000 };
    const end = r.t.inject + spec.holdMs;
    const due = { a: r.t.inject, b: r.t.inject };
    const count = { a: 0, b: 0 };
    while (Date.now() < end) {
      for (const w of writers) {
        const side = w === wa ? 'a' : 'b';
        if (Date.now() < due[side]) continue;
        due[side] += every[side];
        if (w.c.closeCode === undefined && (spec.pubFrom ?? ['a', 'b']).includes(side)) w.pub(`${spec.tag}-${side}-during${count[side]++}`);
      }
      await new Promise((res) => setTimeout(res, Math.max(0, Math.min(due.a, due.b, end) - Date.now())));
    }
    await spec.heal();
    r.t.heal = Date.now();
    // "around the fault": one more message each right after the heal
    for (const w of writers) if (w.c.closeCode === undefined) w.pub(`${spec.tag}-${w === wa ? 'a' : 'b'}-after`);

    const readyBoth = async () => (await Promise.all([a, b].map(async (g) => (await fetch(`${g.url}/readyz`, { signal: AbortSignal.timeout(1500) }).catch(() => undefined))?.status === 200))).every(Boolean);
    try {
      await waitLive([a, b], readyBoth, { timeoutMs: RECOVERY_MS, intervalMs: 100, what: 'readiness back' });
      r.t.ready = Date.now();
    } catch (e) {
      r.notes.push((e as Error).message);
    }
  } finally {
    for (const [g, p] of pollers) r.readiness.set(g, await p.stop());
    await spec.cleanup?.();
  }

  // outboxes drain by themselves (client resends; the gateways must accept them)
  try {
    await waitLive([a, b], () => writers.every((w) => w.settled()), { timeoutMs: RECOVERY_MS, intervalMs: 50, what: 'outboxes drained' });
    r.t.settled = Date.now();
  } catch (e) {
    r.notes.push(`${(e as Error).message}; still queued: ${writers.map((w) => `${w.handle}: [${w.outbox.join(',')}]`).join('; ')}`);
  }

  // a new publish each way is acknowledged at once and reaches the other gateway's member
  const posts: string[] = [];
  try {
    const pa = wa.pub(`${spec.tag}-post-a`);
    const pb = wb.pub(`${spec.tag}-post-b`);
    posts.push(pa, pb);
    await waitLive([a, b], () => wa.answers.has(pa) && wb.answers.has(pb), { timeoutMs: 10_000, what: 'post answers' });
    const first = [wa.answers.get(pa)![0]!, wb.answers.get(pb)![0]!];
    if (first.some((x) => x.t !== 'ack')) throw new Error(`first answer to a post-fault publish: ${first.map((x) => `${x.t}:${x.code ?? x.offset}`).join(', ')}`);
    await waitLive([a, b], () => wb.c.msgs(room).some((m) => m.id === pa) && wa.c.msgs(room).some((m) => m.id === pb), { timeoutMs: 10_000, what: 'post-fault messages delivered across gateways' });
    r.post = { ok: true, detail: 'acked on first send and delivered across' };
  } catch (e) {
    r.post = { ok: false, detail: (e as Error).message };
  }

  // catch-up: every acknowledged message reaches both members
  const ackedIds = () => writers.flatMap((w) => [...w.acked.keys()]);
  const missing = () => writers.map((w) => ({ w, miss: ackedIds().filter((id) => !w.c.msgs(room).some((m) => m.id === id)) }));
  try {
    await waitLive([a, b], () => missing().every((x) => x.miss.length === 0), { timeoutMs: 20_000, intervalMs: 50, what: 'every acknowledged message delivered to both members' });
    r.catchup = { ok: true, detail: `${ackedIds().length} acknowledged messages delivered to both` };
  } catch (e) {
    r.catchup = { ok: false, detail: (e as Error).message + ': ' + missing().map((x) => `${x.w.handle} (on ${x.w === wa ? a.name : b.name}) lacks ${x.miss.length}: ${x.miss.slice(0, 12).join(',')}`).join('; ') };
  }
  return r;
}

/** Assert each property of one fault's report as its own subtest, with the evidence in the message. */
/** Leave notices seen by any writer of the suite about a user who never closed (false leaves, whole run). */
export function falseLeaves(set: GatewaySet): string[] {
  const live = new Map(set.writers.filter((w) => w.c.closeCode === undefined).map((w) => [w.userId, w.handle]));
  return set.writers.flatMap((w) => w.presence.filter((p) => p.event === 'leave' && live.has(p.user)).map((p) => `${w.handle} told ${p.handle} left at ${new Date(p.at).toISOString()}`));
}

export async function assertFault(t: TestContext, set: GatewaySet, r: FaultReport): Promise<void> {
  const room = `f-${r.spec.tag}`;
  const [wa, wb] = r.writers as [Writer, Writer];
  const timeline = () => `inject 0s, heal ${fmt(r, r.t.heal)}, ready ${r.t.ready ? fmt(r, r.t.ready) : 'never'}, settled ${r.t.settled ? fmt(r, r.t.settled) : 'never'}`;
  try {
    await t.test('(a) every gateway process stays up', () => {
      const deaths = set.gws.flatMap((g) => g.deaths.slice(r.deathsBefore.get(g) ?? 0).map((d) => ({ g, d })));
      const msg = deaths.map(({ g, d }) => {
        const tail = d.log.split('\n').filter((l) => /unhandled|Error|exit|fatal/i.test(l)).slice(-6).join('\n    ');
        return `${g.name} exited at ${fmt(r, d.at)} with code ${d.code} signal ${d.signal}; log ${d.logPath}\n    ${tail}`;
      });
      assert.equal(deaths.length, 0, `gateway process(es) exited:\n  ${msg.join('\n  ')}`);
      for (const g of r.gws) assert.ok(alive(g), `${g.name} is not running`);
    });

    await t.test('(b) /readyz answers as the fault calls for', () => {
      for (const [g, expect] of r.spec.ready) {
        const s = r.readiness.get(g) ?? [];
        const during = s.filter((x) => x.at >= r.t.inject && x.at <= r.t.heal);
        const runs = `${g.name} /readyz from inject: ${statusRuns(s)}`;
        if (expect === '503') assert.ok(s.some((x) => x.at >= r.t.inject && x.status === 503), `expected 503 at some point during the fault; ${runs}`);
        if (expect === '200') assert.ok(during.length > 0 && during.every((x) => x.status === 200), `expected 200 throughout the fault; ${runs}`);
        if (expect === 'failover') {
          const lastDuring = during.at(-1);
          assert.ok(lastDuring?.status === 200, `expected ready again (failed over) before the fault ended; ${runs}`);
        }
      }
    });

    await t.test(`(c) every pub frame is answered (ack or typed error with its id) within ${ANSWER_BOUND_MS} ms`, () => {
      for (const w of r.writers) {
        const bad = w.lateOrSilent(ANSWER_BOUND_MS);
        const sends = [...w.sends.values()].reduce((n, s) => n + s.length, 0);
        assert.equal(bad.length, 0, `${w.handle}: ${bad.length} of ${sends} sends late or never answered (${timeline()}): ${bad.slice(0, 10).map((x) => `${x.id} sent ${fmt(r, x.sentAt)} ${x.answered ? `answered after ${x.waitedMs} ms` : `no answer for ${x.waitedMs} ms`}${w.c.closeCode !== undefined ? ` (socket closed ${w.c.closeCode})` : ''}`).join('; ')}`);
        assert.deepEqual(w.untypedErrors(), [], `${w.handle}: errors without a specific code`);
        if (r.spec.noErrors) assert.deepEqual(w.errorCodes(), {}, `${w.handle}: a slow broker refused messages (max answer ${w.maxAnswerMs()} ms)`);
      }
    });

    await t.test('(d) everything returns by itself: ready, outbox drained, new publish acked and delivered, catch-up complete', () => {
      const problems: string[] = [];
      if (!r.t.ready) problems.push(`/readyz not 200 on both within ${RECOVERY_MS} ms of the heal: ${r.notes[0] ?? ''} (${r.gws.map((g) => `${g.name}: ${statusRuns(r.readiness.get(g) ?? [])}`).join('; ')})`);
      if (!r.t.settled) problems.push(r.notes.join('; ') || 'outboxes not drained');
      for (const w of r.writers) if (w.dropped.size > 0) problems.push(`${w.handle}: messages refused for good: ${JSON.stringify([...w.dropped])}`);
      if (!r.post.ok) problems.push(`post-fault publish: ${r.post.detail}`);
      if (!r.catchup.ok) {
        const acks = r.writers.flatMap((w) => [...w.acked].map(([id, off]) => `${id}@${off}`));
        problems.push(`catch-up: ${r.catchup.detail} (acked: ${acks.filter((x) => r.catchup.detail.includes(x.split('@')[0]!)).join(', ')})`);
      }
      for (const w of r.writers) {
        const msgs = w.c.msgs(room);
        const seen = new Map<string, number[]>();
        for (const m of msgs) seen.set(m.id, [...(seen.get(m.id) ?? []), m.offset]);
        const twice = [...seen].filter(([, offs]) => offs.length > 1);
        if (twice.length > 0) problems.push(`${w.handle}: stored/delivered more than once (id@offsets): ${twice.map(([id, offs]) => `${id}@${offs.join('/')}`).join(', ')} (acked at ${twice.map(([id]) => r.writers.map((x) => x.acked.get(id)).find((o) => o !== undefined)).join(', ')})`);
        for (let i = 1; i < msgs.length; i++) if (msgs[i]!.prev !== msgs[i - 1]!.offset) problems.push(`${w.handle}: chain broken at ${msgs[i]!.id}@${msgs[i]!.offset} (prev ${msgs[i]!.prev}, previous delivered ${msgs[i - 1]!.id}@${msgs[i - 1]!.offset})`);
      }
      const seqA = wa.c.msgs(room).map((m) => `${m.id}@${m.offset}`);
      const seqB = wb.c.msgs(room).map((m) => `${m.id}@${m.offset}`);
      if (seqA.join() !== seqB.join()) problems.push(`members saw different sequences: only ${wa.handle}: [${seqA.filter((x) => !seqB.includes(x)).join(', ')}], only ${wb.handle}: [${seqB.filter((x) => !seqA.includes(x)).join(', ')}]`);
      assert.deepEqual(problems, [], `(${timeline()})`);
    });

    await t.test('(e) no presence leave for a user who did not leave', () => {
      const ids = new Set(r.writers.map((w) => w.userId));
      const leaves = r.writers.flatMap((w) => w.presence.filter((p) => p.event === 'leave' && ids.has(p.user)).map((p) => `${w.handle} was told ${p.handle} left at ${fmt(r, p.at)}`));
      const rejoins = r.writers.flatMap((w) => w.presence.filter((p) => p.event === 'join' && p.at >= r.t.inject).map((p) => `${p.handle} joined again at ${fmt(r, p.at)}`));
      assert.deepEqual(leaves, [], `false leave notices (${timeline()}); then: ${rejoins.join('; ') || 'no re-join'}`);
    });

    await t.test('(f) G9: each writer\'s messages are stored in the order it sent them', () => {
      for (const w of r.writers) {
        const stored = wa.c.msgs(room).filter((m) => w.created.includes(m.id)).map((m) => m.id);
        const expected = w.created.filter((id) => stored.includes(id));
        assert.deepEqual(stored, expected, `${w.handle}: stored order differs from send order`);
      }
    });
  } finally {
    const line = r.writers.map((w) => `${w.handle}: ${[...w.sends.values()].reduce((n, s) => n + s.length, 0)} sends, ${w.acked.size} acked, errors ${JSON.stringify(w.errorCodes())}, max answer ${w.maxAnswerMs()} ms`).join(' | ');
    t.diagnostic(`${r.spec.tag}: ${timeline()} | ${r.gws.map((g) => `${g.name} readyz ${statusRuns(r.readiness.get(g) ?? [])}`).join(' | ')} | ${line}`);
  }
}
