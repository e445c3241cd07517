import type { ChatMessage, Position } from '../protocol/frames.js';
import { type StorageLike, readJson, writeJson } from './storage.js';

/** Per joined room: the last position seen, or null before the first message. */
export type RoomPositions = Record<string, Position | null>;

function isPositions(v: unknown): v is RoomPositions {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  for (const p of Object.values(v as Record<string, unknown>)) {
    if (p === null) continue;
    if (typeof p !== 'object') return false;
    const q = p as Record<string, unknown>;
    if (typeof q.epoch !== 'string' || typeof q.offset !== 'number' || !Number.isInteger(q.offset) || q.offset < 0) return false;
  }
  return true;
}

/** What `accept` decided about an incoming message. */
export type AcceptResult =
  | { deliver: true; hole?: { from: number; to: number } }
  | { deliver: false; reason: 'old_offset' | 'dup_id' | 'not_joined' };

const SEEN_IDS_PER_ROOM = 512;

/**
 * Remembers, per joined room, the last (epoch, offset) delivered to the app, persisted
 * so a reload resumes too, and drops what was already delivered: any message whose
 * offset is ≤ the last one seen in the same epoch, and any (sender, id) seen recently.
 */
export class RoomCursors {
  readonly #storage: StorageLike;
  readonly #key: string;
  #pos: RoomPositions;
  /** Rooms whose next message may legitimately skip offsets (fresh join, reset, announced gap). */
  #noContinuity = new Set<string>();
  #seen = new Map<string, Set<string>>();

  constructor(storage: StorageLike, key: string) {
    this.#storage = storage;
    this.#key = key;
    this.#pos = { ...readJson(storage, key, {}, isPositions) };
    for (const r of Object.keys(this.#pos)) if (this.#pos[r] === null) this.#noContinuity.add(r);
  }

  rooms(): string[] {
    return Object.keys(this.#pos);
  }
  has(room: string): boolean {
    return Object.hasOwn(this.#pos, room);
  }
  /** The resume point for a join, if any. */
  since(room: string): Position | undefined {
    return this.#pos[room] ?? undefined;
  }
  /** Start tracking a room (no position yet when new). */
  add(room: string): void {
    if (this.has(room)) return;
    this.#pos[room] = null;
    this.#noContinuity.add(room);
    this.#save();
  }
  remove(room: string): void {
    if (!this.has(room)) return;
    delete this.#pos[room];
    this.#seen.delete(room);
    this.#noContinuity.delete(room);
    this.#save();
  }
  /**
   * Apply a `joined` answer. A different epoch (reset) restarts the room at offset 0;
   * without a previous position, or after an announced gap, the next message sets
   * the baseline instead of being checked for continuity.
   */
  joined(room: string, epoch: string, opts: { gap?: boolean } = {}): { reset: boolean } {
    if (!this.has(room)) this.#pos[room] = null;
    const cur = this.#pos[room];
    let reset = false;
    if (cur && cur.epoch !== epoch) {
      this.#pos[room] = { epoch, offset: 0 };
      this.#seen.delete(room);
      this.#noContinuity.add(room);
      reset = true;
    } else if (!cur) {
      this.#noContinuity.add(room);
    } else if (opts.gap) {
      this.#noContinuity.add(room);
    }
    this.#save();
    return { reset };
  }
  /** Decide whether to deliver a message, and advance the position when delivering. */
  accept(m: ChatMessage): AcceptResult {
    if (!this.has(m.room)) return { deliver: false, reason: 'not_joined' };
    const seenKey = `${m.from.user}\u0000${m.id}`;
    const seen = this.#seen.get(m.room);
    if (seen?.has(seenKey)) return { deliver: false, reason: 'dup_id' };
    const cur = this.#pos[m.room];
    let hole: { from: number; to: number } | undefined;
    if (cur && cur.epoch === m.epoch) {
      if (m.offset <= cur.offset) return { deliver: false, reason: 'old_offset' };
      if (!this.#noContinuity.has(m.room) && m.prev > cur.offset) hole = { from: cur.offset + 1, to: m.prev };
    }
    this.#noContinuity.delete(m.room);
    this.#pos[m.room] = { epoch: m.epoch, offset: m.offset };
    this.#save();
    let set = seen;
    if (!set) this.#seen.set(m.room, (set = new Set()));
    set.add(seenKey);
    if (set.size > SEEN_IDS_PER_ROOM) set.delete(set.values().next().value as string);
    return hole ? { deliver: true, hole } : { deliver: true };
  }
  #save(): void {
    writeJson(this.#storage, this.#key, this.#pos);
  }
}
