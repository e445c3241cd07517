/**
 * Protocol constants with no dependencies, so the browser client can import
 * them without pulling zod into its bundle. frames.ts re-exports them.
 */
export const PROTOCOL_VERSION = 1;
export const SUBPROTOCOL = 'confab.v1';
/** Room names users may join: lower-case letters, digits, '-', '_', 1–32 chars, not starting with '_'. */
export const ROOM_RE = /^[a-z0-9][a-z0-9_-]{0,31}$/;
/** The node-wide room every connection may join to receive alerts. */
export const ALERTS_ROOM = '_alerts';
/** Handles: letters, digits, '_', '-', '.', 2–24 chars, starting with a letter or digit. */
export const HANDLE_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{1,23}$/;
/** Client message ids: 1–64 chars of [A-Za-z0-9_-]. */
export const ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
/** `history` frame: messages per page when `limit` is not given, and the most a page may ask for. */
export const HISTORY_PAGE_DEFAULT = 50;
export const HISTORY_PAGE_MAX = 200;
