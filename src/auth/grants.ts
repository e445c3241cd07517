/**
 * What a session may do, and the room policy it is checked against. Kept apart from the token
 * code so the gateway's connection only asks three questions: may join, may publish, may alert.
 */
import { ROOM_RE } from '../protocol/constants.js';

/** Permissions carried by a session (from an app token's claims, or the anonymous defaults). */
export interface Grants {
  /** Room patterns this session may join and publish in; undefined = every public room. */
  rooms?: readonly string[];
  /** Room patterns it may join (read) but not publish in. */
  read?: readonly string[];
  /** May send alerts to everyone. */
  alert: boolean;
}

/** A room pattern: a room name, or a prefix of one followed by `*` (`team-*`), or `*` alone. */
export const ROOM_PATTERN_RE = /^(?:\*|[a-z0-9][a-z0-9_-]{0,31}\*?)$/;

export function patternMatches(pattern: string, room: string): boolean {
  return pattern.endsWith('*') ? room.startsWith(pattern.slice(0, -1)) : pattern === room;
}

const anyMatch = (patterns: readonly string[] | undefined, room: string) => patterns?.some((p) => patternMatches(p, room)) ?? false;

/** Which rooms are private: by name prefix (CONFAB_PRIVATE_PREFIX) or listed (CONFAB_PRIVATE_ROOMS). */
export class RoomPolicy {
  constructor(
    readonly privatePrefix: string,
    readonly privateRooms: readonly string[] = [],
  ) {}

  isPrivate(room: string): boolean {
    return (this.privatePrefix !== '' && room.startsWith(this.privatePrefix)) || this.privateRooms.includes(room);
  }

  /**
   * May a session with `g` join (and see) `room`? Without `rooms` and `read`: every public room.
   * With either: only rooms they match. A private room needs a pattern that names it or its prefix
   * (a bare `*` grants public rooms only).
   */
  canJoin(g: Grants, room: string): boolean {
    if (!ROOM_RE.test(room)) return false;
    if (this.isPrivate(room)) return matchesPrivately(g.rooms, room) || matchesPrivately(g.read, room);
    if (g.rooms === undefined && g.read === undefined) return true;
    return anyMatch(g.rooms, room) || anyMatch(g.read, room);
  }

  /** May a session with `g` publish in `room` (it must also have joined it)? */
  canPublish(g: Grants, room: string): boolean {
    if (!ROOM_RE.test(room)) return false;
    if (this.isPrivate(room)) return matchesPrivately(g.rooms, room);
    if (g.rooms === undefined && g.read === undefined) return true;
    return anyMatch(g.rooms, room);
  }
}

function matchesPrivately(patterns: readonly string[] | undefined, room: string): boolean {
  return patterns?.some((p) => p !== '*' && patternMatches(p, room)) ?? false;
}
