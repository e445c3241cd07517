/** The protocol constants the client needs (zod-free module, so the browser bundle stays small). */
export { ALERTS_ROOM, HANDLE_RE, HISTORY_PAGE_DEFAULT, HISTORY_PAGE_MAX, ID_RE, ROOM_RE, SUBPROTOCOL } from '../protocol/constants.js';
