import type { ClientOptions, ConnectionState } from '../client/index.js';

/** How clients are placed in rooms. */
export type RoomLayout =
  /** Client i joins room i mod `rooms`: rooms of about equal size. */
  | 'spread'
  /** Every client joins the first room (one big fan-out). */
  | 'one';

/**
 * What to run. Defaults are the `confab load` defaults. Every run is bounded:
 * by `durationMs` for sending, `connectTimeoutMs` for setting up, `tailMs` for
 * the tail.
 */
export interface LoadOptions {
  /** Gateway base URLs (http(s):// or ws(s)://). Client i's home is urls[i mod n]; it knows all of them and fails over. */
  urls: string[];
  /** SDK clients to open (each gets its own session and a unique handle). Default 200. */
  clients?: number;
  /** Rooms to use, named `<roomPrefix>0`, `<roomPrefix>1`, …. Default 10. */
  rooms?: number;
  /** Room placement. Default 'spread'. */
  layout?: RoomLayout;
  /** Clients that publish, spread over the rooms (publisher p publishes to room p mod rooms). Default 10. */
  publishers?: number;
  /** Total messages per second over all publishers. Default 100. */
  rate?: number;
  /** How long to send, ms. Default 30000. */
  durationMs?: number;
  /** Message text length in characters. Default 100. */
  payloadBytes?: number;
  /** After sending stops, wait at most this long for acks and deliveries still owed. Default 10000. */
  tailMs?: number;
  /** Every client connected and joined within this, or the run fails. Default 30000 + 10 ms per client. */
  connectTimeoutMs?: number;
  /** Sessions + sockets opened at once while setting up. Default 50. */
  connectConcurrency?: number;
  /** Room name prefix. Default 'load'. */
  roomPrefix?: string;
  /** Handle prefix; handles are `<prefix><run>-<i>`. Default 'ld'. */
  handlePrefix?: string;
  /** Every n-th client (index mod n = 0) is forced to the HTTP fallback (`transport: 'fallback'`); 0 or unset: none. */
  fallbackEvery?: number;
  /** Extra SDK options for every client (backoff, ping…); url, token, WebSocket and storage are set by the generator. */
  client?: Partial<Omit<ClientOptions, 'url' | 'token' | 'WebSocket' | 'storage'>>;
  /** Called about once a second while sending and in the tail. */
  onProgress?: (p: LoadProgress) => void;
  /** Stops sending early (the tail and the report still happen). */
  signal?: AbortSignal;
}

/** A snapshot while running. */
export interface LoadProgress {
  phase: 'connect' | 'send' | 'tail';
  elapsedMs: number;
  connected: number;
  scheduled: number;
  acked: number;
  delivered: number;
  /** Acknowledged deliveries still owed. */
  missing: number;
  reconnecting: number;
}

/** Percentiles in ms. */
export interface Percentiles {
  count: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

/** One client's trip away from `connected` and back (connected again and every room re-joined). */
export interface ReconnectSample {
  client: number;
  /** Node it was on before, and the node it came back on. */
  from: string | undefined;
  to: string | undefined;
  /** From leaving `connected` to connected again and every room re-joined. */
  ms: number;
  /** From leaving `connected` to `connected` again (welcome received; backoff + connect). */
  connectedMs: number;
}

/** The result of a run (also what `confab load --json` writes). */
export interface LoadReport {
  run: string;
  urls: string[];
  clients: number;
  rooms: number;
  publishers: number;
  rate: number;
  payloadBytes: number;
  /** Time to open every session and socket and join every room, ms. */
  connectMs: number;
  /** Time spent sending (the scheduled window, or until aborted), ms. */
  sendMs: number;
  /** Time spent waiting for the tail, ms. */
  tailMs: number;
  /** True when the tail completed (nothing owed) before tailMs ran out. */
  drained: boolean;
  /** Messages handed to the SDK (each at its scheduled time). */
  scheduled: number;
  acked: number;
  /** Acks with `dup: true` (a resend after a lost ack, stored once). */
  dupAcks: number;
  /** Refused for good (typed error), by code. */
  refused: Record<string, number>;
  /** Neither acknowledged nor refused when the run ended. */
  unacked: number;
  /** Deliveries owed: acked messages × members of their room. */
  expected: number;
  /** Distinct deliveries to the app of this run's messages. */
  delivered: number;
  deliveredPerSec: number;
  /** Owed deliveries that never arrived. */
  lost: number;
  /** The same message (same id or offset) given to the app twice. */
  duplicates: number;
  /** Offsets not increasing, or `prev` pointing behind the last offset seen. */
  orderViolations: number;
  /** A message whose offset differs from its ack or from what another member saw. */
  offsetMismatches: number;
  /** SDK `gap` events plus holes found by `prev`. */
  gaps: number;
  sdkGaps: number;
  prevHoles: number;
  /** Messages of the rooms that were not sent by this run. */
  foreign: number;
  /** Delivery latency from the scheduled send time. */
  latencyMs: Percentiles;
  /** Reconnects seen during the run (a client left `connected` and came back, re-joined). */
  reconnects: Percentiles & { samples: ReconnectSample[] };
  /** Clients that were away from `connected` (or not re-joined) when the run ended. */
  notBack: number;
  /** Clients per state at the end. */
  states: Partial<Record<ConnectionState, number>>;
  /** Clients per node (from `welcome`) at the start and at the end. */
  nodesAtStart: Record<string, number>;
  nodesAtEnd: Record<string, number>;
  /** SDK `error` events by code. */
  clientErrors: Record<string, number>;
  /** Things the user should know about the setup (rate above the server's per-connection limit, rooms without publishers). */
  warnings: string[];
  /** Per room: members, scheduled, acked, lost, duplicates, order violations, gaps. */
  perRoom: import('./tracker.js').RoomSummary[];
  /** lost, duplicates, order violations and offset mismatches are all 0. */
  ok: boolean;
}
