import { createHash, randomBytes } from 'node:crypto';
import { ConfabError } from '../protocol/codes.js';
import type { ChatMessage } from '../protocol/frames.js';
import type { AppendInput, ReadResult } from './types.js';

export function newEpoch(): string {
  return `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
}

/** The idempotency key of a message within its room. */
export function dedupeKey(user: string, id: string): string {
  return `${user}:${id}`;
}

/**
 * What a resend must match to be the same message: a short hash of kind and text, kept with the
 * idempotency key (so a reused id with other content is told apart also after its message was trimmed).
 */
export function contentHash(input: Pick<AppendInput, 'kind' | 'text'>): string {
  return createHash('sha256').update(input.kind).update('\u0000').update(input.text).digest('base64url').slice(0, 16);
}

/** The size a message counts against CONFAB_HISTORY_MAX_BYTES: UTF-8 bytes of its stored JSON body. */
export function storedBytes(input: Pick<AppendInput, 'id' | 'kind' | 'text' | 'from'>): number {
  return Buffer.byteLength(JSON.stringify({ id: input.id, kind: input.kind, text: input.text, from: input.from }));
}

/** The error for a known id resent with other content (nothing is stored). */
export function conflictError(input: Pick<AppendInput, 'id'>): ConfabError {
  return new ConfabError('duplicate_id_conflict', `message id ${input.id} was already used in this room for a different message`);
}

/** What an idempotency key remembers: enough to answer a resend after its message was trimmed. */
export interface DedupeRecord {
  offset: number;
  prev: number;
  ts: number;
  hash: string;
}

/**
 * The answer to a resend whose message is no longer stored (trimmed or aged out, the key still
 * within the dedupe window): the original offset, prev and time, with the resent content (equal by hash).
 */
export function fromRecord(input: AppendInput, rec: DedupeRecord, epoch: string): ChatMessage {
  return { room: input.room, id: input.id, kind: input.kind, text: input.text, from: input.from, ts: rec.ts, offset: rec.offset, prev: rec.prev, epoch };
}

/** Build a ReadResult for messages read after `after`, detecting a hole before the first one. */
export function readResult(epoch: string, after: number, messages: ChatMessage[], last: number, limit: number): ReadResult {
  const r: ReadResult = { epoch, messages, last, more: false };
  const first = messages[0];
  if (first && first.prev > after) r.gap = { from: after + 1, to: first.prev };
  const tail = messages[messages.length - 1];
  r.more = messages.length >= limit && tail !== undefined && tail.offset < last;
  return r;
}

/**
 * Run `fn` after everything queued before it under `room` in `tails` (one append chain per room:
 * appends of one room run one after another, in call order, whether earlier ones failed or not).
 * A room's entry is removed once its chain is idle; `Promise.allSettled(tails.values())` waits
 * for every chain (close).
 */
export function serial<T>(tails: Map<string, Promise<unknown>>, room: string, fn: () => Promise<T>): Promise<T> {
  const before = tails.get(room) ?? Promise.resolve();
  const p = before.then(fn, fn);
  const tail = p.catch(() => {});
  tails.set(room, tail);
  void tail.then(() => {
    if (tails.get(room) === tail) tails.delete(room);
  });
  return p;
}
