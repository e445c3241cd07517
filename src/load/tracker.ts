/**
 * Bookkeeping of a load run, independent of sockets: what was scheduled, what was
 * acknowledged (with which offset), what each member of each room was given by
 * its SDK client, and the verdicts that follow (loss, duplicates, order, gaps,
 * latency). Every acknowledged message must reach every member of its room
 * exactly once, with the same offset for everyone, in increasing offset order.
 */
import { Histogram } from './histogram.js';
import { decodePayload } from './payload.js';

/** Per room: the messages of this run, indexed by their room sequence number. */
export class RoomLedger {
  members = 0;
  /** Scheduled send time (ms, performance.now()) per seq. */
  readonly sched: number[] = [];
  /** Offset from the ack, per seq (undefined until acknowledged). */
  readonly acked: (number | undefined)[] = [];
  /** Offset first seen for seq (from the ack or a delivery): every later sighting must agree. */
  readonly offsetOf: (number | undefined)[] = [];
  /** Distinct members that were given seq. */
  readonly reached: number[] = [];
  readonly refused: boolean[] = [];
  ackCount = 0;
  refusedCount = 0;
  constructor(readonly name: string) {}
}

/** One client's view of one room. */
export class MemberTrack {
  /** Times each seq was delivered to the app (0, 1, or more = duplicate). */
  counts = new Uint8Array(64);
  /** Offset of the last message delivered in this room (any sender), undefined before the first or after a gap. */
  last: number | undefined;
  delivered = 0;
  duplicates = 0;
  orderViolations = 0;
  gaps = 0;
  constructor(readonly ledger: RoomLedger, readonly client: number) {}
}

/** A message as delivered to the app by the SDK (the fields the tracker reads). */
export interface DeliveredMessage {
  room: string;
  offset: number;
  prev: number;
  text: string;
}

/** Per-room verdicts. */
export interface RoomSummary {
  room: string;
  members: number;
  scheduled: number;
  acked: number;
  refused: number;
  /** Acknowledged messages × members that never arrived. */
  lost: number;
  duplicates: number;
  orderViolations: number;
  gaps: number;
}

export class LoadTracker {
  readonly rooms = new Map<string, RoomLedger>();
  readonly members: MemberTrack[] = [];
  /** Delivery latency from the scheduled send time, in µs. */
  readonly latency = new Histogram();
  /** Acknowledged deliveries still owed (acked message × member not given it yet). */
  missing = 0;
  scheduled = 0;
  acked = 0;
  dupAcks = 0;
  refused = 0;
  delivered = 0;
  duplicates = 0;
  orderViolations = 0;
  /** A message whose offset disagrees with its ack or with what another member saw. */
  offsetMismatches = 0;
  /** Holes found by `prev` (prev beyond the last offset seen). */
  prevHoles = 0;
  /** `gap` events of the SDK. */
  sdkGaps = 0;
  /** Messages not of this run (other users, earlier runs, replayed history). */
  foreign = 0;
  readonly refusedByCode: Record<string, number> = {};

  constructor(readonly run: string) {}

  room(name: string): RoomLedger {
    let r = this.rooms.get(name);
    if (!r) this.rooms.set(name, (r = new RoomLedger(name)));
    return r;
  }

  /** Register client `client` as a member of `room` (before anything is scheduled there). */
  addMember(room: string, client: number): MemberTrack {
    const ledger = this.room(room);
    ledger.members++;
    const m = new MemberTrack(ledger, client);
    this.members.push(m);
    return m;
  }

  /** A message is due for `room` at `schedMs`: returns its room seq. */
  schedule(room: string, schedMs: number): number {
    const r = this.room(room);
    const seq = r.sched.length;
    r.sched.push(schedMs);
    r.reached.push(0);
    this.scheduled++;
    return seq;
  }

  /** The server acknowledged `seq` of `room` with `offset`. */
  ack(room: string, seq: number, offset: number, dup: boolean): void {
    const r = this.room(room);
    if (r.acked[seq] !== undefined || seq >= r.sched.length) return;
    r.acked[seq] = offset;
    r.ackCount++;
    this.acked++;
    if (dup) this.dupAcks++;
    this.#checkOffset(r, seq, offset);
    this.missing += r.members - (r.reached[seq] ?? 0);
  }

  /** The server (or the SDK) refused `seq` for good: it is not owed to anyone. */
  refuse(room: string, seq: number, code: string): void {
    const r = this.room(room);
    if (r.refused[seq] || r.acked[seq] !== undefined) return;
    r.refused[seq] = true;
    r.refusedCount++;
    this.refused++;
    this.refusedByCode[code] = (this.refusedByCode[code] ?? 0) + 1;
  }

  /** Sent but neither acknowledged nor refused yet. */
  get inflight(): number {
    return this.scheduled - this.acked - this.refused;
  }

  /** The SDK delivered `msg` to member `m` at `nowMs` (performance.now()). */
  deliver(m: MemberTrack, msg: DeliveredMessage, nowMs: number): void {
    const seq = decodePayload(this.run, msg.text);
    const seenBefore = seq !== undefined && seq < m.counts.length && m.counts[seq]! > 0;
    if (m.last !== undefined) {
      if (msg.offset === m.last) {
        if (!seenBefore) this.#dup(m);
      } else if (msg.offset < m.last) {
        if (!seenBefore) this.#order(m);
      } else if (msg.prev > m.last) {
        m.gaps++;
        this.prevHoles++;
      } else if (msg.prev < m.last) {
        this.#order(m);
      }
    }
    if (m.last === undefined || msg.offset > m.last) m.last = msg.offset;
    if (seq === undefined) {
      this.foreign++;
      return;
    }
    const r = m.ledger;
    if (seq >= r.sched.length) {
      this.foreign++;
      return;
    }
    if (seq >= m.counts.length) {
      const bigger = new Uint8Array(Math.max(seq + 1, m.counts.length * 2));
      bigger.set(m.counts);
      m.counts = bigger;
    }
    if (m.counts[seq]! < 255) m.counts[seq]!++;
    this.#checkOffset(r, seq, msg.offset);
    if (seenBefore) {
      this.#dup(m);
      return;
    }
    r.reached[seq] = (r.reached[seq] ?? 0) + 1;
    if (r.acked[seq] !== undefined) this.missing--;
    m.delivered++;
    this.delivered++;
    this.latency.record(Math.max(0, Math.round((nowMs - r.sched[seq]!) * 1000)));
  }

  /** The SDK announced a gap (or a history reset) in member `m`'s room: count it, restart the continuity check. */
  gap(m: MemberTrack): void {
    m.gaps++;
    this.sdkGaps++;
    m.last = undefined;
  }

  /** Per-room verdicts; `lost` counts acked messages × members that never arrived. */
  summaries(): RoomSummary[] {
    const byRoom = new Map<string, RoomSummary>();
    for (const r of this.rooms.values()) {
      let lost = 0;
      for (let s = 0; s < r.sched.length; s++) if (r.acked[s] !== undefined) lost += r.members - (r.reached[s] ?? 0);
      byRoom.set(r.name, { room: r.name, members: r.members, scheduled: r.sched.length, acked: r.ackCount, refused: r.refusedCount, lost, duplicates: 0, orderViolations: 0, gaps: 0 });
    }
    for (const m of this.members) {
      const s = byRoom.get(m.ledger.name)!;
      s.duplicates += m.duplicates;
      s.orderViolations += m.orderViolations;
      s.gaps += m.gaps;
    }
    return [...byRoom.values()];
  }

  /** Acked messages × members that never arrived (same as `missing`, recounted from the ledgers). */
  lost(): number {
    let n = 0;
    for (const s of this.summaries()) n += s.lost;
    return n;
  }

  #dup(m: MemberTrack): void {
    m.duplicates++;
    this.duplicates++;
  }
  #order(m: MemberTrack): void {
    m.orderViolations++;
    this.orderViolations++;
  }
  #checkOffset(r: RoomLedger, seq: number, offset: number): void {
    const known = r.offsetOf[seq];
    if (known === undefined) r.offsetOf[seq] = offset;
    else if (known !== offset) this.offsetMismatches++;
  }
}
