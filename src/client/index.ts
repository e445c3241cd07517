/**
 * confab client SDK, for browsers and Node. Public entry: import from here only.
 *
 *   const client = new ConfabClient({ url, token, WebSocket, storage });
 *   client.on('message', (m) => …); client.connect(); await client.join('lobby');
 *   await client.send('lobby', 'hi');
 *
 * See docs/client.md.
 */
export { ConfabClient, socketUrl, retryHint } from './client.js';
export { endpointKey, urlList } from './urls.js';
export { Backoff, DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js';
export { ReadinessProbe, DEFAULT_PROBE, probeUrl, type FetchLike, type ProbeOptions, type ProbeTimers } from './probe.js';
export { ClientError, retryClassOf, type ClientErrorCode, type LocalErrorCode } from './errors.js';
export { Pacer, DEFAULT_PACING, type PacingOptions } from './pacer.js';
export type { RetryClass } from '../protocol/codes.js';
export { Emitter, type Listener } from './emitter.js';
export { Outbox, newMessageId, type OutboxEntry, type OutboxState } from './outbox.js';
export { RoomCursors, type AcceptResult, type RoomPositions } from './cursors.js';
export { MemoryStorage, type StorageLike } from './storage.js';
export {
  CONNECTION_STATES,
  type AckEvent,
  type ClientEvents,
  type ClientOptions,
  type ConnectionState,
  type GapEvent,
  type HistoryOptions,
  type HistoryPage,
  type MissedEvent,
  type JoinedEvent,
  type StateChange,
  type WebSocketCtor,
  type WebSocketLike,
} from './types.js';
export { ALERTS_ROOM, HANDLE_RE, ID_RE, ROOM_RE, SUBPROTOCOL } from './constants.js';
export type { ChatMessage, Member, Position } from '../protocol/frames.js';
