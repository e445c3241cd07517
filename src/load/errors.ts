/** Why a load run could not start or finish. */
export type LoadErrorCode =
  /** An option is out of range or malformed (the message names it). */
  | 'bad_option'
  /** This process may not open that many sockets (its open-files limit); lower --clients. */
  | 'fd_limit'
  /** POST /api/session failed for a client. */
  | 'session_failed'
  /** Not every client was connected and joined within the connect timeout. */
  | 'connect_failed';

/** A typed load-generator error: a stable `code`, a message that says what to change, and the `cause`. */
export class LoadError extends Error {
  readonly code: LoadErrorCode;
  constructor(code: LoadErrorCode, message: string, opts?: { cause?: unknown }) {
    super(message, opts);
    this.name = 'LoadError';
    this.code = code;
  }
}
