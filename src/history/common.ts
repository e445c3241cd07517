import { randomBytes } from 'node:crypto';
import type { ChatMessage } from '../protocol/frames.js';
import type { ReadResult } from './types.js';

export function newEpoch(): string {
  return `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
}

/** The idempotency key of a message within its room. */
export function dedupeKey(user: string, id: string): string {
  return `${user}:${id}`;
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
