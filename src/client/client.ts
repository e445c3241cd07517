import { type RetryClass, codeForClose, ErrorCodes, shouldReconnect } from '../protocol/codes.js';
import type { ChatMessage, ClientFrame, ServerFrame, ServerFrameOf } from '../protocol/frames.js';
import { ALERTS_ROOM, HISTORY_PAGE_MAX, ROOM_RE, SUBPROTOCOL } from './constants.js';
import { Backoff } from './backoff.js';
import { RoomCursors } from './cursors.js';
import { Emitter } from './emitter.js';
import { ClientError, retryClassOf } from './errors.js';
import { Outbox, type OutboxEntry, type OutboxState, newMessageId } from './outbox.js';
import { Pacer, type PacingOptions } from './pacer.js';
import { ReadinessProbe } from './probe.js';
import { freshToken, type RenewFetch } from './renew.js';
import { watchNetwork } from './network.js';
import { Keepalive } from './keepalive.js';
import { UrlRotation } from './urls.js';
import { MemoryStorage, type StorageLike } from './storage.js';
import type { AckEvent, ClientEvents, ClientOptions, ConnectionState, HistoryOptions, HistoryPage, JoinedEvent, StateChange, WebSocketCtor, WebSocketLike } from './types.js';
import { transition } from './state.js';
import { RoomStates, type Waiter } from './room-state.js';
import { Sender, type SenderHost } from './sender.js';
import { HistoryRequests } from './history-requests.js';
import { parseServerFrame, retryHint, socketUrl } from './wire.js';

export { retryHint, socketUrl } from './wire.js';
import { TransportChooser, type TransportName } from './transport.js';

const OPEN = 1;
/** `session_expired`'s close code. */
const CLOSE_SESSION_EXPIRED = 4500;
const TYPING_THROTTLE_MS = 2000;
/** A connection that lasted this long resets the backoff; one dropped sooner keeps climbing it. */
const STABLE_MS = 5_000;
const RATE_LIMITED = 'rate_limited';
/** The delay before a refused join or history request is asked again never goes below this. */
const MIN_FLUSH_MS = 100;

/**
 * The confab client: one WebSocket with explicit states, reconnect with full-jitter
 * backoff, resume by (epoch, offset) per room, dedupe, and a persisted outbox.
 * Works in browsers and in Node (pass the `ws` package as `WebSocket`).
 */
export class ConfabClient extends Emitter<ClientEvents> {
  /** Gateways to try, in turn: a dropped connection moves on to the next one. */
  readonly #gateways: UrlRotation;
  readonly #token: ClientOptions['token'];
  /** The token the current socket opened with (or last renewed to); a string `token` is replaced by its renewals. */
  #lastToken: string | undefined;
  readonly #fetch: RenewFetch | undefined;
  /** A renewal in flight (one at a time). */
  #renewing = false;
  readonly #transports: TransportChooser;
  /** The transport of the current (or last) attempt, and whether a frame came over it yet. */
  #transport: TransportName | undefined;
  #gotFrame = false;
  readonly #storage: StorageLike;
  readonly #backoff: Backoff;
  readonly #cursors: RoomCursors;
  /** App-level ping/pong while connected. */
  readonly #keepalive: Keepalive;
  readonly #connectTimeoutMs: number;
  readonly #random: () => number;
  readonly #probe: ReadinessProbe;
  /** The attempt under way was started by a readiness probe (not by the backoff timer). */
  #openedByProbe = false;

  /** The outbox, control frames, pacing and resend rounds (sender.ts). */
  readonly #sender: Sender;

  #state: ConnectionState = 'idle';
  #ws: WebSocketLike | null = null;
  #gen = 0;
  #welcome: ServerFrameOf<'welcome'> | undefined;
  /**
   * One state object per room (room-state.ts): this connection's join and `joined` answer, a held
   * resend round (the server fences the same way, per room and connection; other rooms keep
   * flowing), a leave in flight, rejoin attempts, the typing throttle and join() callers waiting.
   */
  readonly #rooms = new RoomStates();
  #rejoinTimers = new Set<ReturnType<typeof setTimeout>>();
  #roomsWaiters: Waiter<ServerFrameOf<'rooms'>['rooms']>[] = [];
  /** history() calls not answered yet, in the order they go out (a retried one moves to the end). */
  readonly #history = new HistoryRequests();
  #lastSocketError: string | undefined;
  #connectedAt = 0;
  #timers: {
    retry?: ReturnType<typeof setTimeout>;
    open?: ReturnType<typeof setTimeout>;
    frame?: ReturnType<typeof setTimeout>;
  } = {};
  #unwatchNetwork: (() => void) | undefined;

  constructor(opts: ClientOptions) {
    super();
    const urls = typeof opts?.url === 'string' ? [opts.url] : Array.isArray(opts?.url) ? opts.url : [];
    if (urls.length === 0 || urls.some((u) => typeof u !== 'string')) throw new TypeError('ConfabClient: options.url is required (a URL or a non-empty list of URLs)');
    if (typeof opts.token !== 'string' && typeof opts.token !== 'function') throw new TypeError('ConfabClient: options.token is required');
    for (const u of urls) socketUrl(u, 'x'); // validate early
    const WS = opts.WebSocket ?? (globalThis as { WebSocket?: WebSocketCtor }).WebSocket;
    this.#gateways = new UrlRotation(urls);
    this.#token = opts.token;
    this.#storage = opts.storage ?? new MemoryStorage();
    this.#random = opts.random ?? Math.random;
    this.#transports = new TransportChooser(
      {
        ...(opts.transport !== undefined ? { transport: opts.transport } : {}),
        ...(opts.fallbackAfterMs !== undefined ? { fallbackAfterMs: opts.fallbackAfterMs } : {}),
        ...(opts.upgradeRetryMs !== undefined ? { upgradeRetryMs: opts.upgradeRetryMs } : {}),
      },
      WS,
      opts.fallbackFetch,
      this.#random,
    );
    this.#backoff = new Backoff(opts.backoff, this.#random);
    this.#probe = new ReadinessProbe(opts.probe, { ...(opts.fetch ? { fetch: opts.fetch } : {}), random: this.#random });
    this.#fetch = opts.renewFetch;
    const ns = opts.namespace ?? 'confab';
    const outbox = new Outbox(this.#storage, `${ns}:outbox`);
    this.#cursors = new RoomCursors(this.#storage, `${ns}:rooms`);
    this.#cursors.add(ALERTS_ROOM);
    this.#keepalive = new Keepalive(opts.pingIntervalMs ?? 25_000, opts.pingTimeoutMs ?? 10_000);
    this.#connectTimeoutMs = opts.connectTimeoutMs ?? 10_000;
    this.#sender = new Sender(this.#senderHost(), outbox, opts.pacing === false ? false : (opts.pacing ?? {}));
    if (opts.watchNetwork !== false) this.#watchNetwork();
    if (opts.autoConnect) this.connect();
  }

  /** The sender's view of this client. */
  #senderHost(): SenderHost {
    return {
      connected: () => this.#welcome !== undefined,
      gen: () => this.#gen,
      socket: () => this.#ws,
      cursors: this.#cursors,
      rooms: this.#rooms,
      history: this.#history,
      roomsWanted: () => this.#roomsWaiters.length > 0,
      backoff: this.#backoff,
      random: () => this.#random(),
      emit: (event, payload) => this.emit(event, payload),
      fenceReset: () => {
        this.#abandonSocket(1000, 'fence_reset');
        this.#dropped(1000, 'fence_reset');
      },
    };
  }

  /** Current connection state. */
  get state(): ConnectionState {
    return this.#state;
  }
  /** The transport in use ('websocket' or 'fallback') while connecting or connected; undefined before the first attempt. */
  get transport(): TransportName | undefined {
    return this.#transport;
  }
  /** The last `welcome` (node, region, user, limits), while connected. */
  get welcome(): ServerFrameOf<'welcome'> | undefined {
    return this.#welcome;
  }
  /** Rooms this client is in (persisted; rejoined on every connect), without `_alerts`. */
  get rooms(): string[] {
    return this.#cursors.rooms().filter((r) => r !== ALERTS_ROOM);
  }
  /** Messages not yet acknowledged, in send order, each `queued` or `sent` (in flight on this connection). */
  get pending(): (OutboxEntry & { state: OutboxState })[] {
    return this.#sender.outbox.list();
  }
  /** True once connected and every room is re-joined (queued messages are flowing). */
  get ready(): boolean {
    return this.#welcome !== undefined && this.#cursors.rooms().every((r) => this.#rooms.joined(r) !== undefined);
  }

  /** Open the connection (no-op when already open or opening). */
  connect(): void {
    if (this.#state === 'connecting' || this.#state === 'connected') return;
    if (this.#state === 'reconnecting') clearTimeout(this.#timers.retry);
    if (this.#state === 'idle' || this.#state === 'closed') {
      this.#backoff.reset();
      this.#gateways.reset();
    }
    if (!this.#unwatchNetwork && this.#state === 'closed') this.#watchNetwork();
    const nav = (globalThis as { navigator?: { onLine?: boolean } }).navigator;
    if (this.#unwatchNetwork && nav?.onLine === false) {
      if (this.#state !== 'offline') this.#setState({ state: 'offline' });
      return;
    }
    void this.#open();
  }

  /**
   * Close for good: no reconnect. Queued messages stay in the outbox (and in storage)
   * and are sent by the next connect(); their promises reject with code 'closed'.
   */
  close(): void {
    if (this.#state === 'closed') return;
    this.#abandonSocket(1000, 'client closed');
    this.#connectedAt = 0;
    this.#clearTimers();
    this.#unwatchNetwork?.();
    this.#unwatchNetwork = undefined;
    this.#setState({ state: 'closed' });
    this.#sender.rejectWaiters(() => new ClientError('closed', 'client closed; the message stays in the outbox'));
    for (const [room, ws] of this.#rooms.takeAllWaiters()) for (const w of ws) w.reject(new ClientError('closed', 'client closed', { room }));
    for (const w of this.#roomsWaiters.splice(0)) w.reject(new ClientError('closed', 'client closed'));
    this.#history.rejectAll((room) => new ClientError('closed', 'client closed', { room }));
  }

  /**
   * Join a room (persisted). Resolves with the server's `joined` answer, when connected; a join
   * refused for a passing reason (`rate_limited`, `bus_unavailable`, …) is sent again until it is
   * answered. Rejects for good with `bad_room`, with `too_many_rooms` beyond the server's
   * `maxRooms` (refused locally, nothing sent), or with the server's `never` refusals.
   */
  join(room: string): Promise<JoinedEvent> {
    if (!ROOM_RE.test(room)) return Promise.reject(new ClientError('bad_room', `invalid room name ${JSON.stringify(room)}`, { room, retry: 'never' }));
    const known = this.#rooms.joined(room);
    if (known && this.#cursors.has(room) && this.#rooms.join(room) === undefined) return Promise.resolve(known);
    const isNew = !this.#cursors.has(room);
    const max = this.#sender.limits?.maxRooms;
    if (isNew && typeof max === 'number' && this.rooms.length >= max) {
      const err = new ClientError('too_many_rooms', `at most ${max} rooms per connection (not sent)`, { room, retry: 'never' });
      this.emit('error', err);
      return Promise.reject(err);
    }
    const p = new Promise<JoinedEvent>((resolve, reject) => {
      this.#rooms.addWaiter(room, { resolve, reject });
    });
    this.#cursors.add(room);
    if (this.#welcome) {
      this.#sender.queueJoin(room);
      this.#sender.pump();
    }
    return p;
  }

  /** Leave a room: forget its position and drop its queued messages (they reject with 'not_joined'). */
  leave(room: string): void {
    if (room === ALERTS_ROOM || !this.#cursors.has(room)) return;
    this.#cursors.remove(room);
    const wasJoined = this.#rooms.setJoined(room, undefined);
    const join = this.#rooms.join(room);
    this.#rooms.setJoin(room, undefined); // a join still queued is not sent (the server never saw it)
    this.#rooms.setTypingAt(room, 0);
    this.#rooms.setHeld(room, undefined);
    for (const w of this.#rooms.takeWaiters(room)) w.reject(new ClientError('not_joined', 'left the room', { room }));
    this.#history.rejectRoom(room, new ClientError('not_joined', 'left the room', { room, retry: 'never' }));
    this.#sender.dropQueued((e) => e.room === room, 'not_joined', 'left the room before the message was sent', 'never');
    if (this.#welcome && (wasJoined || join === 'sent')) {
      this.#sender.control.push({ t: 'leave', room });
      this.#sender.pump();
    }
  }

  /**
   * Send a chat message. It is queued in the outbox (persisted) and sent when connected,
   * after the rooms are re-joined; it is resent after a reconnect until acknowledged.
   * Resolves with the ack; rejects with a ClientError when the server refuses it for good.
   */
  send(room: string, text: string): Promise<AckEvent> {
    if (!this.#cursors.has(room) || room === ALERTS_ROOM) return Promise.reject(new ClientError('not_joined', `join ${JSON.stringify(room)} before sending to it`, { room }));
    return this.#sender.enqueue('msg', room, text);
  }

  /** Send an alert to everyone on every node. Same outbox semantics as send(). */
  alert(text: string): Promise<AckEvent> {
    return this.#sender.enqueue('alert', ALERTS_ROOM, text);
  }

  /**
   * Tell the room this user is typing (throttled to once per 2 s per room until the next send).
   * Ephemeral: dropped when not connected, and when the pacing bucket is below half full or other
   * frames wait for it (messages and joins come first).
   */
  typing(room: string): void {
    if (this.#rooms.joined(room) === undefined || room === ALERTS_ROOM) return;
    const now = Date.now();
    if (now - this.#rooms.typingAt(room) < TYPING_THROTTLE_MS) return;
    if (!this.#sender.takeSpare()) return;
    this.#rooms.setTypingAt(room, now);
    this.#sender.sendFrame({ t: 'typing', room });
  }

  /**
   * Older messages of a joined room, for "load older" and for catching up what a resume skipped
   * (`missed`): the newest `limit` (1–200, default 50) with offset < `before` (default: the newest),
   * ascending, and `more` when still older ones are kept. Not passed to `message` handlers and not
   * deduplicated against them. Waits until the room is joined on a connection (a request cut by a
   * reconnect is sent again); passing refusals (`rate_limited`, `store_failed`) are retried after a
   * jittered delay. Rejects with `not_joined` (room not joined, or left), `bad_frame` (bad options),
   * `closed` (client closed), or the server's error.
   */
  history(room: string, opts: HistoryOptions = {}): Promise<HistoryPage> {
    if (!this.#cursors.has(room)) return Promise.reject(new ClientError('not_joined', `join ${JSON.stringify(room)} before asking for its history`, { room, retry: 'never' }));
    const { before, limit } = opts;
    if (before !== undefined && !(Number.isSafeInteger(before) && before >= 0)) return Promise.reject(new ClientError('bad_frame', 'before must be an offset (an integer ≥ 0)', { room, retry: 'never' }));
    if (limit !== undefined && !(Number.isInteger(limit) && limit >= 1 && limit <= HISTORY_PAGE_MAX)) return Promise.reject(new ClientError('bad_frame', `limit must be an integer from 1 to ${HISTORY_PAGE_MAX}`, { room, retry: 'never' }));
    const p = new Promise<HistoryPage>((resolve, reject) => {
      this.#history.add({ room, ...(before !== undefined ? { before } : {}), ...(limit !== undefined ? { limit } : {}), state: 'queued', attempts: 0, resolve, reject });
    });
    this.#sender.pump();
    return p;
  }

  /** An error naming a room with a history request in flight (and no join of it in flight) answers that request. */
  #onHistoryRefused(room: string, retry: RetryClass, err: ClientError): void {
    const h = this.#history.refused(room, retry, err);
    if (h) this.#later(h.attempts, () => this.#sender.pump());
  }

  /** Ask the server for its room list (also emitted as 'rooms'). Rejects ('closed') when not connected or if the connection drops first. */
  listRooms(): Promise<{ name: string; members: number }[]> {
    if (!this.#welcome) return Promise.reject(new ClientError('closed', 'not connected'));
    const p = new Promise<{ name: string; members: number }[]>((resolve, reject) => this.#roomsWaiters.push({ resolve, reject }));
    if (!this.#sender.control.some((c) => c.t === 'rooms')) this.#sender.control.push({ t: 'rooms' });
    this.#sender.pump();
    return p;
  }

  // ---- connection ----------------------------------------------------------

  async #open(byProbe = false): Promise<void> {
    const gen = ++this.#gen;
    this.#probe.stop();
    this.#openedByProbe = byProbe;
    const transport = this.#transports.next();
    this.#transport = transport;
    this.#gotFrame = false;
    this.#setState(byProbe ? { state: 'connecting', reason: 'server_ready', transport } : { state: 'connecting', transport });
    let token: string;
    try {
      token = typeof this.#token === 'function' ? await this.#token() : (this.#lastToken ?? this.#token);
      this.#lastToken = token;
    } catch (err) {
      if (gen !== this.#gen) return;
      this.emit('error', new ClientError('connect_failed', 'could not get a session token', { cause: err }));
      this.#dropped(1006, 'no token');
      return;
    }
    if (gen !== this.#gen || this.#state !== 'connecting') return;
    let ws: WebSocketLike;
    try {
      ws = this.#transports.open(transport, socketUrl(this.#currentUrl, token), SUBPROTOCOL);
    } catch (err) {
      this.emit('error', new ClientError('connect_failed', String((err as Error)?.message ?? err), { cause: err }));
      this.#dropped(1006, 'connect failed', this.#transports.failed(transport, false));
      return;
    }
    this.#ws = ws;
    this.#lastSocketError = undefined;
    // confab.v1 frames are text; accept a binary-framed JSON frame too, decoded synchronously.
    try {
      (ws as { binaryType?: string }).binaryType = 'arraybuffer';
    } catch {
      /* not supported: Blob frames are then reported as bad_server_frame */
    }
    this.#timers.open = setTimeout(() => {
      if (gen !== this.#gen) return;
      this.#abandonSocket(4002, 'connect timeout');
      this.#dropped(1006, 'connect timeout');
    }, this.#connectTimeoutMs);
    // auto: a WebSocket that brings no frame in time (a proxy that passes the upgrade, then nothing) moves to the fallback
    const deadline = this.#transports.frameDeadline(transport);
    if (deadline !== undefined) {
      this.#timers.frame = setTimeout(() => {
        if (gen !== this.#gen || this.#gotFrame) return;
        const now = this.#transports.failed(transport, true);
        this.#abandonSocket(4002, 'no frame');
        this.#dropped(1006, 'no frame', now);
      }, deadline);
    }
    ws.onmessage = (ev) => {
      if (gen !== this.#gen) return;
      if (!this.#gotFrame) {
        this.#gotFrame = true;
        clearTimeout(this.#timers.frame);
        this.#transports.worked(transport);
      }
      this.#onData(ev.data);
    };
    ws.onerror = (ev) => {
      if (gen !== this.#gen) return;
      const e = ev as { message?: string; error?: { message?: string } };
      this.#lastSocketError = e?.message ?? e?.error?.message ?? 'socket error';
    };
    ws.onclose = (ev) => {
      if (gen !== this.#gen) return;
      this.#ws = null;
      const now = !this.#gotFrame && this.#transports.failed(transport, false);
      this.#dropped(ev.code, ev.reason, now);
    };
  }

  /** Detach from the current socket (its late events are ignored) and close it. */
  #abandonSocket(code: number, reason: string): void {
    this.#gen++;
    const ws = this.#ws;
    this.#ws = null;
    this.#welcome = undefined;
    this.#sender.resetConnection();
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
    ws.onerror = () => {};
    try {
      ws.close(code, reason);
    } catch {
      /* already closing */
    }
  }

  /** The connection is gone: decide between reconnecting and closing for good (`now`: at once, over the other transport). */
  #dropped(code: number, reason: string, now = false): void {
    this.#gen++;
    // A gateway that worked is tried again first (behind a load balancer another node answers);
    // an attempt that never reached `welcome` moves on to the next URL of the list.
    const failedAttempt = this.#connectedAt === 0;
    // the first try of another URL in this outage waits only a first backoff step: nobody hammered it yet
    const elsewhere = failedAttempt && this.#gateways.moveOn();
    this.#probe.noteDown(failedAttempt, this.#openedByProbe);
    this.#clearTimers();
    this.#ws = null;
    this.#welcome = undefined;
    this.#sender.resetConnection();
    for (const w of this.#roomsWaiters.splice(0)) w.reject(new ClientError('closed', 'connection lost before the room list arrived'));
    if (this.#connectedAt && Date.now() - this.#connectedAt >= STABLE_MS) this.#backoff.reset();
    this.#connectedAt = 0;
    if (this.#state === 'closed' || this.#state === 'offline') return;
    const unauthorizedAtUpgrade = code === 1006 && /\b401\b/.test(this.#lastSocketError ?? '');
    // an expired session with a token function: the function gives a fresh token, so reconnect
    const renewable = code === CLOSE_SESSION_EXPIRED && typeof this.#token === 'function';
    if ((!shouldReconnect(code) && !renewable) || (unauthorizedAtUpgrade && typeof this.#token === 'string')) {
      const errCode = unauthorizedAtUpgrade ? 'unauthorized' : (codeForClose(code) ?? 'closed');
      this.#unwatchNetwork?.();
      this.#unwatchNetwork = undefined;
      this.#setState({ state: 'closed', closeCode: code, reason: errCode });
      this.emit('error', new ClientError(errCode, reason || undefined, { closeCode: code }));
      return;
    }
    if (unauthorizedAtUpgrade) this.emit('error', new ClientError('unauthorized', 'session refused at upgrade (HTTP 401)', { closeCode: code }));
    const hint = code === 4000 ? retryHint(reason) : undefined;
    const delay = now ? 0 : (hint ?? (elsewhere ? this.#backoff.first() : this.#backoff.next()));
    const why = codeForClose(code) ?? (this.#lastSocketError ? 'connect_failed' : undefined);
    this.#setState({ state: 'reconnecting', retryInMs: delay, closeCode: code, ...(why ? { reason: why } : {}) });
    const retryGen = this.#gen;
    this.#timers.retry = setTimeout(() => {
      if (this.#state === 'reconnecting') void this.#open();
    }, delay);
    // While waiting, ask the next gateway whether it is back: a server seen away and then ready
    // ends the wait at once (the server's own drain hint is honoured as is).
    if (hint === undefined && !now) {
      this.#probe.start(this.#currentUrl, () => {
        if (this.#state !== 'reconnecting' || this.#gen !== retryGen) return;
        clearTimeout(this.#timers.retry);
        this.#timers.retry = undefined;
        void this.#open(true);
      });
    }
  }

  /** The URL the next (or current) attempt uses. */
  get #currentUrl(): string {
    return this.#gateways.current;
  }

  #clearTimers(): void {
    this.#probe.stop();
    this.#transports.stopUpgrade();
    clearTimeout(this.#timers.frame);
    for (const t of this.#rejoinTimers) clearTimeout(t);
    this.#rejoinTimers.clear();
    clearTimeout(this.#timers.retry);
    this.#keepalive.stop();
    clearTimeout(this.#timers.open);
    this.#sender.stopTimers();
    this.#timers = {};
  }

  #setState(change: Omit<StateChange, 'prev'>): void {
    const prev = this.#state;
    this.#state = transition(prev, change.state);
    this.emit('state', { ...change, prev });
  }

  #watchNetwork(): void {
    const onOffline = (): void => {
      if (this.#state === 'closed' || this.#state === 'idle' || this.#state === 'offline') return;
      this.#abandonSocket(1000, 'offline');
      this.#connectedAt = 0;
      this.#clearTimers();
      this.#setState({ state: 'offline' });
    };
    const onOnline = (): void => {
      if (this.#state !== 'offline') return;
      this.#backoff.reset();
      void this.#open();
    };
    this.#unwatchNetwork = watchNetwork(onOffline, onOnline);
  }

  /** Auto, on the fallback: when a WebSocket works again, move back to it (a reconnect that resumes every room). */
  #watchUpgrade(): void {
    const gen = this.#gen;
    this.#transports.watchUpgrade(
      () => (gen === this.#gen && this.#state === 'connected' && this.#lastToken !== undefined ? socketUrl(this.#currentUrl, this.#lastToken) : undefined),
      SUBPROTOCOL,
      () => {
        if (gen !== this.#gen || this.#state !== 'connected') return;
        this.#abandonSocket(1000, 'upgrade');
        this.#connectedAt = 0;
        this.#clearTimers();
        this.#setState({ state: 'reconnecting', retryInMs: 0, reason: 'upgrade' });
        void this.#open();
      },
    );
  }

  #startPing(): void {
    const gen = this.#gen;
    this.#keepalive.start(
      () => gen === this.#gen && this.#ws?.readyState === OPEN,
      () => {
        // first in line for the next token: a long queue of messages must not delay the liveness check
        if (!this.#sender.control.some((c) => c.t === 'ping')) this.#sender.control.unshift({ t: 'ping' });
        this.#sender.pump();
      },
      () => {
        if (gen !== this.#gen) return;
        this.#abandonSocket(4002, 'ping_timeout');
        this.#dropped(4002, 'ping_timeout');
      },
    );
  }

  // ---- incoming frames -----------------------------------------------------

  #onData(data: unknown): void {
    const f = parseServerFrame(data);
    if (f instanceof ClientError) return void this.emit('error', f);
    switch (f.t) {
      case 'welcome':
        return this.#onWelcome(f);
      case 'joined':
        return this.#onJoined(f);
      case 'msg':
        return this.#onMsg(f);
      case 'ack':
        return this.#sender.onAck(f);
      case 'error':
        return this.#onError(f);
      case 'presence':
        this.emit('presence', { room: f.room, event: f.event, user: f.user });
        return;
      case 'typing':
        this.emit('typing', { room: f.room, user: f.user });
        return;
      case 'pong':
        this.#keepalive.answered();
        return;
      case 'left':
        this.#rooms.takeLeave(f.room);
        if (!this.#cursors.has(f.room)) this.#rooms.setJoined(f.room, undefined);
        this.emit('left', { room: f.room });
        return;
      case 'history':
        return this.#history.answer(f);
      case 'refresh':
        void this.#renew();
        return;
      case 'authed':
        this.emit('session', { exp: f.exp, perms: f.perms });
        return;
      case 'rooms': {
        const waiters = this.#roomsWaiters.splice(0);
        for (const w of waiters) w.resolve(f.rooms);
        this.emit('rooms', { rooms: f.rooms });
        return;
      }
      case 'status':
        this.emit('bus', { bus: f.bus });
        if (f.bus === 'up') {
          if (this.#rooms.heldRooms().length > 0) this.#sender.flush(); // sends refused while the bus was down go out now, in order
          else this.#sender.pump();
        }
        return;
      default:
        return; // unknown frame types from a newer server are ignored
    }
  }

  /**
   * The server asked for a fresh token (`refresh`): from the token function when it gives another
   * token, else by renewing the handle session at the gateway; sent as `auth` on this socket. A
   * renewal that fails is reported (`error`); the socket then closes at expiry (4500).
   */
  async #renew(): Promise<void> {
    if (this.#renewing || !this.#welcome) return;
    this.#renewing = true;
    const gen = this.#gen;
    try {
      const next = await freshToken({ token: this.#token, current: this.#lastToken, fetch: this.#fetch, url: this.#currentUrl, handle: this.#welcome.user.handle, onRenewed: (t) => this.emit('token', { token: t }) });
      if (gen !== this.#gen || next === undefined) return;
      this.#lastToken = next;
      this.#sender.control.unshift({ t: 'auth', token: next });
      this.#sender.pump();
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      this.emit('error', new ClientError(typeof code === 'string' ? code : 'unauthorized', `could not renew the session: ${(err as Error).message}`, { cause: err }));
    } finally {
      this.#renewing = false;
    }
  }

  #onWelcome(f: ServerFrameOf<'welcome'>): void {
    clearTimeout(this.#timers.open);
    this.#welcome = f;
    // the server's bucket starts full now (it counts every frame of this connection); ours mirrors it
    this.#sender.welcome(typeof f.limits === 'object' && f.limits !== null ? f.limits : undefined);
    this.#connectedAt = Date.now();
    this.#probe.noteUp();
    this.#gateways.reset();
    this.#setState({ state: 'connected', node: f.node, region: f.region, ...(this.#transport ? { transport: this.#transport } : {}) });
    this.emit('welcome', f);
    this.#startPing();
    if (this.#transport === 'fallback') this.#watchUpgrade();
    this.#cursors.add(ALERTS_ROOM);
    // every remembered room comes back, paced; rooms beyond the server's maxRooms are refused here
    // (the server would refuse them for good) in the order they were joined
    const max = this.#sender.limits?.maxRooms;
    let kept = 0;
    for (const room of this.#cursors.rooms()) {
      if (room !== ALERTS_ROOM && typeof max === 'number' && ++kept > max) {
        this.#refuseJoin(room, new ClientError('too_many_rooms', `at most ${max} rooms per connection (not sent)`, { room, retry: 'never' }));
        continue;
      }
      this.#sender.queueJoin(room);
    }
    this.#sender.pump();
  }

  #onJoined(f: JoinedEvent): void {
    const wasPending = this.#rooms.setJoin(f.room, undefined);
    if (!this.#cursors.has(f.room)) return; // left meanwhile
    // a gap, or messages skipped on purpose (`missed`): the first replayed message starts the room anew
    const { reset } = this.#cursors.joined(f.room, f.epoch, { gap: !!f.gap || !!f.missed });
    this.#rooms.setJoined(f.room, f);
    this.#rooms.setRejoinAttempts(f.room, 0);
    if (reset || f.reset) this.emit('gap', { room: f.room, from: 0, to: 0, reset: true });
    if (f.gap) this.emit('gap', { room: f.room, from: f.gap.from, to: f.gap.to });
    if (f.missed) this.emit('missed', { room: f.room, from: f.missed.from, to: f.missed.to });
    this.emit('joined', f);
    for (const w of this.#rooms.takeWaiters(f.room)) w.resolve(f);
    if (wasPending) this.#sender.pump();
  }

  #onMsg(m: ServerFrameOf<'msg'>): void {
    const { t: _t, ...msg } = m;
    const verdict = this.#cursors.accept(msg as ChatMessage);
    if (!verdict.deliver) return;
    if (verdict.hole) this.emit('gap', { room: msg.room, ...verdict.hole });
    if (msg.kind === 'alert') this.emit('alert', msg as ChatMessage);
    else this.emit('message', msg as ChatMessage);
  }


  #onError(f: ServerFrameOf<'error'>): void {
    const retry = retryClassOf(f);
    const err = new ClientError(f.code, f.message, { id: f.id, room: f.room, retry });
    // the server's bucket is empty: so is ours (whatever our clock thought), and the next frame waits
    if (f.code === RATE_LIMITED) this.#sender.pacer.drain();
    if (retry === 'reconnect') {
      // the connection is not usable any more: everything in flight is queued again on the next one
      this.emit('error', err);
      const close = (ErrorCodes as Record<string, { close: number | null }>)[f.code]?.close ?? 1001;
      this.#abandonSocket(1000, f.code);
      this.#dropped(close, f.code);
      return;
    }
    const entry = f.id ? this.#sender.outbox.get(f.id) : undefined;
    if (entry) return this.#sender.onMessageRefused(entry, f, retry, err);
    if (f.id && retry === 'later') return; // about a message no longer queued (acknowledged or dropped meanwhile)
    if (f.room && !f.id) {
      const room = f.room;
      if (this.#rooms.join(room) === 'sent') return this.#onJoinRefused(room, retry, err);
      if (this.#history.inFlight(room)) return this.#onHistoryRefused(room, retry, err);
      if (retry === 'later' && this.#rooms.takeLeave(room)) {
        // a leave the server did not take: send it again later, unless the room was joined again meanwhile
        this.#later(1, () => {
          if (!this.#cursors.has(room)) {
            this.#sender.control.push({ t: 'leave', room });
            this.#sender.pump();
          }
        });
        this.emit('error', err);
        return;
      }
    }
    if (!f.id && !f.room && f.code === RATE_LIMITED) {
      // a `ping` or `rooms` was dropped: the answer proves the connection alive; a room list still wanted is asked again
      this.#keepalive.answered();
      if (this.#roomsWaiters.length > 0)
        this.#later(1, () => {
          if (this.#roomsWaiters.length > 0 && !this.#sender.control.some((c) => c.t === 'rooms')) {
            this.#sender.control.push({ t: 'rooms' });
            this.#sender.pump();
          }
        });
    }
    this.emit('error', err);
  }


  /** A join was refused: forget the room (`never`) or join again after a jittered delay until it is joined (`later`). */
  #onJoinRefused(room: string, retry: RetryClass, err: ClientError): void {
    this.#rooms.setJoin(room, undefined);
    if (retry === 'never' && room !== ALERTS_ROOM) {
      this.#refuseJoin(room, err, `could not join ${room}: ${err.message}`);
      return;
    }
    // rate limited, bus or store trouble: keep the room (and its queue) and join again after a jittered delay
    const n = this.#rooms.rejoinAttempts(room) + 1;
    this.#rooms.setRejoinAttempts(room, n);
    this.#later(n, () => {
      if (this.#cursors.has(room) && this.#rooms.joined(room) === undefined && this.#rooms.join(room) === undefined) {
        this.#sender.queueJoin(room);
        this.#sender.pump();
      }
    });
    this.emit('error', err);
  }

  /** A join that cannot succeed: forget the room, drop its queue, reject its waiters, tell the app. */
  #refuseJoin(room: string, err: ClientError, why = err.message): void {
    this.#cursors.remove(room);
    this.#rooms.setJoin(room, undefined);
    this.#rooms.setHeld(room, undefined);
    this.#sender.dropQueued((e) => e.room === room, 'not_joined', why, 'never');
    for (const w of this.#rooms.takeWaiters(room)) w.reject(err);
    this.emit('error', err);
  }

  /**
   * Run `fn` on this connection after a jittered delay growing with `attempt` (1: minMs·(1–2)…,
   * at most maxMs; never below MIN_FLUSH_MS); dropped if the connection ends first.
   */
  #later(attempt: number, fn: () => void): void {
    const base = Math.min(this.#backoff.maxMs, this.#backoff.minMs * 2 ** Math.min(attempt, 10));
    const delay = Math.max(MIN_FLUSH_MS, Math.round(base * (0.5 + this.#random() / 2)));
    const gen = this.#gen;
    const timer = setTimeout(() => {
      this.#rejoinTimers.delete(timer);
      if (gen === this.#gen && this.#welcome) fn();
    }, delay);
    this.#rejoinTimers.add(timer);
  }











}
