/**
 * History: the ordered, durable per-room log. It assigns offsets, dedupes client
 * ids, and answers resume reads. Offsets are strictly increasing within a room
 * and an epoch (they need not be contiguous: each message carries `prev`).
 */
import type { ChatMessage, Sender } from '../protocol/frames.js';

export interface AppendInput {
  room: string;
  /** Client-made id; (room, from.user, id) is the idempotency key. */
  id: string;
  kind: 'msg' | 'alert';
  text: string;
  from: Sender;
  ts: number;
}

export interface AppendResult {
  /** The stored message (for a duplicate: the one stored the first time). */
  message: ChatMessage;
  duplicate: boolean;
}

export interface RoomInfo {
  epoch: string;
  /** Offset of the oldest message still kept, 0 when the room is empty. */
  first: number;
  /** Offset of the newest message, 0 when the room has none. */
  last: number;
}

export interface ReadResult {
  epoch: string;
  /** Ascending by offset, all > `after`. */
  messages: ChatMessage[];
  /** Set when messages right after `after` are gone for good: offsets from..to inclusive. */
  gap?: { from: number; to: number };
  /** Newest offset in the room when read (0 when empty). */
  last: number;
  /** True when more messages after the last returned exist (read again from there). */
  more: boolean;
}

export interface History {
  readonly kind: string;
  /**
   * Store one message and resolve only once it is as durable as the adapter promises (docs: G8).
   * A second append with the same (room, from.user, id) within the dedupe window stores nothing
   * and resolves with the first message and duplicate=true. Rejects with ConfabError
   * ('store_failed' or 'bus_unavailable') when nothing was stored. Appends to one room issued one
   * after another without awaiting are stored in the order they were issued.
   */
  append(input: AppendInput): Promise<AppendResult>;
  /** Messages with offset > after, ascending, at most `limit`. */
  read(room: string, after: number, limit: number): Promise<ReadResult>;
  /** The newest `limit` messages of the room, ascending. */
  recent(room: string, limit: number): Promise<ReadResult>;
  info(room: string): Promise<RoomInfo>;
  close(): Promise<void>;
}

/**
 * Inspection the gateway never needs, for tests and tools. Optional: every adapter in this repo
 * (memory, LMDB, JetStream, Redis Streams) implements it; the History contract uses it.
 */
export interface HistoryInspect {
  /** Rooms that have stored messages (may be capped by the adapter). */
  rooms(): Promise<string[]>;
}

/**
 * Retention and dedupe, the same settings on every adapter (CONFAB_HISTORY_LIMIT,
 * CONFAB_HISTORY_MAX_AGE_S, CONFAB_HISTORY_MAX_BYTES, CONFAB_DEDUPE_WINDOW_S; docs/retention.md).
 * A room keeps at most `limit` messages, none older than `maxAgeMs`, and its oldest ones are
 * dropped while its stored bytes exceed `maxBytes` (the newest message is always kept). A
 * (room, user, id) key is remembered for `dedupeWindowMs` after its message was stored, also
 * when the message itself was trimmed meanwhile. A room whose messages all aged out and whose
 * ids were all forgotten is forgotten too (its metadata goes); its offsets never go back: a room
 * used again continues above every offset it had (a reader that saw old offsets is told `gap`).
 */
export interface Retention {
  /** Messages kept per room (≥ 1). */
  limit: number;
  /** Messages older than this are dropped (ms); 0 = no age limit. */
  maxAgeMs: number;
  /** Per room: oldest messages dropped while the room's stored bytes exceed this; 0 = no byte limit. */
  maxBytes: number;
  /** How long an idempotency key is remembered (ms), independent of trimming. */
  dedupeWindowMs: number;
}

/** Defaults: 10,000 messages, 30 days, 16 MiB per room, ids remembered 15 minutes. */
export const DEFAULT_RETENTION: Retention = { limit: 10_000, maxAgeMs: 30 * 24 * 3600_000, maxBytes: 16 * 1024 * 1024, dedupeWindowMs: 15 * 60_000 };
