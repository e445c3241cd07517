/** The protocol constants the client needs (zod-free module, so the browser bundle stays small). */
export { ALERTS_ROOM, HANDLE_RE, ID_RE, ROOM_RE, SUBPROTOCOL } from '../protocol/constants.js';
