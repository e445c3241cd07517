/**
 * Protocol constants the client needs, without importing src/protocol/frames.ts at run time
 * (that module builds zod schemas, which would add ~450 KiB to the browser bundle).
 * test/unit/client-constants.test.ts fails if these drift from the protocol's.
 */
export const SUBPROTOCOL = 'confab.v1';
export const ALERTS_ROOM = '_alerts';
export const ROOM_RE = /^[a-z0-9][a-z0-9_-]{0,31}$/;
export const HANDLE_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{1,23}$/;
export const ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
