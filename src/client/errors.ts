import { type ErrorCode, ErrorCodes } from '../protocol/codes.js';

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
  | 'connect_failed';

export type ClientErrorCode = ErrorCode | LocalErrorCode;

/** Error codes after which a queued message is dropped (retrying cannot succeed). */
const FATAL_FOR_MESSAGE = new Set<string>([
  'bad_json',
  'bad_frame',
  'unknown_type',
  'bad_room',
  'forbidden_room',
  'not_joined',
  'text_too_long',
  'duplicate_id_conflict',
]);

/**
 * Codes after which a queued message stays in the outbox and is resent (in outbox order, after a
 * jittered delay that grows while nothing is acknowledged). Any code not in FATAL_FOR_MESSAGE is
 * treated so, including codes a newer server adds; this list documents the known ones.
 * `fenced`: an earlier message on this connection failed and must be resent first; the SDK
 * resends in order and does not report it as an `error` event.
 */
export const RETRYABLE_FOR_MESSAGE: readonly string[] = ['bus_unavailable', 'store_failed', 'rate_limited', 'internal', 'fenced'];

/** True when a message answered with this error code should be dropped from the outbox. */
export function isFatalForMessage(code: string): boolean {
  return FATAL_FOR_MESSAGE.has(code);
}

/**
 * A typed client error: a stable string `code` (the server's when it came from the server),
 * the close code when the connection was closed, and the message id / room it concerns.
 */
export class ClientError extends Error {
  readonly code: ClientErrorCode | string;
  readonly closeCode?: number;
  readonly id?: string;
  readonly room?: string;
  constructor(
    code: ClientErrorCode | string,
    message?: string,
    opts: { closeCode?: number; id?: string; room?: string; cause?: unknown } = {},
  ) {
    super(message ?? (ErrorCodes as Record<string, { message: string }>)[code]?.message ?? code, { cause: opts.cause });
    this.name = 'ClientError';
    this.code = code;
    if (opts.closeCode !== undefined) this.closeCode = opts.closeCode;
    if (opts.id !== undefined) this.id = opts.id;
    if (opts.room !== undefined) this.room = opts.room;
  }
}
