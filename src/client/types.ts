import type { ChatMessage, Member, ServerFrameOf } from '../protocol/frames.js';
import type { BackoffOptions } from './backoff.js';
import type { FetchLike, ProbeOptions } from './probe.js';
import type { PacingOptions } from './pacer.js';
import type { ClientError } from './errors.js';
import type { StorageLike } from './storage.js';

/**
 * Connection state.
 * - `idle`: created, connect() not called yet.
 * - `connecting`: first socket being opened (or opened again after online/connect()).
 * - `connected`: the server's `welcome` arrived; `node` and `region` are known.
 * - `reconnecting`: the connection dropped; a new attempt starts in `retryInMs`.
 * - `offline`: the browser reports no network; waits for the `online` event.
 * - `closed`: close() was called, or the server refused us for good (close code ≥ 4500).
 */
export type ConnectionState = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'offline' | 'closed';

export const CONNECTION_STATES: readonly ConnectionState[] = ['idle', 'connecting', 'connected', 'reconnecting', 'offline', 'closed'];

export interface StateChange {
  state: ConnectionState;
  prev: ConnectionState;
  /** With `reconnecting`: delay before the next attempt. */
  retryInMs?: number;
  /** With `connected`: the node and region the server reported. */
  node?: string;
  region?: string;
  /** With `connecting` and `connected`: the transport of the attempt (`websocket` or `fallback`). */
  transport?: 'websocket' | 'fallback';
  /** With `reconnecting`/`closed`: the close code and string code that caused it, when known. With `connecting`: `server_ready` when a readiness probe ended the wait. */
  closeCode?: number;
  reason?: string;
}

/** A handler type checked bivariantly, so both DOM and `ws` event types fit. */
type Handler<E> = { bivarianceHack(ev: E): void }['bivarianceHack'];

/** The minimal WebSocket surface the client needs: the browser's WebSocket and the `ws` package both fit. */
export interface WebSocketLike {
  readonly readyState: number;
  readonly protocol?: string;
  binaryType?: string;
  onopen: Handler<never> | null;
  onmessage: Handler<{ data: unknown }> | null;
  onclose: Handler<{ code: number; reason: string }> | null;
  onerror: Handler<never> | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}
export type WebSocketCtor = new (url: string, protocols?: string | string[]) => WebSocketLike;

export interface ClientOptions {
  /**
   * Server URL: http(s)://host[:port] (the socket goes to /ws) or a full ws(s):// URL. A list names
   * several gateways (no load balancer in front): after a dropped connection the next one is tried.
   */
  url: string | string[];
  /**
   * Session token from POST /api/session (or your back end's app token), or a function returning
   * the current one (called per attempt, and when the server asks for a fresh token: `refresh`).
   * A string token of a handle session is renewed by the SDK itself (POST /api/session at the
   * gateway) and the 'token' event hands the new one to the app; an app token needs a function.
   */
  token: string | (() => string | Promise<string>);
  /** fetch for renewing a handle session (default: the global fetch). */
  renewFetch?: import('./renew.js').RenewFetch;
  /** WebSocket constructor: the global one in browsers, `ws`'s default export in Node. Without one (and with fetch) only the HTTP fallback is used. */
  WebSocket?: WebSocketCtor;
  /**
   * Transport: 'auto' (default: WebSocket first, the HTTP fallback when the upgrade fails or brings
   * no frame within `fallbackAfterMs`, back to WebSocket when it works again), or force 'websocket'
   * or 'fallback' (Server-Sent Events + POSTs to /fallback; needs fetch). See docs/client.md.
   */
  transport?: 'auto' | 'websocket' | 'fallback';
  /** Auto: a WebSocket attempt that brought no frame after this many ms moves to the fallback (default 4000). */
  fallbackAfterMs?: number;
  /** Auto, while on the fallback: try a WebSocket again this often, in ms (default 60000; 0: never). */
  upgradeRetryMs?: number;
  /** fetch for the HTTP fallback (default: the global fetch). */
  fallbackFetch?: import('./fallback-socket.js').FallbackFetch;
  /** Where the outbox and room positions persist: localStorage in browsers; default in memory. */
  storage?: StorageLike;
  /** Storage key prefix, e.g. per user, so two users of one browser do not share an outbox. Default 'confab'. */
  namespace?: string;
  /** Reconnect backoff bounds (full jitter). Default {minMs: 500, maxMs: 10000}. */
  backoff?: Partial<BackoffOptions>;
  /**
   * Readiness probe while waiting to reconnect: `GET <origin>/readyz` of the next gateway, every
   * 1–3 s (mean growing to a tenth of the outage, at most 8 s); a server seen away and then ready
   * ends the wait at once. Default on (when `fetch` exists); `false` turns it off.
   */
  probe?: false | Partial<ProbeOptions>;
  /** fetch for the readiness probe (default: the global fetch). */
  fetch?: FetchLike;
  /**
   * Pacing: every frame the client sends takes a token from a bucket mirroring the server's
   * `welcome.limits` (`rateShare` of `ratePerSec`, `burstShare` of `rateBurst`; default 0.95 and
   * 0.5), so it normally never meets `rate_limited`. `false` turns it off (tests of the server's limit).
   */
  pacing?: false | Partial<PacingOptions>;
  /** App-level ping interval in ms (default 25000; 0 disables). */
  pingIntervalMs?: number;
  /** Reconnect when no `pong` arrives within this many ms after a ping (default 10000). */
  pingTimeoutMs?: number;
  /** Give up on an opening socket after this many ms (default 10000). */
  connectTimeoutMs?: number;
  /** Follow the browser's online/offline events when available (default true). */
  watchNetwork?: boolean;
  /** Connect in the constructor (default false: call connect()). */
  autoConnect?: boolean;
  /** Random source for the backoff jitter (tests). */
  random?: () => number;
}

/** `joined` as the app sees it. */
export type JoinedEvent = ServerFrameOf<'joined'>;

/** Emitted when messages of a room can no longer be delivered: offsets from..to are lost, or the history was reset. */
export interface GapEvent {
  room: string;
  from: number;
  to: number;
  /** True when the room's epoch changed (history reset); from/to then cover what the old epoch had after our position. */
  reset?: boolean;
}

/**
 * Emitted with `joined` when a resume had more to replay than the server's bound
 * (`CONFAB_REPLAY_MAX`, default 300): the stored messages with offsets from..to were
 * skipped on purpose and are still kept; page them with `client.history(room, { before: to + 1 })`.
 * Only the newest messages follow as `message` events. Also on the `joined` answer as `missed`.
 */
export interface MissedEvent {
  room: string;
  from: number;
  to: number;
}

/** What `client.history()` asks for: the newest `limit` (1–200, default 50) messages with offset < `before` (default: all). */
export interface HistoryOptions {
  before?: number;
  limit?: number;
}

/** A page of older messages: ascending by offset; `more` when still older ones are kept. */
export interface HistoryPage {
  messages: ChatMessage[];
  more: boolean;
}

export interface AckEvent {
  id: string;
  room: string;
  offset: number;
  epoch: string;
  dup: boolean;
}

/** Everything a ConfabClient emits. */
export interface ClientEvents {
  state: StateChange;
  welcome: ServerFrameOf<'welcome'>;
  /** A chat message (kind 'msg'), new to this client, in room order. */
  message: ChatMessage;
  /** An alert (kind 'alert'), new to this client. */
  alert: ChatMessage;
  presence: { room: string; event: 'join' | 'leave'; user: Member };
  typing: { room: string; user: Member };
  joined: JoinedEvent;
  left: { room: string };
  gap: GapEvent;
  /** A resume skipped older missed messages on purpose (see MissedEvent); page them with history(). */
  missed: MissedEvent;
  ack: AckEvent;
  /** Outbox changed (added, acked, dropped): its current length. */
  outbox: { size: number };
  rooms: { rooms: { name: string; members: number }[] };
  /** The node's message bus went down (sends are refused and stay queued) or came back. */
  bus: { bus: 'up' | 'down' };
  error: ClientError;
  /** The session was renewed on the open socket (`authed`): its new expiry (unix s) and permissions. */
  session: { exp: number; perms: { alert: boolean } };
  /** The SDK renewed a handle session by itself: keep this token (e.g. in storage) for the next start. */
  token: { token: string };
}
