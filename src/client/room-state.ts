/**
 * One state object per room (issue 8 item 6): everything the client tracks about a room besides
 * its persisted position (cursors.ts) lives in one RoomState, reached through RoomStates. What
 * belongs to the current connection (the join in flight, the `joined` answer, a held resend round,
 * a leave not answered yet) is cleared by `resetConnection`; the rest (join() callers waiting, the
 * rejoin count, the typing throttle) outlives a reconnect.
 */
import type { ClientError } from './errors.js';
import type { JoinedEvent } from './types.js';

export type Waiter<T> = { resolve: (v: T) => void; reject: (e: ClientError) => void };

export interface RoomState {
  /** This connection's join of the room: queued (waiting for a token) or sent (not answered yet). */
  join?: 'queued' | 'sent';
  /** The `joined` answer on this connection: the room's queued messages may flow. */
  joined?: JoinedEvent;
  /**
   * Sends of the room were refused for a passing reason: nothing more of the room goes out until
   * the resend round (`waiting`: its delay runs; `due`: released once none of its sends is in flight).
   */
  held?: 'waiting' | 'due';
  /** A leave written on this connection and not answered with `left` yet. */
  leaving: boolean;
  /** Refused joins in a row (the delay before the next grows). */
  rejoinAttempts: number;
  /** When `typing` was last sent (0: not since the last message). */
  typingAt: number;
  /** join() calls waiting for the room's `joined`. */
  waiters: Waiter<JoinedEvent>[];
}

export class RoomStates {
  readonly #m = new Map<string, RoomState>();

  /** The room's state, created when missing. */
  of(room: string): RoomState {
    let s = this.#m.get(room);
    if (!s) {
      s = { leaving: false, rejoinAttempts: 0, typingAt: 0, waiters: [] };
      this.#m.set(room, s);
    }
    return s;
  }

  /** The room's state if it has one. */
  peek(room: string): RoomState | undefined {
    return this.#m.get(room);
  }

  /** Forget a room's state when nothing is left in it. */
  tidy(room: string): void {
    const s = this.#m.get(room);
    if (s && s.join === undefined && s.joined === undefined && s.held === undefined && !s.leaving && s.rejoinAttempts === 0 && s.typingAt === 0 && s.waiters.length === 0) this.#m.delete(room);
  }

  join(room: string): 'queued' | 'sent' | undefined {
    return this.#m.get(room)?.join;
  }
  /** Set or clear (undefined) this connection's join; true when there was one. */
  setJoin(room: string, v: 'queued' | 'sent' | undefined): boolean {
    const s = v === undefined ? this.#m.get(room) : this.of(room);
    const had = s?.join !== undefined;
    if (s) s.join = v;
    if (v === undefined) this.tidy(room);
    return had;
  }

  joined(room: string): JoinedEvent | undefined {
    return this.#m.get(room)?.joined;
  }
  /** Set or clear (undefined) the `joined` answer; true when there was one. */
  setJoined(room: string, f: JoinedEvent | undefined): boolean {
    const s = f === undefined ? this.#m.get(room) : this.of(room);
    const had = s?.joined !== undefined;
    if (s) s.joined = f;
    if (f === undefined) this.tidy(room);
    return had;
  }

  held(room: string): 'waiting' | 'due' | undefined {
    return this.#m.get(room)?.held;
  }
  setHeld(room: string, v: 'waiting' | 'due' | undefined): void {
    if (v === undefined) {
      const s = this.#m.get(room);
      if (s) s.held = undefined;
      this.tidy(room);
    } else this.of(room).held = v;
  }
  /** Rooms held now. */
  heldRooms(): string[] {
    return [...this.#m].filter(([, s]) => s.held !== undefined).map(([r]) => r);
  }

  addLeave(room: string): void {
    this.of(room).leaving = true;
  }
  /** The room's leave was answered (or refused): true when one was in flight. */
  takeLeave(room: string): boolean {
    const s = this.#m.get(room);
    if (!s?.leaving) return false;
    s.leaving = false;
    this.tidy(room);
    return true;
  }

  typingAt(room: string): number {
    return this.#m.get(room)?.typingAt ?? 0;
  }
  setTypingAt(room: string, at: number): void {
    if (at === 0) {
      const s = this.#m.get(room);
      if (s) s.typingAt = 0;
      this.tidy(room);
    } else this.of(room).typingAt = at;
  }

  rejoinAttempts(room: string): number {
    return this.#m.get(room)?.rejoinAttempts ?? 0;
  }
  setRejoinAttempts(room: string, n: number): void {
    if (n === 0) {
      const s = this.#m.get(room);
      if (s) s.rejoinAttempts = 0;
      this.tidy(room);
    } else this.of(room).rejoinAttempts = n;
  }

  addWaiter(room: string, w: Waiter<JoinedEvent>): void {
    this.of(room).waiters.push(w);
  }
  /** The room's join() callers, removed. */
  takeWaiters(room: string): Waiter<JoinedEvent>[] {
    const s = this.#m.get(room);
    if (!s) return [];
    const w = s.waiters;
    s.waiters = [];
    this.tidy(room);
    return w;
  }
  /** Every room's join() callers, removed. */
  takeAllWaiters(): [string, Waiter<JoinedEvent>[]][] {
    return [...this.#m.keys()].map((r) => [r, this.takeWaiters(r)] as [string, Waiter<JoinedEvent>[]]).filter(([, w]) => w.length > 0);
  }

  /** A new connection: no join, `joined`, hold or leave of the old one counts any more. */
  resetConnection(): void {
    for (const [room, s] of [...this.#m]) {
      s.join = undefined;
      s.joined = undefined;
      s.held = undefined;
      s.leaving = false;
      this.tidy(room);
    }
  }

  /** Rooms with state (tests). */
  get size(): number {
    return this.#m.size;
  }
}
