/**
 * The chaos ledger: SDK clients (src/client, the `ws` package, in-memory
 * storage: what a Node bot uses) watched from outside. It records every `ack`
 * (room, id, offset, sender), every delivery at every member, every SDK `gap`,
 * every presence `leave`, every trip away from `connected` and what is left in
 * each outbox, and turns that into verdicts.
 *
 * The per-room bookkeeping (loss, duplicates, room order, offsets) is the load
 * generator's `LoadTracker` (src/load/tracker.ts), unchanged. The clients are
 * opened here rather than through `LoadGenerator` because a chaos run needs what
 * the generator does not give: a URL list per client (an HAProxy first, then
 * failover URLs), presence notices, outbox contents and a per-sender record of
 * the send order.
 */
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { ConfabClient, MemoryStorage, type ClientError, type ClientOptions, type WebSocketCtor } from '../client/index.js';
import { decodePayload, encodePayload, newRunId } from '../load/payload.js';
import { LoadTracker, type MemberTrack } from '../load/tracker.js';

export interface LedgerOptions {
  /** URL list for client i (the SDK tries them in turn after a dropped connection). */
  urlsFor: (i: number) => string[];
  clients: number;
  rooms: number;
  /** Clients 0 … publishers-1 publish, each in its own room (i mod rooms). */
  publishers: number;
  /** Messages per second per publisher. */
  ratePerPublisher: number;
  payloadBytes?: number;
  /** Presence grace of the gateways (CONFAB_PRESENCE_GRACE_MS): a `leave` for a user away at least this long is justified. */
  presenceGraceMs?: number;
  /** Extra SDK options (backoff…). Default: the SDK's own defaults. */
  client?: Partial<Omit<ClientOptions, 'url' | 'token' | 'WebSocket' | 'storage'>>;
  /** Every client connected and joined within this. Default 60 s. */
  connectTimeoutMs?: number;
  roomPrefix?: string;
}

/** One simulated user. */
export interface Member {
  readonly index: number;
  readonly handle: string;
  readonly room: string;
  readonly publisher: boolean;
  readonly urls: string[];
  client?: ConfabClient;
  track: MemberTrack;
  node?: string;
  /** Away from `connected` since (performance.now()), and the node it left. */
  downAt?: number;
  downFrom?: string;
  /** While away: when `connected` came back (rooms not re-joined yet). */
  upAt?: number;
  /** Every trip away from `connected`: [left, connected again (undefined while away)). */
  outages: { down: number; up?: number }[];
  /** Publishers: what this client sent, in send order (room seq). */
  sent: number[];
  socketError?: string;
}

export interface Reconnect {
  client: number;
  from?: string;
  to?: string;
  /** Leaving `connected` until connected again and every room re-joined. */
  ms: number;
}

export interface LeaveNotice {
  at: number;
  observer: number;
  user: string;
  room: string;
  /** The user was really away: in an outage that began before the notice and lasted at least the grace period (judged at the end). */
  justified: boolean;
  /** (examples only) The user's trips away from `connected`. */
  userOutages?: { down: number; up?: number }[];
}

/** A delivery that broke a room's order (offset not above the last one seen, prev behind it, offset other than acked) or skipped past `prev`. */
export interface OrderEvent {
  at: number;
  client: number;
  node?: string;
  room: string;
  /** Offset of the last message this member had been given in the room before. */
  lastSeen?: number;
  offset: number;
  prev: number;
  /** order: offset not above the last seen, or prev behind it; offset: this message was seen (or acked) at another offset; prev-hole: prev beyond the last seen. */
  kind: 'order' | 'offset' | 'prev-hole';
  /** This run's message number in the room, and the offset its ack carried. */
  seq?: number;
  ackOffset?: number;
}

export interface SenderInversion {
  sender: string;
  room: string;
  /** Send order (room seq) and stored offsets of the two messages, the later-sent one stored first. */
  earlier: { seq: number; offset: number };
  later: { seq: number; offset: number };
}

export interface Percentile {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

export function percentile(values: number[]): Percentile {
  const s = [...values].sort((a, b) => a - b);
  const n = s.length;
  const at = (q: number) => (n === 0 ? 0 : s[Math.min(n - 1, Math.ceil(q * n) - 1)]!);
  return { count: n, p50: Math.round(at(0.5)), p99: Math.round(at(0.99)), max: Math.round(n ? s[n - 1]! : 0) };
}

/** The ledger's verdicts (what a scenario reports). */
export interface LedgerFigures {
  sent: number;
  acked: number;
  dupAcks: number;
  refused: Record<string, number>;
  /** Sent, neither acknowledged nor refused. */
  unacked: number;
  /** Acknowledged message × member of its room that never got it. */
  lost: number;
  /** Distinct acknowledged messages that at least one member never got. */
  lostMessages: number;
  /** Deliveries of the same message to the app more than once. */
  duplicated: number;
  /** Per room: an offset not above the last one seen, a prev behind it, or an offset other than the ack's / another member's. */
  reorderedRoom: number;
  /** Per sender: messages stored in a different order than sent (inversions). */
  reorderedSender: number;
  /** SDK `gap` events plus holes found by `prev`. */
  gaps: number;
  /** Messages of this run seen (acked or delivered) at more than one offset: stored twice. */
  storedTwice: number;
  /** Outbox entries left at the end. */
  stuck: number;
  /** Epochs seen in acks (more than one = history reset). */
  epochs: number;
  reconnects: Percentile;
  /** Clients not connected and re-joined at the end. */
  notBack: number;
  leaves: number;
  falseLeaves: number;
  falseLeaveUsers: number;
  clientErrors: Record<string, number>;
  busDownNotices: number;
  examples: {
    lost: { room: string; seq: number; offset: number; missing: number; missingAt: string[] }[];
    senderInversions: SenderInversion[];
    falseLeaves: LeaveNotice[];
    /** SDK gap events; `held`: this run's messages (seq@offset) that were seen at offsets inside the gap. */
    gaps: { at: number; client: number; node?: string; room: string; from: number; to: number; lastSeen?: number; reset?: boolean; held?: string[] }[];
    /** Messages seen (acked or delivered) at more than one offset. */
    storedTwice: { room: string; seq: number; offsets: number[]; ackOffset?: number }[];
    order: OrderEvent[];
    stuck: { client: number; entries: number; state: string }[];
    duplicated: { client: number; room: string; count: number }[];
  };
}

async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: Error | undefined;
  const worker = async () => {
    while (failed === undefined && next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (e) {
        failed ??= e instanceof Error ? e : new Error(String(e));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed !== undefined) throw failed;
}

export class Ledger {
  readonly run = newRunId();
  readonly tracker = new LoadTracker(this.run);
  readonly members: Member[] = [];
  readonly reconnects: Reconnect[] = [];
  readonly leaves: LeaveNotice[] = [];
  readonly gapEvents: LedgerFigures['examples']['gaps'] = [];
  /** The first deliveries that broke the room order or skipped past `prev` (evidence). */
  readonly orderEvents: OrderEvent[] = [];
  readonly clientErrors: Record<string, number> = {};
  readonly epochs = new Set<string>();
  busDownNotices = 0;
  #closing = false;
  readonly #byHandle = new Map<string, Member>();
  readonly #offsetsOf = new Map<string, Map<number, Set<number>>>();
  readonly #graceMs: number;
  readonly #payload: number;

  constructor(readonly opts: LedgerOptions) {
    this.#graceMs = opts.presenceGraceMs ?? 5000;
    this.#payload = opts.payloadBytes ?? 60;
    const prefix = opts.roomPrefix ?? `chaos${this.run.slice(0, 3)}-`;
    for (let i = 0; i < opts.clients; i++) {
      const room = `${prefix}${i % opts.rooms}`;
      const handle = `cx${this.run}-${i}`;
      const m: Member = { index: i, handle, room, publisher: i < opts.publishers, urls: opts.urlsFor(i), track: this.tracker.addMember(room, i), outages: [], sent: [] };
      this.members.push(m);
      this.#byHandle.set(handle, m);
    }
  }

  /** Sessions, sockets, joins; throws when a client is not joined within the connect timeout. */
  async connect(): Promise<void> {
    const deadline = performance.now() + (this.opts.connectTimeoutMs ?? 60_000);
    await pool(this.members, 25, (m) => this.#open(m, deadline));
  }

  async #session(m: Member, deadline: number): Promise<string> {
    let last = '';
    for (let attempt = 0; performance.now() < deadline; attempt++) {
      const base = m.urls[attempt % m.urls.length]!;
      try {
        const res = await fetch(new URL('/api/session', base), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ handle: m.handle }), signal: AbortSignal.timeout(5000) });
        const body = (await res.json().catch(() => ({}))) as { token?: string };
        if (res.status === 200 && typeof body.token === 'string') return body.token;
        last = `HTTP ${res.status}`;
      } catch (e) {
        last = (e as Error).message;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`session for ${m.handle} on ${m.urls.join(',')}: ${last}`);
  }

  async #open(m: Member, deadline: number): Promise<void> {
    const token = await this.#session(m, deadline);
    const client = new ConfabClient({ ...this.opts.client, url: m.urls, token, WebSocket: socketFor(m), storage: new MemoryStorage(), namespace: m.handle, watchNetwork: false });
    m.client = client;
    client.on('message', (msg) => {
      if (msg.room !== m.room) return;
      const t = this.tracker;
      const seq = decodePayload(this.run, msg.text);
      if (seq !== undefined) this.#sighted(msg.room, seq, msg.offset);
      const before = { last: m.track.last, order: t.orderViolations, mismatch: t.offsetMismatches, holes: t.prevHoles };
      t.deliver(m.track, msg, performance.now());
      const kind = t.offsetMismatches > before.mismatch ? 'offset' : t.orderViolations > before.order ? 'order' : t.prevHoles > before.holes ? 'prev-hole' : undefined;
      if (kind && this.orderEvents.length < 20) {
        const ackOffset = seq === undefined ? undefined : t.rooms.get(msg.room)?.acked[seq];
        this.orderEvents.push({ at: performance.now(), client: m.index, node: m.node, room: msg.room, lastSeen: before.last, offset: msg.offset, prev: msg.prev, kind, ...(seq !== undefined ? { seq } : {}), ...(ackOffset !== undefined ? { ackOffset } : {}) });
      }
    });
    client.on('gap', (g) => {
      if (g.room !== m.room) return;
      const lastSeen = m.track.last;
      this.tracker.gap(m.track);
      this.gapEvents.push({ at: performance.now(), client: m.index, node: m.node, room: g.room, from: g.from, to: g.to, lastSeen, ...(g.reset ? { reset: true } : {}) });
    });
    client.on('state', (c) => {
      if (this.#closing) return;
      const now = performance.now();
      if (c.state === 'connected') {
        m.node = c.node;
        if (m.downAt !== undefined) m.upAt ??= now;
        const o = m.outages[m.outages.length - 1];
        if (o && o.up === undefined) o.up = now;
      }
      if (c.prev === 'connected' && c.state !== 'connected') {
        m.outages.push({ down: now });
        if (m.downAt === undefined) {
          m.downAt = now;
          m.downFrom = m.node;
        }
      }
    });
    client.on('joined', () => {
      if (m.downAt === undefined || this.#closing || !client.ready) return;
      this.reconnects.push({ client: m.index, from: m.downFrom, to: m.node, ms: performance.now() - m.downAt });
      m.downAt = m.downFrom = m.upAt = undefined;
    });
    client.on('presence', (p) => {
      if (this.#closing || p.event !== 'leave') return;
      const who = this.#byHandle.get(p.user.handle);
      if (!who) return;
      const at = performance.now();
      this.leaves.push({ at, observer: m.index, user: p.user.handle, room: p.room, justified: false });
    });
    client.on('bus', (b) => {
      if (b.bus === 'down') this.busDownNotices++;
    });
    client.on('error', (e: ClientError) => {
      if (!this.#closing) this.clientErrors[e.code] = (this.clientErrors[e.code] ?? 0) + 1;
    });
    client.connect();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`client ${m.index} (${m.handle}) not joined to ${m.room} in time: state ${client.state}${m.socketError ? `, last socket error: ${m.socketError}` : ''}`)), Math.max(1, deadline - performance.now()));
    });
    const joining = client.join(m.room);
    // when the timeout wins, the join may still reject later (e.g. 'closed' at the end): nothing left to tell
    joining.catch(() => {});
    try {
      await Promise.race([joining, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * A `leave` is justified when the user really went away: an outage (not
   * `connected`) that began before the notice and lasted at least the grace period
   * (less 1 s of slack for the server noticing a close before the client does),
   * judged at the end of the run (an outage still going on counts until `now`).
   */
  #awayLongEnough(m: Member, at: number, now: number): boolean {
    const need = this.#graceMs - 1000;
    return m.outages.some((o) => o.down <= at && (o.up ?? now) - o.down >= need);
  }

  /** Publisher `p` sends its next message (at scheduled time `sched`, performance.now()). */
  publish(p: number, sched: number): void {
    const m = this.members[p]!;
    const seq = this.tracker.schedule(m.room, sched);
    m.sent.push(seq);
    void m.client!.send(m.room, encodePayload(this.run, seq, this.#payload)).then(
      (ack) => {
        this.epochs.add(ack.epoch);
        this.#sighted(m.room, seq, ack.offset);
        this.tracker.ack(m.room, seq, ack.offset, ack.dup);
      },
      (e: ClientError) => {
        if (!this.#closing && e.code !== 'closed') this.tracker.refuse(m.room, seq, e.code);
      },
    );
  }

  /** Every offset a message of this run was seen at (ack or delivery), per room and seq. */
  #sighted(room: string, seq: number, offset: number): void {
    let r = this.#offsetsOf.get(room);
    if (!r) this.#offsetsOf.set(room, (r = new Map()));
    const set = r.get(seq) ?? new Set<number>();
    set.add(offset);
    r.set(seq, set);
  }

  get publishers(): number {
    return this.opts.publishers;
  }

  /** Outbox entries over all clients. */
  outboxTotal(): number {
    return this.members.reduce((a, m) => a + (m.client?.pending.length ?? 0), 0);
  }

  /** Clients connected with every room re-joined. */
  back(): number {
    return this.members.filter((m) => m.client?.state === 'connected' && m.client.ready && m.downAt === undefined).length;
  }

  /** Nothing in flight, nothing owed, nothing queued. */
  settled(): boolean {
    return this.tracker.inflight === 0 && this.tracker.missing === 0 && this.outboxTotal() === 0;
  }

  figures(): LedgerFigures {
    const t = this.tracker;
    // lost: acked × members that never got it, with examples naming who missed it and where they are
    let lostMessages = 0;
    const lostEx: LedgerFigures['examples']['lost'] = [];
    const membersOf = new Map<string, Member[]>();
    for (const m of this.members) membersOf.set(m.room, [...(membersOf.get(m.room) ?? []), m]);
    for (const r of t.rooms.values()) {
      for (let s = 0; s < r.sched.length; s++) {
        const off = r.acked[s];
        if (off === undefined) continue;
        const missing = r.members - (r.reached[s] ?? 0);
        if (missing <= 0) continue;
        lostMessages++;
        if (lostEx.length < 5) {
          const who = (membersOf.get(r.name) ?? []).filter((m) => (m.track.counts[s] ?? 0) === 0).map((m) => `${m.index}@${m.node ?? '?'}(${m.client?.state ?? '?'})`);
          lostEx.push({ room: r.name, seq: s, offset: off, missing, missingAt: who.slice(0, 6) });
        }
      }
    }
    // per sender: stored order (ack offsets) must follow the send order
    const inversions: SenderInversion[] = [];
    let reorderedSender = 0;
    for (const m of this.members) {
      const r = t.rooms.get(m.room);
      if (!r || m.sent.length === 0) continue;
      let maxSeq = -1;
      let maxOff = -1;
      for (const seq of m.sent) {
        const off = r.acked[seq];
        if (off === undefined) continue;
        if (off < maxOff) {
          reorderedSender++;
          if (inversions.length < 5) inversions.push({ sender: m.handle, room: m.room, earlier: { seq: maxSeq, offset: maxOff }, later: { seq, offset: off } });
        } else {
          maxOff = off;
          maxSeq = seq;
        }
      }
    }
    // a message seen at two offsets was stored twice (members may each have been given one copy)
    const storedTwice: LedgerFigures['examples']['storedTwice'] = [];
    let storedTwiceN = 0;
    const atOffset = new Map<string, Map<number, number>>();
    for (const [room, bySeq] of this.#offsetsOf) {
      const rev = new Map<number, number>();
      atOffset.set(room, rev);
      for (const [seq, offs] of bySeq) {
        for (const o of offs) rev.set(o, seq);
        if (offs.size < 2) continue;
        storedTwiceN++;
        if (storedTwice.length < 5) storedTwice.push({ room, seq, offsets: [...offs].sort((a, b) => a - b), ackOffset: t.rooms.get(room)?.acked[seq] });
      }
    }
    const gapsEx = this.gapEvents.slice(0, 5).map((g) => {
      const rev = atOffset.get(g.room);
      const held: string[] = [];
      for (let o = g.from; o <= g.to && rev; o++) {
        const seq = rev.get(o);
        if (seq !== undefined) held.push(`${seq}@${o}`);
      }
      return { ...g, held };
    });
    const stuckEx = this.members
      .filter((m) => (m.client?.pending.length ?? 0) > 0)
      .map((m) => ({ client: m.index, entries: m.client!.pending.length, state: m.client!.state }));
    const now = performance.now();
    for (const l of this.leaves) l.justified = this.#awayLongEnough(this.#byHandle.get(l.user)!, l.at, now);
    const falseLeaves = this.leaves.filter((l) => !l.justified);
    // evidence: when each falsely announced user was really away (ms, performance.now(); run.ts shifts them)
    const falseEx = falseLeaves.slice(0, 5).map((l) => ({ ...l, userOutages: this.#byHandle.get(l.user)!.outages.map((o) => ({ ...o })) }));
    const dupEx = this.members.filter((m) => m.track.duplicates > 0).map((m) => ({ client: m.index, room: m.room, count: m.track.duplicates }));
    return {
      sent: t.scheduled,
      acked: t.acked,
      dupAcks: t.dupAcks,
      refused: { ...t.refusedByCode },
      unacked: t.inflight,
      lost: t.lost(),
      lostMessages,
      duplicated: t.duplicates,
      reorderedRoom: t.orderViolations + t.offsetMismatches,
      reorderedSender,
      gaps: t.sdkGaps + t.prevHoles,
      storedTwice: storedTwiceN,
      stuck: this.outboxTotal(),
      epochs: this.epochs.size,
      reconnects: percentile(this.reconnects.map((r) => r.ms)),
      notBack: this.members.length - this.back(),
      leaves: this.leaves.length,
      falseLeaves: falseLeaves.length,
      falseLeaveUsers: new Set(falseLeaves.map((l) => l.user)).size,
      clientErrors: { ...this.clientErrors },
      busDownNotices: this.busDownNotices,
      examples: {
        lost: lostEx,
        senderInversions: inversions,
        falseLeaves: falseEx,
        gaps: gapsEx,
        storedTwice,
        order: this.orderEvents.slice(0, 5),
        stuck: stuckEx.slice(0, 5),
        duplicated: dupEx.slice(0, 5),
      },
    };
  }

  /** Close every client (nothing reconnects; queued messages are abandoned). */
  close(): void {
    this.#closing = true;
    for (const m of this.members) m.client?.close();
  }
}

/** The `ws` constructor, keeping the last socket error on the member (the SDK keeps HTTP statuses at upgrade to itself). */
function socketFor(m: Member): WebSocketCtor {
  return class extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols);
      this.on('error', (e: Error) => (m.socketError = e.message));
    }
  } as unknown as WebSocketCtor;
}
