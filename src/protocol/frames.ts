/**
 * confab wire protocol v1: JSON text frames on the WebSocket subprotocol `confab.v1`.
 * Every frame is an object with a string `t` (type). See docs/protocol.md.
 */
import { z } from 'zod';

import { HISTORY_PAGE_MAX, ID_RE } from './constants.js';
export { ALERTS_ROOM, HANDLE_RE, HISTORY_PAGE_DEFAULT, HISTORY_PAGE_MAX, ID_RE, PROTOCOL_VERSION, ROOM_RE, SUBPROTOCOL } from './constants.js';

const room = z.string().max(64);
const id = z.string().regex(ID_RE);
const position = z.object({ epoch: z.string().max(64), offset: z.number().int().min(0) }).strict();

export const ClientFrame = z.discriminatedUnion('t', [
  z.object({ t: z.literal('join'), room, since: position.optional() }).strict(),
  z.object({ t: z.literal('leave'), room }).strict(),
  z.object({ t: z.literal('pub'), id, room, text: z.string() }).strict(),
  z.object({ t: z.literal('alert'), id, text: z.string() }).strict(),
  z.object({ t: z.literal('typing'), room }).strict(),
  z.object({ t: z.literal('ping') }).strict(),
  z.object({ t: z.literal('rooms') }).strict(),
  /** Older messages of a joined room: the newest `limit` (default 50) with offset < `before` (default: newest). */
  z.object({ t: z.literal('history'), room, before: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(), limit: z.number().int().min(1).max(HISTORY_PAGE_MAX).optional() }).strict(),
  /** A fresh token for this socket's session (answer to `refresh`, or any time): answered `authed` or a typed error. */
  z.object({ t: z.literal('auth'), token: z.string().min(1).max(8192) }).strict(),
]);
export type ClientFrame = z.infer<typeof ClientFrame>;
export const CLIENT_FRAME_TYPES = ['join', 'leave', 'pub', 'alert', 'typing', 'ping', 'rooms', 'history', 'auth'] as const;

/** Identity stamped on every message by the server (G7). */
export interface Sender {
  user: string;
  handle: string;
  node: string;
  region: string;
  /** `api` on messages from the HTTP publish API (a back end, not a user's handle); absent on users' messages. */
  kind?: 'api';
}
/** What a session may do beyond reading and writing the rooms it may join. */
export interface Perms {
  /** May send alerts to everyone (`alert` frame). */
  alert: boolean;
}
export interface Member {
  id: string;
  handle: string;
}
export interface Position {
  epoch: string;
  offset: number;
}

/** A stored, ordered room message (chat message or alert). */
export interface ChatMessage {
  room: string;
  /** Room offset: strictly increasing within (room, epoch). */
  offset: number;
  /** Offset of the previous message of the room (0 for the first); lets any receiver detect a hole. */
  prev: number;
  epoch: string;
  /** Client-made id (idempotency key within the sender). */
  id: string;
  kind: 'msg' | 'alert';
  text: string;
  from: Sender;
  /** Server time in ms when the message was accepted. */
  ts: number;
}

export type ServerFrame =
  | {
      t: 'welcome';
      v: number;
      node: string;
      region: string;
      version: string;
      user: Member;
      rooms: string[];
      /** What this session may do (the web client hides the alert form when `alert` is false). */
      perms: Perms;
      /** When the session's token expires (unix seconds); a `refresh` frame comes before it. */
      exp: number;
      limits: {
        maxFrameBytes: number;
        /** Longest `text`, counted in UTF-16 code units (JavaScript's `string.length`). */
        maxTextChars: number;
        maxRooms: number;
        /** Frames per second per connection (token bucket refill rate). */
        ratePerSec: number;
        /** Frames a connection may send at once above the rate (token bucket size). */
        rateBurst: number;
        /** Rate-limited frames in a row after which the connection is closed with 4003 `flood`. */
        floodCloseAfter: number;
        pingIntervalMs: number;
      };
    }
  | ({ t: 'msg' } & ChatMessage)
  | {
      t: 'joined';
      room: string;
      epoch: string;
      /** Last offset in the room when the join was answered (0 for an empty room). */
      last: number;
      /** True when `since` was given and every message after it follows, with no hole. */
      recovered: boolean;
      /** Present when history no longer reaches back to `since`: offsets from..to are lost for good. */
      gap?: { from: number; to: number };
      /**
       * Present when the resume had more than the server's replay bound to send: the stored messages
       * with offsets from..to were skipped on purpose (still kept: page them with `history`); only
       * the newest ones follow. `recovered` is then false.
       */
      missed?: { from: number; to: number };
      /** Present and true when `since.epoch` is not the room's current epoch (history was reset). */
      reset?: boolean;
      /** Members of the room across the cluster; empty for rooms over 200 members (see `count`). */
      members: Member[];
      /** How many distinct users are in the room across the cluster. */
      count: number;
    }
  | { t: 'left'; room: string }
  | { t: 'ack'; id: string; room: string; offset: number; prev: number; epoch: string; ts: number; dup: boolean }
  | { t: 'error'; code: string; message: string; retry: 'never' | 'later' | 'reconnect'; id?: string; room?: string }
  | { t: 'presence'; room: string; event: 'join' | 'leave'; user: Member }
  | { t: 'typing'; room: string; user: Member }
  | { t: 'pong' }
  /** The node's message bus went down (publishes are refused with bus_unavailable) or came back. */
  | { t: 'status'; bus: 'up' | 'down' }
  | { t: 'rooms'; rooms: { name: string; members: number }[] }
  /**
   * Answer to a `history` request: `msgs` are `msg` frames as delivered live, ascending, every
   * offset < `before` (the request's, or the room's newest offset + 1); `more`: older ones exist.
   */
  | { t: 'history'; room: string; before: number; msgs: ({ t: 'msg' } & ChatMessage)[]; more: boolean }
  /** The session's token expires at `exp` (unix seconds): send `auth` with a fresh token before then, or the socket closes with 4500. */
  | { t: 'refresh'; exp: number }
  /** The token of an `auth` frame was accepted: the session now lasts until `exp` (unix seconds). */
  | { t: 'authed'; exp: number; perms: Perms };

export type ServerFrameOf<T extends ServerFrame['t']> = Extract<ServerFrame, { t: T }>;

export function encode(frame: ServerFrame | ClientFrame): string {
  return JSON.stringify(frame);
}
