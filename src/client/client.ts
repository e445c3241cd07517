import { codeForClose, shouldReconnect } from '../protocol/codes.js';
import type { ChatMessage, ClientFrame, ServerFrame, ServerFrameOf } from '../protocol/frames.js';
import { ALERTS_ROOM, ROOM_RE, SUBPROTOCOL } from './constants.js';
import { Backoff } from './backoff.js';
import { RoomCursors } from './cursors.js';
import { Emitter } from './emitter.js';
import { ClientError, isFatalForMessage } from './errors.js';
import { Outbox, type OutboxEntry, newMessageId } from './outbox.js';
import { ReadinessProbe } from './probe.js';
import { MemoryStorage, type StorageLike } from './storage.js';
import type { AckEvent, ClientEvents, ClientOptions, ConnectionState, JoinedEvent, StateChange, WebSocketCtor, WebSocketLike } from './types.js';

const OPEN = 1;
const TYPING_THROTTLE_MS = 2000;
const MAX_RETRY_HINT_MS = 120_000;
/** A connection that lasted this long resets the backoff; one dropped sooner keeps climbing it. */
const STABLE_MS = 5_000;
/** Join refusals that retrying cannot fix: the room is forgotten and its queue dropped. */
const JOIN_FATAL = new Set(['bad_room', 'forbidden_room', 'too_many_rooms', 'bad_frame']);
/** The server refused a send because an earlier one on this connection failed: resend that one first. */
const FENCED = 'fenced';
/** The resend delay after a refusal never goes below this, whatever backoff.minMs is (no tight loop). */
const MIN_FLUSH_MS = 100;
/** Rounds in a row answered only with `fenced` (no ack, no other refusal) after which a new connection clears the fence. */
const FENCED_ROUNDS_RECONNECT = 2;

type Waiter<T> = { resolve: (v: T) => void; reject: (e: ClientError) => void };

/** Build the WebSocket URL from an http(s) or ws(s) base URL. */
export function socketUrl(base: string, token: string): string {
  const u = new URL(base);
  if (u.protocol === 'http:') u.protocol = 'ws:';
  else if (u.protocol === 'https:') u.protocol = 'wss:';
  else if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new TypeError(`unsupported URL scheme ${u.protocol}`);
  if (u.pathname === '/' || u.pathname === '') u.pathname = '/ws';
  u.searchParams.set('token', token);
  return u.toString();
}

/** Parse the retry hint of a `draining` close reason: {"code":"draining","retryMs":N}. */
export function retryHint(reason: string): number | undefined {
  try {
    const v: unknown = JSON.parse(reason);
    const ms = (v as { retryMs?: unknown } | null)?.retryMs;
    if (typeof ms === 'number' && Number.isFinite(ms) && ms >= 0) return Math.min(ms, MAX_RETRY_HINT_MS);
  } catch {
    /* not JSON: no hint */
  }
  return undefined;
}

function frameText(data: unknown): string | undefined {
  if (typeof data === 'string') return data;
  if (data instanceof ArrayBuffer) return new TextDecoder().decode(data);
  if (ArrayBuffer.isView(data)) return new TextDecoder().decode(data);
  return undefined;
}

/**
 * The confab client: one WebSocket with explicit states, reconnect with full-jitter
 * backoff, resume by (epoch, offset) per room, dedupe, and a persisted outbox.
 * Works in browsers and in Node (pass the `ws` package as `WebSocket`).
 */
export class ConfabClient extends Emitter<ClientEvents> {
  /** Gateways to try, in turn: a dropped connection moves on to the next one. */
  readonly #urls: string[];
  #urlIndex = 0;
  /** URLs (by index) whose attempt failed since the last `welcome`. */
  #failedUrls = new Set<number>();
  readonly #token: ClientOptions['token'];
  readonly #WS: WebSocketCtor;
  readonly #storage: StorageLike;
  readonly #backoff: Backoff;
  readonly #outbox: Outbox;
  readonly #cursors: RoomCursors;
  readonly #pingIntervalMs: number;
  readonly #pingTimeoutMs: number;
  readonly #connectTimeoutMs: number;
  readonly #random: () => number;
  readonly #probe: ReadinessProbe;
  /** The attempt under way was started by a readiness probe (not by the backoff timer). */
  #openedByProbe = false;

  // Per connection: what of the outbox went out and how the server answered (reset on every new socket).
  /** Outbox ids sent on this connection and not answered yet (→ room): never sent twice at once. */
  #inflight = new Map<string, string>();
  /**
   * Ids that were in flight in a room when a send of that room was refused: the server will refuse
   * them too (`fenced`). The room sends nothing until they are answered, so a resend never
   * overtakes one of them.
   */
  #stale = new Set<string>();
  /**
   * Rooms where a send was refused for a passing reason: nothing more of that room goes out until
   * the scheduled resend, which sends the room's queue again in order (sender order, G9). The server
   * fences the same way, per room and connection; other rooms keep flowing.
   */
  #held = new Set<string>();
  /** Answers since the last resend round: decides the next delay and when a fence is ours to clear. */
  #round = { acks: 0, refused: 0, fenced: 0 };
  /** Resend rounds in a row without an ack (the resend delay doubles with each). */
  #flushRounds = 0;
  /** Resend rounds in a row answered only with `fenced`. */
  #fencedRounds = 0;

  #state: ConnectionState = 'idle';
  #ws: WebSocketLike | null = null;
  #gen = 0;
  #welcome: ServerFrameOf<'welcome'> | undefined;
  #pendingJoins = new Set<string>();
  /** Rooms answered with `joined` on the current connection: their queued messages may flow. */
  #joinedInfo = new Map<string, JoinedEvent>();
  #rejoinAttempts = new Map<string, number>();
  #rejoinTimers = new Set<ReturnType<typeof setTimeout>>();
  #sendWaiters = new Map<string, Waiter<AckEvent>>();
  #joinWaiters = new Map<string, Waiter<JoinedEvent>[]>();
  #roomsWaiters: Waiter<ServerFrameOf<'rooms'>['rooms']>[] = [];
  #typingSent = new Map<string, number>();
  #lastSocketError: string | undefined;
  #connectedAt = 0;
  #timers: { retry?: ReturnType<typeof setTimeout>; ping?: ReturnType<typeof setInterval>; pong?: ReturnType<typeof setTimeout>; open?: ReturnType<typeof setTimeout>; flush?: ReturnType<typeof setTimeout> } = {};
  #unwatchNetwork: (() => void) | undefined;

  constructor(opts: ClientOptions) {
    super();
    const urls = typeof opts?.url === 'string' ? [opts.url] : Array.isArray(opts?.url) ? opts.url : [];
    if (urls.length === 0 || urls.some((u) => typeof u !== 'string')) throw new TypeError('ConfabClient: options.url is required (a URL or a non-empty list of URLs)');
    if (typeof opts.token !== 'string' && typeof opts.token !== 'function') throw new TypeError('ConfabClient: options.token is required');
    for (const u of urls) socketUrl(u, 'x'); // validate early
    const WS = opts.WebSocket ?? (globalThis as { WebSocket?: WebSocketCtor }).WebSocket;
    if (!WS) throw new TypeError("ConfabClient: no global WebSocket; pass options.WebSocket (in Node: the 'ws' package)");
    this.#urls = [...urls];
    this.#token = opts.token;
    this.#WS = WS;
    this.#storage = opts.storage ?? new MemoryStorage();
    this.#random = opts.random ?? Math.random;
    this.#backoff = new Backoff(opts.backoff, this.#random);
    this.#probe = new ReadinessProbe(opts.probe, { ...(opts.fetch ? { fetch: opts.fetch } : {}), random: this.#random });
    const ns = opts.namespace ?? 'confab';
    this.#outbox = new Outbox(this.#storage, `${ns}:outbox`);
    this.#cursors = new RoomCursors(this.#storage, `${ns}:rooms`);
    this.#cursors.add(ALERTS_ROOM);
    this.#pingIntervalMs = opts.pingIntervalMs ?? 25_000;
    this.#pingTimeoutMs = opts.pingTimeoutMs ?? 10_000;
    this.#connectTimeoutMs = opts.connectTimeoutMs ?? 10_000;
    if (opts.watchNetwork !== false) this.#watchNetwork();
    if (opts.autoConnect) this.connect();
  }

  /** Current connection state. */
  get state(): ConnectionState {
    return this.#state;
  }
  /** The last `welcome` (node, region, user, limits), while connected. */
  get welcome(): ServerFrameOf<'welcome'> | undefined {
    return this.#welcome;
  }
  /** Rooms this client is in (persisted; rejoined on every connect), without `_alerts`. */
  get rooms(): string[] {
    return this.#cursors.rooms().filter((r) => r !== ALERTS_ROOM);
  }
  /** Messages sent but not yet acknowledged, in send order. */
  get pending(): OutboxEntry[] {
    return this.#outbox.list();
  }
  /** True once connected and every room is re-joined (queued messages are flowing). */
  get ready(): boolean {
    return this.#welcome !== undefined && this.#cursors.rooms().every((r) => this.#joinedInfo.has(r));
  }

  /** Open the connection (no-op when already open or opening). */
  connect(): void {
    if (this.#state === 'connecting' || this.#state === 'connected') return;
    if (this.#state === 'reconnecting') clearTimeout(this.#timers.retry);
    if (this.#state === 'idle' || this.#state === 'closed') {
      this.#backoff.reset();
      this.#failedUrls.clear();
    }
    if (!this.#unwatchNetwork && this.#state === 'closed') this.#watchNetwork();
    const nav = (globalThis as { navigator?: { onLine?: boolean } }).navigator;
    if (this.#unwatchNetwork && nav?.onLine === false) {
      this.#setState({ state: 'offline' });
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
    for (const [, w] of this.#sendWaiters) w.reject(new ClientError('closed', 'client closed; the message stays in the outbox'));
    this.#sendWaiters.clear();
    for (const [room, ws] of this.#joinWaiters) for (const w of ws) w.reject(new ClientError('closed', 'client closed', { room }));
    this.#joinWaiters.clear();
    for (const w of this.#roomsWaiters.splice(0)) w.reject(new ClientError('closed', 'client closed'));
  }

  /** Join a room (persisted). Resolves with the server's `joined` answer, when connected. */
  join(room: string): Promise<JoinedEvent> {
    if (!ROOM_RE.test(room)) return Promise.reject(new ClientError('bad_room', `invalid room name ${JSON.stringify(room)}`, { room }));
    const known = this.#joinedInfo.get(room);
    if (known && this.#cursors.has(room) && !this.#pendingJoins.has(room)) return Promise.resolve(known);
    const p = new Promise<JoinedEvent>((resolve, reject) => {
      const list = this.#joinWaiters.get(room) ?? [];
      list.push({ resolve, reject });
      this.#joinWaiters.set(room, list);
    });
    const isNew = !this.#cursors.has(room);
    this.#cursors.add(room);
    if (this.#welcome && (isNew || !this.#pendingJoins.has(room))) this.#sendJoin(room);
    return p;
  }

  /** Leave a room: forget its position and drop its queued messages (they reject with 'not_joined'). */
  leave(room: string): void {
    if (room === ALERTS_ROOM || !this.#cursors.has(room)) return;
    this.#cursors.remove(room);
    this.#joinedInfo.delete(room);
    this.#pendingJoins.delete(room);
    this.#typingSent.delete(room);
    for (const w of this.#joinWaiters.get(room) ?? []) w.reject(new ClientError('not_joined', 'left the room', { room }));
    this.#joinWaiters.delete(room);
    this.#dropQueued((e) => e.room === room, 'not_joined', 'left the room before the message was sent');
    if (this.#welcome) this.#sendFrame({ t: 'leave', room });
  }

  /**
   * Send a chat message. It is queued in the outbox (persisted) and sent when connected,
   * after the rooms are re-joined; it is resent after a reconnect until acknowledged.
   * Resolves with the ack; rejects with a ClientError when the server refuses it for good.
   */
  send(room: string, text: string): Promise<AckEvent> {
    if (!this.#cursors.has(room) || room === ALERTS_ROOM) return Promise.reject(new ClientError('not_joined', `join ${JSON.stringify(room)} before sending to it`, { room }));
    return this.#enqueue('msg', room, text);
  }

  /** Send an alert to everyone on every node. Same outbox semantics as send(). */
  alert(text: string): Promise<AckEvent> {
    return this.#enqueue('alert', ALERTS_ROOM, text);
  }

  /** Tell the room this user is typing (throttled to once per 2 s per room until the next send; dropped when not connected). */
  typing(room: string): void {
    if (!this.#joinedInfo.has(room) || room === ALERTS_ROOM) return;
    const now = Date.now();
    if (now - (this.#typingSent.get(room) ?? 0) < TYPING_THROTTLE_MS) return;
    this.#typingSent.set(room, now);
    this.#sendFrame({ t: 'typing', room });
  }

  /** Ask the server for its room list (also emitted as 'rooms'). Rejects ('closed') when not connected or if the connection drops first. */
  listRooms(): Promise<{ name: string; members: number }[]> {
    if (!this.#welcome) return Promise.reject(new ClientError('closed', 'not connected'));
    const p = new Promise<{ name: string; members: number }[]>((resolve, reject) => this.#roomsWaiters.push({ resolve, reject }));
    this.#sendFrame({ t: 'rooms' });
    return p;
  }

  // ---- connection ----------------------------------------------------------

  async #open(byProbe = false): Promise<void> {
    const gen = ++this.#gen;
    this.#probe.stop();
    this.#openedByProbe = byProbe;
    this.#setState(byProbe ? { state: 'connecting', reason: 'server_ready' } : { state: 'connecting' });
    let token: string;
    try {
      token = typeof this.#token === 'function' ? await this.#token() : this.#token;
    } catch (err) {
      if (gen !== this.#gen) return;
      this.emit('error', new ClientError('connect_failed', 'could not get a session token', { cause: err }));
      this.#dropped(1006, 'no token');
      return;
    }
    if (gen !== this.#gen || this.#state !== 'connecting') return;
    let ws: WebSocketLike;
    try {
      ws = new this.#WS(socketUrl(this.#currentUrl, token), SUBPROTOCOL);
    } catch (err) {
      this.emit('error', new ClientError('connect_failed', String((err as Error)?.message ?? err), { cause: err }));
      this.#dropped(1006, 'connect failed');
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
    ws.onmessage = (ev) => {
      if (gen === this.#gen) this.#onData(ev.data);
    };
    ws.onerror = (ev) => {
      if (gen !== this.#gen) return;
      const e = ev as { message?: string; error?: { message?: string } };
      this.#lastSocketError = e?.message ?? e?.error?.message ?? 'socket error';
    };
    ws.onclose = (ev) => {
      if (gen !== this.#gen) return;
      this.#ws = null;
      this.#dropped(ev.code, ev.reason);
    };
  }

  /** Detach from the current socket (its late events are ignored) and close it. */
  #abandonSocket(code: number, reason: string): void {
    this.#gen++;
    const ws = this.#ws;
    this.#ws = null;
    this.#welcome = undefined;
    this.#pendingJoins.clear();
    this.#joinedInfo.clear();
    this.#resetConnectionState();
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
    ws.onerror = () => {};
    try {
      ws.close(code, reason);
    } catch {
      /* already closing */
    }
  }

  /** The connection is gone: decide between reconnecting and closing for good. */
  #dropped(code: number, reason: string): void {
    this.#gen++;
    // A gateway that worked is tried again first (behind a load balancer another node answers);
    // an attempt that never reached `welcome` moves on to the next URL of the list.
    const failedAttempt = this.#connectedAt === 0;
    if (failedAttempt) {
      this.#failedUrls.add(this.#urlIndex % this.#urls.length);
      this.#urlIndex++;
    }
    // the first try of another URL in this outage waits only a first backoff step: nobody hammered it yet
    const elsewhere = failedAttempt && !this.#failedUrls.has(this.#urlIndex % this.#urls.length);
    this.#probe.noteDown(failedAttempt, this.#openedByProbe);
    this.#clearTimers();
    this.#ws = null;
    this.#welcome = undefined;
    this.#pendingJoins.clear();
    this.#joinedInfo.clear();
    this.#resetConnectionState();
    for (const w of this.#roomsWaiters.splice(0)) w.reject(new ClientError('closed', 'connection lost before the room list arrived'));
    if (this.#connectedAt && Date.now() - this.#connectedAt >= STABLE_MS) this.#backoff.reset();
    this.#connectedAt = 0;
    if (this.#state === 'closed' || this.#state === 'offline') return;
    const unauthorizedAtUpgrade = code === 1006 && /\b401\b/.test(this.#lastSocketError ?? '');
    if (!shouldReconnect(code) || (unauthorizedAtUpgrade && typeof this.#token === 'string')) {
      const errCode = unauthorizedAtUpgrade ? 'unauthorized' : (codeForClose(code) ?? 'closed');
      this.#unwatchNetwork?.();
      this.#unwatchNetwork = undefined;
      this.#setState({ state: 'closed', closeCode: code, reason: errCode });
      this.emit('error', new ClientError(errCode, reason || undefined, { closeCode: code }));
      return;
    }
    if (unauthorizedAtUpgrade) this.emit('error', new ClientError('unauthorized', 'session refused at upgrade (HTTP 401)', { closeCode: code }));
    const hint = code === 4000 ? retryHint(reason) : undefined;
    const delay = hint ?? (elsewhere ? this.#backoff.first() : this.#backoff.next());
    const why = codeForClose(code) ?? (this.#lastSocketError ? 'connect_failed' : undefined);
    this.#setState({ state: 'reconnecting', retryInMs: delay, closeCode: code, ...(why ? { reason: why } : {}) });
    const retryGen = this.#gen;
    this.#timers.retry = setTimeout(() => {
      if (this.#state === 'reconnecting') void this.#open();
    }, delay);
    // While waiting, ask the next gateway whether it is back: a server seen away and then ready
    // ends the wait at once (the server's own drain hint is honoured as is).
    if (hint === undefined) {
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
    return this.#urls[this.#urlIndex % this.#urls.length]!;
  }

  #clearTimers(): void {
    this.#probe.stop();
    for (const t of this.#rejoinTimers) clearTimeout(t);
    this.#rejoinTimers.clear();
    clearTimeout(this.#timers.retry);
    clearInterval(this.#timers.ping);
    clearTimeout(this.#timers.pong);
    clearTimeout(this.#timers.open);
    clearTimeout(this.#timers.flush);
    this.#timers = {};
  }

  #setState(change: Omit<StateChange, 'prev'>): void {
    const prev = this.#state;
    this.#state = change.state;
    this.emit('state', { ...change, prev });
  }

  #watchNetwork(): void {
    const g = globalThis as { addEventListener?: (t: string, f: () => void) => void; removeEventListener?: (t: string, f: () => void) => void };
    if (typeof g.addEventListener !== 'function' || typeof g.removeEventListener !== 'function') return;
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
    g.addEventListener('offline', onOffline);
    g.addEventListener('online', onOnline);
    this.#unwatchNetwork = () => {
      g.removeEventListener!('offline', onOffline);
      g.removeEventListener!('online', onOnline);
    };
  }

  #startPing(): void {
    if (this.#pingIntervalMs <= 0) return;
    const gen = this.#gen;
    this.#timers.ping = setInterval(() => {
      if (gen !== this.#gen || !this.#ws || this.#ws.readyState !== OPEN) return;
      this.#sendFrame({ t: 'ping' });
      if (this.#timers.pong === undefined) {
        this.#timers.pong = setTimeout(() => {
          if (gen !== this.#gen) return;
          this.#abandonSocket(4002, 'ping_timeout');
          this.#dropped(4002, 'ping_timeout');
        }, this.#pingTimeoutMs);
      }
    }, this.#pingIntervalMs);
  }

  #sendFrame(frame: ClientFrame): boolean {
    const ws = this.#ws;
    if (!ws || ws.readyState !== OPEN) return false;
    try {
      ws.send(JSON.stringify(frame));
      return true;
    } catch {
      return false;
    }
  }

  #sendJoin(room: string): void {
    const since = this.#cursors.since(room);
    this.#pendingJoins.add(room);
    this.#sendFrame(since ? { t: 'join', room, since } : { t: 'join', room });
  }

  // ---- incoming frames -----------------------------------------------------

  #onData(data: unknown): void {
    const text = frameText(data);
    let f: ServerFrame;
    try {
      f = JSON.parse(text ?? '') as ServerFrame;
    } catch {
      this.emit('error', new ClientError('bad_server_frame', 'server frame is not JSON'));
      return;
    }
    if (typeof f !== 'object' || f === null || typeof (f as { t?: unknown }).t !== 'string') {
      this.emit('error', new ClientError('bad_server_frame', 'server frame has no type'));
      return;
    }
    switch (f.t) {
      case 'welcome':
        return this.#onWelcome(f);
      case 'joined':
        return this.#onJoined(f);
      case 'msg':
        return this.#onMsg(f);
      case 'ack':
        return this.#onAck(f);
      case 'error':
        return this.#onError(f);
      case 'presence':
        this.emit('presence', { room: f.room, event: f.event, user: f.user });
        return;
      case 'typing':
        this.emit('typing', { room: f.room, user: f.user });
        return;
      case 'pong':
        clearTimeout(this.#timers.pong);
        this.#timers.pong = undefined;
        return;
      case 'left':
        this.#joinedInfo.delete(f.room);
        this.emit('left', { room: f.room });
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
          if (this.#held.size > 0) this.#flush(); // sends refused while the bus was down go out now, in order
          else this.#pump();
        }
        return;
      default:
        return; // unknown frame types from a newer server are ignored
    }
  }

  #onWelcome(f: ServerFrameOf<'welcome'>): void {
    clearTimeout(this.#timers.open);
    this.#welcome = f;
    this.#connectedAt = Date.now();
    this.#probe.noteUp();
    this.#failedUrls.clear();
    this.#setState({ state: 'connected', node: f.node, region: f.region });
    this.emit('welcome', f);
    this.#startPing();
    this.#cursors.add(ALERTS_ROOM);
    for (const room of this.#cursors.rooms()) this.#sendJoin(room);
  }

  #onJoined(f: JoinedEvent): void {
    const wasPending = this.#pendingJoins.delete(f.room);
    if (!this.#cursors.has(f.room)) return; // left meanwhile
    const { reset } = this.#cursors.joined(f.room, f.epoch, { gap: !!f.gap });
    this.#joinedInfo.set(f.room, f);
    this.#rejoinAttempts.delete(f.room);
    if (reset || f.reset) this.emit('gap', { room: f.room, from: 0, to: 0, reset: true });
    if (f.gap) this.emit('gap', { room: f.room, from: f.gap.from, to: f.gap.to });
    this.emit('joined', f);
    for (const w of this.#joinWaiters.get(f.room) ?? []) w.resolve(f);
    this.#joinWaiters.delete(f.room);
    if (wasPending) this.#pump();
  }

  #onMsg(m: ServerFrameOf<'msg'>): void {
    const { t: _t, ...msg } = m;
    const verdict = this.#cursors.accept(msg as ChatMessage);
    if (!verdict.deliver) return;
    if (verdict.hole) this.emit('gap', { room: msg.room, ...verdict.hole });
    if (msg.kind === 'alert') this.emit('alert', msg as ChatMessage);
    else this.emit('message', msg as ChatMessage);
  }

  #onAck(f: ServerFrameOf<'ack'>): void {
    this.#inflight.delete(f.id);
    const wasStale = this.#stale.delete(f.id);
    const entry = this.#outbox.remove(f.id);
    if (!entry) return;
    this.#round.acks++;
    this.#flushRounds = 0;
    const ack: AckEvent = { id: f.id, room: f.room, offset: f.offset, epoch: f.epoch, dup: f.dup };
    this.emit('outbox', { size: this.#outbox.size });
    this.emit('ack', ack);
    this.#sendWaiters.get(f.id)?.resolve(ack);
    this.#sendWaiters.delete(f.id);
    if (wasStale) this.#pump();
  }

  #onError(f: ServerFrameOf<'error'>): void {
    const err = new ClientError(f.code, f.message, { id: f.id, room: f.room });
    const entry = f.id ? this.#outbox.get(f.id) : undefined;
    if (f.id) {
      this.#inflight.delete(f.id);
      this.#stale.delete(f.id);
    }
    if (entry) {
      if (isFatalForMessage(f.code)) {
        this.#dropQueued((e) => e.id === entry.id, f.code, f.message);
        this.emit('error', err);
        this.#pump();
        return;
      }
      // A passing refusal: keep it, hold everything after it in its room, resend in outbox order after a delay.
      // `fenced` only says an earlier message is being resent first: the SDK handles it, the app is not told.
      this.#held.add(entry.room);
      for (const [id, room] of this.#inflight) if (room === entry.room) this.#stale.add(id);
      if (f.code === FENCED) this.#round.fenced++;
      else {
        this.#round.refused++;
        this.emit('error', err);
      }
      this.#scheduleFlush();
      return;
    }
    if (f.id && f.code === FENCED) return; // about a message no longer queued (acknowledged meanwhile)
    if (f.room && this.#pendingJoins.has(f.room) && !f.id) {
      const room = f.room;
      this.#pendingJoins.delete(room);
      if (JOIN_FATAL.has(f.code) && room !== ALERTS_ROOM) {
        this.#cursors.remove(room);
        this.#dropQueued((e) => e.room === room, 'not_joined', `could not join ${room}: ${f.message}`);
        for (const w of this.#joinWaiters.get(room) ?? []) w.reject(err);
        this.#joinWaiters.delete(room);
      } else {
        // bus or store trouble: keep the room (and its queue) and join again after a jittered delay
        const n = (this.#rejoinAttempts.get(room) ?? 0) + 1;
        this.#rejoinAttempts.set(room, n);
        const delay = Math.round(Math.min(this.#backoff.maxMs, this.#backoff.minMs * 2 ** Math.min(n, 10)) * (0.5 + this.#random() / 2));
        const gen = this.#gen;
        const timer = setTimeout(() => {
          this.#rejoinTimers.delete(timer);
          if (gen === this.#gen && this.#welcome && this.#cursors.has(room) && !this.#joinedInfo.has(room) && !this.#pendingJoins.has(room)) this.#sendJoin(room);
        }, delay);
        this.#rejoinTimers.add(timer);
      }
      this.emit('error', err);
      return;
    }
    this.emit('error', err);
  }

  // ---- outbox ----------------------------------------------------------------

  #enqueue(kind: 'msg' | 'alert', room: string, text: string): Promise<AckEvent> {
    if (typeof text !== 'string') return Promise.reject(new ClientError('bad_frame', 'text must be a string', { room }));
    const entry: OutboxEntry = { id: newMessageId(), kind, room, text, createdAt: Date.now() };
    this.#typingSent.delete(room); // a sent message ends "typing"; the next keystroke announces it again
    const p = new Promise<AckEvent>((resolve, reject) => this.#sendWaiters.set(entry.id, { resolve, reject }));
    this.#outbox.add(entry);
    this.emit('outbox', { size: this.#outbox.size });
    this.#pump();
    return p;
  }

  #sendEntry(e: OutboxEntry): void {
    const sent = e.kind === 'alert' ? this.#sendFrame({ t: 'alert', id: e.id, text: e.text }) : this.#sendFrame({ t: 'pub', id: e.id, room: e.room, text: e.text });
    if (sent) this.#inflight.set(e.id, e.room);
  }

  /**
   * Send what may go now, in outbox order: entries not in flight whose room is joined on this
   * connection, not held by a refusal and without stale sends in flight. Within a room nothing
   * overtakes an entry that cannot go yet, so the room's messages leave in send order.
   */
  #pump(): void {
    if (!this.#welcome) return;
    const blocked = new Set<string>();
    for (const id of this.#stale) {
      const room = this.#inflight.get(id);
      if (room !== undefined) blocked.add(room);
    }
    for (const e of this.#outbox.list()) {
      if (this.#inflight.has(e.id)) continue;
      if (blocked.has(e.room) || this.#held.has(e.room) || !this.#joinedInfo.has(e.room)) {
        blocked.add(e.room);
        continue;
      }
      this.#sendEntry(e);
    }
  }

  /** The resend round after a passing refusal: release the hold and send again in outbox order (the server dedupes repeats by id). */
  #flush(): void {
    clearTimeout(this.#timers.flush);
    this.#timers.flush = undefined;
    const r = this.#round;
    this.#round = { acks: 0, refused: 0, fenced: 0 };
    this.#fencedRounds = r.fenced > 0 && r.acks === 0 && r.refused === 0 ? this.#fencedRounds + 1 : 0;
    if (this.#fencedRounds >= FENCED_ROUNDS_RECONNECT && this.#ws) {
      // Fenced again and again with nothing earlier of ours refused: the message the server waits
      // for is gone from the outbox (left its room, dropped). A new connection has no fence.
      this.#abandonSocket(1000, 'fence_reset');
      this.#dropped(1000, 'fence_reset');
      return;
    }
    this.#held.clear();
    this.#dropQueued((e) => e.kind === 'msg' && !this.#cursors.has(e.room), 'not_joined', 'room no longer joined');
    this.#pump();
  }

  /**
   * After a passing refusal (store failed, bus down, rate limited, fenced): one resend round after
   * a jittered delay, 2·minMs·(1..2) at first, doubling with every round without an ack, at most
   * maxMs; never below MIN_FLUSH_MS. Several refusals of one round share one resend.
   */
  #scheduleFlush(): void {
    if (this.#timers.flush !== undefined) return;
    const base = Math.max(MIN_FLUSH_MS, 2 * this.#backoff.minMs) * 2 ** Math.min(this.#flushRounds, 16);
    const delay = Math.round(Math.max(MIN_FLUSH_MS, Math.min(this.#backoff.maxMs, base * (1 + this.#random()))));
    this.#flushRounds++;
    this.#timers.flush = setTimeout(() => this.#flush(), delay);
  }

  /** A new socket starts with nothing in flight and no fence. */
  #resetConnectionState(): void {
    this.#inflight.clear();
    this.#stale.clear();
    this.#held.clear();
    this.#round = { acks: 0, refused: 0, fenced: 0 };
    this.#flushRounds = 0;
    this.#fencedRounds = 0;
    clearTimeout(this.#timers.flush);
    this.#timers.flush = undefined;
  }

  #dropQueued(pred: (e: OutboxEntry) => boolean, code: string, message: string): void {
    const gone = this.#outbox.removeWhere(pred);
    if (gone.length === 0) return;
    this.emit('outbox', { size: this.#outbox.size });
    for (const e of gone) {
      const w = this.#sendWaiters.get(e.id);
      this.#sendWaiters.delete(e.id);
      w?.reject(new ClientError(code, message, { id: e.id, room: e.room }));
    }
  }
}
