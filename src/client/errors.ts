import { type ErrorCode, ErrorCodes, type RetryClass, retryOf } from '../protocol/codes.js';

/** Codes the client itself raises, beside the server's table (src/protocol/codes.ts). */
export type LocalErrorCode =
  /** The room name does not match ROOM_RE. */
  | 'bad_room'
  /** send() to a room this client has not joined, or left before the message went out. */
  | 'not_joined'
  /** The client was closed (close()) while the message was still waiting. */
  | 'closed'
  /** The server sent something that is not a valid frame. */
  | 'bad_server_frame'
  /** The socket failed to open (network error, refused, HTTP error at upgrade). */
  | 'connect_failed'
  /** join() beyond `welcome.limits.maxRooms`: refused locally, nothing sent (the server's code). */
  | 'too_many_rooms'
  /** A message longer than `welcome.limits.maxTextChars`: dropped locally, nothing sent (the server's code). */
  | 'text_too_long'
  /** A message whose frame exceeds `welcome.limits.maxFrameBytes`: dropped locally (the server would close the socket with 1009). */
  | 'too_large';

export type ClientErrorCode = ErrorCode | LocalErrorCode;

/**
 * What to do after an `error` frame: its `retry` field (every server error carries its code's
 * class from the table in src/protocol/codes.ts), else the table's class for the code. A code
 * the table does not know and that comes without a class is `never`: resending blindly could
 * go on for ever; the caller gets a typed error instead.
 */
export function retryClassOf(f: { code: string; retry?: unknown }): RetryClass {
  if (f.retry === 'never' || f.retry === 'later' || f.retry === 'reconnect') return f.retry;
  return retryOf(f.code) ?? 'never';
}

/**
 * A typed client error: a stable string `code` (the server's when it came from the server),
 * the close code when the connection was closed, the message id / room it concerns, and its
 * retry class: `later` means the SDK keeps the work and sends it again by itself (the error is
 * news, not a failure), `never` that the work was dropped (the Promise rejects), `reconnect` that
 * the connection is being replaced.
 */
export class ClientError extends Error {
  readonly code: ClientErrorCode | string;
  readonly closeCode?: number;
  readonly id?: string;
  readonly room?: string;
  readonly retry?: RetryClass;
  constructor(
    code: ClientErrorCode | string,
    message?: string,
    opts: { closeCode?: number; id?: string; room?: string; retry?: RetryClass; cause?: unknown } = {},
  ) {
    super(message ?? (ErrorCodes as Record<string, { message: string }>)[code]?.message ?? code, { cause: opts.cause });
    this.name = 'ClientError';
    this.code = code;
    if (opts.closeCode !== undefined) this.closeCode = opts.closeCode;
    if (opts.id !== undefined) this.id = opts.id;
    if (opts.room !== undefined) this.room = opts.room;
    if (opts.retry !== undefined) this.retry = opts.retry;
  }
}
