/**
 * The client's `history()` calls: each `queued` until its room is joined on a connection and a
 * token is free, then `sent`; answered in request order by `history` frames, or by an error naming
 * its room (a passing one is asked again after a delay, at most HISTORY_RETRIES times).
 */
import type { RetryClass } from '../protocol/codes.js';
import type { ChatMessage, ServerFrameOf } from '../protocol/frames.js';
import type { ClientError } from './errors.js';
import type { Waiter } from './room-state.js';
import type { HistoryPage } from './types.js';

export type HistoryRequest = { room: string; before?: number; limit?: number; state: 'queued' | 'sent'; attempts: number } & Waiter<HistoryPage>;

/** `later` refusals of one history request retried before it rejects. */
export const HISTORY_RETRIES = 8;

export class HistoryRequests {
  /** Not answered yet, in the order they go out (a retried one moves to the end). */
  #reqs: HistoryRequest[] = [];

  get list(): readonly HistoryRequest[] {
    return this.#reqs;
  }

  add(h: HistoryRequest): void {
    this.#reqs.push(h);
  }

  /** A request of `room` is on the wire. */
  inFlight(room: string): boolean {
    return this.#reqs.some((h) => h.room === room && h.state === 'sent');
  }

  /** A `history` frame answers the oldest request of its room in flight. */
  answer(f: ServerFrameOf<'history'>): void {
    const i = this.#reqs.findIndex((h) => h.room === f.room && h.state === 'sent');
    if (i < 0) return;
    const [h] = this.#reqs.splice(i, 1);
    h!.resolve({ messages: f.msgs.map(({ t: _t, ...m }) => m as ChatMessage), more: f.more });
  }

  /**
   * An error answered the oldest request of `room` in flight: rejected (`never`, `reconnect`, or too
   * many tries), or queued again at the end; returns the request when it is to be asked again.
   */
  refused(room: string, retry: RetryClass, err: ClientError): HistoryRequest | undefined {
    const i = this.#reqs.findIndex((h) => h.room === room && h.state === 'sent');
    if (i < 0) return undefined;
    const [h] = this.#reqs.splice(i, 1);
    if (retry !== 'later' || ++h!.attempts > HISTORY_RETRIES) {
      h!.reject(err);
      return undefined;
    }
    h!.state = 'queued';
    this.#reqs.push(h!); // it goes out again after those already sent (answers come in request order)
    return h;
  }

  rejectRoom(room: string, err: ClientError): void {
    const gone = this.#reqs.filter((h) => h.room === room);
    if (gone.length === 0) return;
    this.#reqs = this.#reqs.filter((h) => h.room !== room);
    for (const h of gone) h.reject(err);
  }

  rejectAll(err: (room: string) => ClientError): void {
    for (const h of this.#reqs.splice(0)) h.reject(err(h.room));
  }

  /** A new connection: every request is asked again once its room is joined. */
  requeueAll(): void {
    for (const h of this.#reqs) h.state = 'queued';
  }
}
