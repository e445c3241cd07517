/**
 * What the client sends, and when: the outbox (G4) in send order, control frames (ping, joins,
 * leaves, room list, auth) first, every frame paced by a token bucket mirroring the server's
 * announced rate, and the resend rounds after a passing refusal. A room whose send was refused for
 * a passing reason (`later`) is held: nothing more of it goes out until the round's delay is over
 * and none of its sends is in flight (the server fences the same way, per room and connection);
 * then its queue goes out again in outbox order, the refused message first (sender order, G9).
 * Other rooms keep flowing. The connection itself (the socket, its generation, the rooms' states)
 * belongs to the client, reached through SenderHost.
 */
import type { RetryClass } from '../protocol/codes.js';
import type { ClientFrame, ServerFrameOf } from '../protocol/frames.js';
import type { Backoff } from './backoff.js';
import type { RoomCursors } from './cursors.js';
import { ClientError } from './errors.js';
import type { HistoryRequests } from './history-requests.js';
import { Outbox, type OutboxEntry, newMessageId } from './outbox.js';
import { Pacer, type PacingOptions } from './pacer.js';
import type { RoomStates, Waiter } from './room-state.js';
import type { AckEvent, ClientEvents, WebSocketLike } from './types.js';
import { utf8Bytes } from './wire.js';

const OPEN = 1;
/** The server refused a send because an earlier one on this connection failed: resend that one first. */
const FENCED = 'fenced';
/** The resend delay after a refusal never goes below this, whatever backoff.minMs is (no tight loop). */
const MIN_FLUSH_MS = 100;
/** Rounds in a row answered only with `fenced` (no ack, no other refusal) after which a new connection clears the fence. */
const FENCED_ROUNDS_RECONNECT = 2;

/** A frame that is not a message, waiting for a token; built when it goes out (a join's `since` is read then). */
export type ControlItem = { t: 'join'; room: string } | { t: 'leave'; room: string } | { t: 'rooms' } | { t: 'ping' } | { t: 'auth'; token: string };
export type Limits = Partial<ServerFrameOf<'welcome'>['limits']>;

/** What the sender needs of its client. */
export interface SenderHost {
  /** A `welcome` arrived on the current socket. */
  connected(): boolean;
  /** The current connection's generation (timers of an older one do nothing). */
  gen(): number;
  socket(): WebSocketLike | null;
  readonly cursors: RoomCursors;
  readonly rooms: RoomStates;
  readonly history: HistoryRequests;
  /** Someone waits for a room list. */
  roomsWanted(): boolean;
  readonly backoff: Backoff;
  random(): number;
  emit<K extends keyof ClientEvents>(event: K, payload: ClientEvents[K]): void;
  /** Fenced again and again: drop this connection (a new one has no fence). */
  fenceReset(): void;
}

export class Sender {
  readonly outbox: Outbox;
  /** Paces every frame by the server's announced rate (unlimited until a `welcome` names one). */
  pacer: Pacer = Pacer.unlimited();
  /** Frames other than messages, waiting for a token, in order (a ping goes first). */
  control: ControlItem[] = [];
  /** The limits of the last `welcome` (kept while reconnecting: joins beyond maxRooms are refused locally). */
  limits: Limits | undefined;
  /** send()/alert() callers waiting for their ack. */
  readonly sendWaiters = new Map<string, Waiter<AckEvent>>();
  /** Answers since the last resend round: decides the next delay and when a fence is ours to clear. */
  #round = { acks: 0, refused: 0, fenced: 0 };
  /** Resend rounds in a row without an ack (the resend delay doubles with each). */
  #flushRounds = 0;
  /** Resend rounds in a row answered only with `fenced`. */
  #fencedRounds = 0;
  #flushTimer: ReturnType<typeof setTimeout> | undefined;
  #paceTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly h: SenderHost,
    outbox: Outbox,
    private readonly pacing: false | Partial<PacingOptions>,
  ) {
    this.outbox = outbox;
  }

  /** A `welcome`: the server's limits, and a bucket that starts full as the server's does. */
  welcome(limits: Limits | undefined): void {
    this.limits = limits;
    this.pacer = this.pacing === false ? Pacer.unlimited() : Pacer.forLimits(limits, this.pacing);
  }

  /**
   * Take a token for an ephemeral frame (typing): only when the bucket is over half full and
   * nothing else waits for it (messages and joins come first).
   */
  takeSpare(): boolean {
    const p = this.pacer;
    if (p.limited && (this.control.length > 0 || this.#paceTimer !== undefined || p.available() < Math.max(1, p.burst / 2))) return false;
    return p.take();
  }

  /** Stop the resend and pacing timers (the connection ends). */
  stopTimers(): void {
    clearTimeout(this.#flushTimer);
    clearTimeout(this.#paceTimer);
    this.#flushTimer = this.#paceTimer = undefined;
  }

  /** Reject every send() caller (the client closed); the messages stay in the outbox. */
  rejectWaiters(err: () => ClientError): void {
    for (const [, w] of this.sendWaiters) w.reject(err());
    this.sendWaiters.clear();
  }

  /** Ask for a join on this connection (once; it waits for a token with the other control frames). */
  queueJoin(room: string): void {
    if (this.h.rooms.join(room) !== undefined) return;
    this.h.rooms.setJoin(room, 'queued');
    this.control.push({ t: 'join', room });
  }

  /** The frame a control item stands for now, or undefined when it is obsolete (a join of a room left meanwhile). */
  #controlFrame(c: ControlItem): ClientFrame | undefined {
    switch (c.t) {
      case 'join': {
        if (!this.h.cursors.has(c.room) || this.h.rooms.join(c.room) !== 'queued') return undefined;
        const since = this.h.cursors.since(c.room);
        return since ? { t: 'join', room: c.room, since } : { t: 'join', room: c.room };
      }
      case 'leave':
        return this.h.cursors.has(c.room) ? undefined : { t: 'leave', room: c.room }; // joined again meanwhile: the join re-syncs
      case 'rooms':
        return this.h.roomsWanted() ? { t: 'rooms' } : undefined;
      case 'ping':
        return { t: 'ping' };
      case 'auth':
        return { t: 'auth', token: c.token };
    }
  }

  onAck(f: ServerFrameOf<'ack'>): void {
    const entry = this.outbox.remove(f.id); // sent → acked
    if (!entry) return;
    this.#round.acks++;
    this.#flushRounds = 0;
    const ack: AckEvent = { id: f.id, room: f.room, offset: f.offset, epoch: f.epoch, dup: f.dup };
    this.h.emit('outbox', { size: this.outbox.size });
    this.h.emit('ack', ack);
    this.sendWaiters.get(f.id)?.resolve(ack);
    this.sendWaiters.delete(f.id);
    if (this.release(entry.room)) this.pump();
  }

  /** A `pub`/`alert` of the outbox was refused: drop it (`never`) or send it again in order (`later`). */
  onMessageRefused(entry: OutboxEntry, f: ServerFrameOf<'error'>, retry: RetryClass, err: ClientError): void {
    if (retry === 'never') {
      this.dropQueued((e) => e.id === entry.id, f.code, f.message, 'never');
      this.h.emit('error', err);
      if (this.release(entry.room)) this.pump();
      return;
    }
    // A passing refusal (`later`): sent → queued; hold its room (everything after it waits), resend
    // the room in outbox order after a delay. The server fenced the room the same way.
    // `fenced` only says an earlier message is being resent first: the SDK handles it, the app is not told.
    this.outbox.markQueued(entry.id);
    if (this.h.rooms.held(entry.room) === undefined) this.h.rooms.setHeld(entry.room, 'waiting');
    if (f.code === FENCED) this.#round.fenced++;
    else {
      this.#round.refused++;
      this.h.emit('error', err);
    }
    if (this.release(entry.room)) this.pump(); // the round's delay was over and this was the last answer it waited for
    else this.#scheduleFlush();
  }

  enqueue(kind: 'msg' | 'alert', room: string, text: string): Promise<AckEvent> {
    if (typeof text !== 'string') return Promise.reject(new ClientError('bad_frame', 'text must be a string', { room, retry: 'never' }));
    const entry: OutboxEntry = { id: newMessageId(), kind, room, text, createdAt: Date.now() };
    this.h.rooms.setTypingAt(room, 0); // a sent message ends "typing"; the next keystroke announces it again
    const p = new Promise<AckEvent>((resolve, reject) => this.sendWaiters.set(entry.id, { resolve, reject }));
    this.outbox.add(entry);
    this.h.emit('outbox', { size: this.outbox.size });
    this.pump();
    return p;
  }

  /** Why a message cannot be sent under the server's limits (it would be refused for good), if so. */
  #overLimits(e: OutboxEntry, data: string): [code: string, message: string] | undefined {
    const l = this.limits;
    if (typeof l?.maxTextChars === 'number' && e.text.length > l.maxTextChars) return ['text_too_long', `at most ${l.maxTextChars} characters (not sent)`];
    if (typeof l?.maxFrameBytes === 'number' && utf8Bytes(data, l.maxFrameBytes) > l.maxFrameBytes) return ['too_large', `the frame would exceed ${l.maxFrameBytes} bytes (not sent)`];
    return undefined;
  }

  /** Write one frame now (the caller took its token). */
  sendFrame(frame: ClientFrame): boolean {
    return this.write(JSON.stringify(frame));
  }

  write(data: string): boolean {
    const ws = this.h.socket();
    if (!ws || ws.readyState !== OPEN) return false;
    try {
      ws.send(data);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Send what may go now, one token each: control frames first (ping, joins, leaves, room list, in
   * order), then the outbox in send order — entries `queued` whose room is joined on this
   * connection and not held. Within a room nothing overtakes an entry that cannot go yet, so a
   * room's messages leave in send order; `sent` entries are in flight and never sent again on this
   * connection. Out of tokens: a timer continues when the next one is due.
   */
  pump(): void {
    if (!this.h.connected()) return;
    clearTimeout(this.#paceTimer);
    this.#paceTimer = undefined;
    while (this.control.length > 0) {
      const frame = this.#controlFrame(this.control[0]!);
      if (frame === undefined) {
        this.control.shift(); // obsolete: costs no token
        continue;
      }
      if (!this.pacer.take()) return this.#paceLater();
      if (!this.sendFrame(frame)) return; // the socket is going away; its close starts over
      this.control.shift();
      if (frame.t === 'join') this.h.rooms.setJoin(frame.room, 'sent');
      else if (frame.t === 'leave') this.h.rooms.addLeave(frame.room);
    }
    for (const h of this.h.history.list) {
      if (h.state !== 'queued' || this.h.rooms.joined(h.room) === undefined) continue;
      if (!this.pacer.take()) return this.#paceLater();
      if (!this.sendFrame({ t: 'history', room: h.room, ...(h.before !== undefined ? { before: h.before } : {}), ...(h.limit !== undefined ? { limit: h.limit } : {}) })) return;
      h.state = 'sent';
    }
    const blocked = new Set<string>();
    for (const e of this.outbox.list()) {
      if (e.state === 'sent' || blocked.has(e.room)) continue;
      if (this.h.rooms.held(e.room) !== undefined || this.h.rooms.joined(e.room) === undefined) {
        blocked.add(e.room);
        continue;
      }
      const data = JSON.stringify(e.kind === 'alert' ? { t: 'alert', id: e.id, text: e.text } : { t: 'pub', id: e.id, room: e.room, text: e.text });
      const over = this.#overLimits(e, data);
      if (over) {
        // refused for good before it costs anything: the server would say the same (too_large would even close the socket)
        this.dropQueued((x) => x.id === e.id, over[0], over[1], 'never');
        this.h.emit('error', new ClientError(over[0], over[1], { id: e.id, room: e.room, retry: 'never' }));
        continue;
      }
      if (!this.pacer.take()) return this.#paceLater();
      if (!this.write(data)) return;
      this.outbox.markSent(e.id); // queued → sent
    }
  }

  /** Out of tokens with frames waiting: pump again when the next token is due. */
  #paceLater(): void {
    if (this.#paceTimer !== undefined) return;
    const gen = this.h.gen();
    this.#paceTimer = setTimeout(() => {
      this.#paceTimer = undefined;
      if (gen === this.h.gen()) this.pump();
    }, Math.max(1, this.pacer.waitMs()));
  }

  /**
   * Release a held room whose resend round is due once none of its sends is in flight (each was
   * answered: the server fenced them, so none can be overtaken). True when released.
   */
  release(room: string): boolean {
    if (this.h.rooms.held(room) !== 'due' || this.outbox.inFlight(room) > 0) return false;
    this.h.rooms.setHeld(room, undefined);
    return true;
  }

  /** The resend round after a passing refusal: held rooms become due and go out again in outbox order (the server dedupes repeats by id). */
  flush(): void {
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    const r = this.#round;
    this.#round = { acks: 0, refused: 0, fenced: 0 };
    this.#fencedRounds = r.fenced > 0 && r.acks === 0 && r.refused === 0 ? this.#fencedRounds + 1 : 0;
    if (this.#fencedRounds >= FENCED_ROUNDS_RECONNECT && this.h.socket()) {
      // Fenced again and again with nothing earlier of ours refused: the message the server waits
      // for is gone from the outbox (left its room, dropped). A new connection has no fence.
      this.h.fenceReset();
      return;
    }
    this.dropQueued((e) => e.kind === 'msg' && !this.h.cursors.has(e.room), 'not_joined', 'room no longer joined', 'never');
    for (const room of this.h.rooms.heldRooms()) {
      this.h.rooms.setHeld(room, 'due');
      this.release(room);
    }
    this.pump();
  }

  /**
   * After a passing refusal (store failed, bus down, rate limited, fenced): one resend round after
   * a jittered delay, 2·minMs·(1..2) at first, doubling with every round without an ack, at most
   * maxMs; never below MIN_FLUSH_MS. Several refusals of one round share one resend.
   */
  #scheduleFlush(): void {
    if (this.#flushTimer !== undefined) return;
    const base = Math.max(MIN_FLUSH_MS, 2 * this.h.backoff.minMs) * 2 ** Math.min(this.#flushRounds, 16);
    const delay = Math.round(Math.max(MIN_FLUSH_MS, Math.min(this.h.backoff.maxMs, base * (1 + this.h.random()))));
    this.#flushRounds++;
    this.#flushTimer = setTimeout(() => this.flush(), delay);
  }

  /** A new socket: every entry in flight on the old one is queued again; no fence, no hold, nothing waiting for a token. */
  resetConnection(): void {
    this.outbox.requeueAll();
    this.h.history.requeueAll(); // cut by the old socket: asked again once the room is joined
    this.h.rooms.resetConnection();
    this.control = [];
    this.pacer = Pacer.unlimited();
    this.#round = { acks: 0, refused: 0, fenced: 0 };
    this.#flushRounds = 0;
    this.#fencedRounds = 0;
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    clearTimeout(this.#paceTimer);
    this.#paceTimer = undefined;
  }

  dropQueued(pred: (e: OutboxEntry) => boolean, code: string, message: string, retry: RetryClass): void {
    const gone = this.outbox.removeWhere(pred);
    if (gone.length === 0) return;
    this.h.emit('outbox', { size: this.outbox.size });
    for (const e of gone) {
      const w = this.sendWaiters.get(e.id);
      this.sendWaiters.delete(e.id);
      w?.reject(new ClientError(code, message, { id: e.id, room: e.room, retry }));
    }
  }
}
