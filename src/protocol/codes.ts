/**
 * The one table of error and close codes, shared by server and client.
 *
 * Every error confab reports has a stable string `code`. Errors that end the
 * connection also have a WebSocket close `close` code:
 *   - 1000–1015  standard codes (1009 frame too large, 1001 going away, …)
 *   - 4000–4499  the client should reconnect (with backoff, or after the retry hint)
 *   - 4500–4999  the client must not reconnect as it is (new session needed, protocol bug):
 *                4500 session_expired, 4501 session_revoked, 4502 replaced
 * Errors without a close code are sent as an `error` frame and the connection stays open
 * (`unauthorized`, `protocol_violation`, `too_many_connections` and `too_many_sockets` only ever answer the HTTP upgrade; `node_full` answers an upgrade, a plain HTTP request or a `join`).
 */
/**
 * What a client may do after an error:
 *  - `never`: resending the same frame cannot succeed (fix it or drop it);
 *  - `later`: nothing happened; send it again after a short, jittered delay (in order, see `fenced`);
 *  - `reconnect`: the connection ends; reconnect with backoff and resume.
 */
export type RetryClass = 'never' | 'later' | 'reconnect';

export const ErrorCodes = {
  bad_json: { close: null, retry: 'never', message: 'frame is not valid JSON' },
  bad_frame: { close: null, retry: 'never', message: 'frame does not match the protocol schema' },
  unknown_type: { close: null, retry: 'never', message: 'unknown frame type' },
  bad_room: { close: null, retry: 'never', message: 'invalid room name' },
  forbidden_room: { close: null, retry: 'never', message: 'room is not open to this user' },
  forbidden: { close: null, retry: 'never', message: 'this session has no permission for that' },
  not_joined: { close: null, retry: 'never', message: 'join the room first' },
  too_many_rooms: { close: null, retry: 'never', message: 'too many rooms on this connection' },
  text_too_long: { close: null, retry: 'never', message: 'message text too long' },
  rate_limited: { close: null, retry: 'later', message: 'too many frames, slow down' },
  bus_unavailable: { close: null, retry: 'later', message: 'message bus unavailable, message not stored; retry' },
  store_failed: { close: null, retry: 'later', message: 'history store failed, message not stored; retry' },
  duplicate_id_conflict: { close: null, retry: 'never', message: 'message id already used' },
  fenced: { close: null, retry: 'later', message: 'an earlier message on this connection failed; resend it first' },
  internal: { close: null, retry: 'later', message: 'internal error' },
  node_full: { close: null, retry: 'later', message: 'this node is at a capacity limit; try again later' },
  // connection-ending errors (reconnect allowed)
  too_large: { close: 1009, retry: 'reconnect', message: 'frame too large' },
  draining: { close: 4000, retry: 'reconnect', message: 'node is draining; reconnect (see retryMs)' },
  slow_consumer: { close: 4001, retry: 'reconnect', message: 'send buffer full; reconnect and resume' },
  ping_timeout: { close: 4002, retry: 'reconnect', message: 'no pong within the ping timeout' },
  flood: { close: 4003, retry: 'reconnect', message: 'rate limit exceeded repeatedly' },
  // connection-ending errors that need a new session first (close codes 4500-4999: no automatic reconnect as is)
  session_expired: { close: 4500, retry: 'never', message: 'the session expired; renew it (POST /api/session or a new app token) and reconnect' },
  session_revoked: { close: 4501, retry: 'never', message: 'the session was signed out' },
  replaced: { close: 4502, retry: 'never', message: 'a newer session of this user took over' },
  // refusals of the HTTP upgrade (no socket exists yet: these arrive as the JSON body of a 401 / 400 / 429)
  unauthorized: { close: null, retry: 'never', message: 'missing, invalid or expired session' },
  handle_taken: { close: null, retry: 'never', message: 'this handle (or one that looks the same) belongs to another user' },
  protocol_violation: { close: null, retry: 'never', message: 'protocol violation' },
  too_many_connections: { close: null, retry: 'later', message: 'too many connections from this address' },
  too_many_sockets: { close: null, retry: 'later', message: 'too many sockets for this user' },
} as const satisfies Record<string, { close: number | null; retry: RetryClass; message: string }>;

export type ErrorCode = keyof typeof ErrorCodes;

/** The retry class of a code (every `error` frame carries it): what a client may do about it. */
export function retryOf(code: string): RetryClass | undefined {
  return (ErrorCodes as Record<string, { retry: RetryClass }>)[code]?.retry;
}

/** Close codes at or above this value mean: do not reconnect automatically. */
export const CLOSE_NO_RECONNECT_MIN = 4500;

/** True when a client receiving this close code should reconnect. */
export function shouldReconnect(closeCode: number): boolean {
  return !(closeCode >= CLOSE_NO_RECONNECT_MIN && closeCode <= 4999);
}

/** Look up the string code for a WebSocket close code, if confab defines one. */
export function codeForClose(closeCode: number): ErrorCode | undefined {
  for (const [k, v] of Object.entries(ErrorCodes)) if (v.close === closeCode) return k as ErrorCode;
  return undefined;
}

/** A typed confab error: a stable string code, a close code when it ends the connection, and a cause. */
export class ConfabError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown }) {
    super(message ?? ErrorCodes[code].message, options);
    this.name = 'ConfabError';
    this.code = code;
  }
  get closeCode(): number | null {
    return ErrorCodes[this.code].close;
  }
}
