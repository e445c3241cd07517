/**
 * Revoked sessions, on every node: a sign-out (or a rename, which replaces the session) appends
 * `{sid, exp, why}` to the History room `_auth-revoked` and tells every node over the bus
 * (`ctl.auth`). Each node keeps the set in memory until each entry's `exp` — the latest expiry any
 * token of that session can have — and reads the room back at start and whenever its bus comes
 * back (a node that missed the bus message while it was cut off still learns of it).
 */
import { randomBytes } from 'node:crypto';
import type { History } from '../history/types.js';

export const REVOKED_ROOM = '_auth-revoked';
/** Pages of the revocation room read at start (500 each; the History keeps at most CONFAB_HISTORY_LIMIT). */
const MAX_PAGES = 400;

export type RevokeReason = 'signed_out' | 'replaced';

export interface RevocationOptions {
  history: History;
  node: string;
  region: string;
  announce(msg: { k: 'revoked'; sid: string; exp: number; why: RevokeReason }): void;
  /** A session was revoked (here or on another node): close its sockets. */
  onRevoked(sid: string, why: RevokeReason): void;
}

export class Revocations {
  private readonly revoked = new Map<string, number>();
  private readAfter = 0;
  private epoch = '';
  private sweeper?: ReturnType<typeof setInterval>;

  constructor(private readonly o: RevocationOptions) {}

  /** Read the room (what is new since the last read); start the sweep of expired entries. */
  async load(): Promise<void> {
    if (!this.sweeper) {
      this.sweeper = setInterval(() => this.sweep(), 60_000);
      this.sweeper.unref();
    }
    for (let i = 0; i < MAX_PAGES; i++) {
      const r = await this.o.history.read(REVOKED_ROOM, this.readAfter, 500);
      if (r.epoch !== this.epoch) {
        if (this.epoch !== '' && this.readAfter > 0) {
          // history was reset under us: read the new epoch from its start
          this.epoch = r.epoch;
          this.readAfter = 0;
          continue;
        }
        this.epoch = r.epoch;
      }
      for (const m of r.messages) {
        this.readAfter = m.offset;
        try {
          const v = JSON.parse(m.text) as { sid?: unknown; exp?: unknown; why?: unknown };
          if (typeof v.sid === 'string' && typeof v.exp === 'number') this.add(v.sid, v.exp, v.why === 'replaced' ? 'replaced' : 'signed_out');
        } catch {
          // not ours
        }
      }
      if (!r.more) break;
    }
  }

  has(sid: string, nowS = Math.floor(Date.now() / 1000)): boolean {
    const exp = this.revoked.get(sid);
    return exp !== undefined && exp > nowS;
  }

  /** Revoke a session on every node until `exp` (unix s). Rejects when the History cannot store it. */
  async revoke(sid: string, exp: number, why: RevokeReason): Promise<void> {
    await this.o.history.append({
      room: REVOKED_ROOM,
      id: `r${randomBytes(9).toString('base64url').replace(/[^A-Za-z0-9_-]/g, '')}`,
      kind: 'msg',
      text: JSON.stringify({ sid, exp, why }),
      from: { user: 'confab', handle: 'confab', node: this.o.node, region: this.o.region },
      ts: Date.now(),
    });
    this.add(sid, exp, why);
    try {
      this.o.announce({ k: 'revoked', sid, exp, why });
    } catch {
      // bus down: the other nodes read the room when it is back
    }
  }

  onRemote(msg: { sid?: unknown; exp?: unknown; why?: unknown }): void {
    if (typeof msg.sid === 'string' && typeof msg.exp === 'number') this.add(msg.sid, msg.exp, msg.why === 'replaced' ? 'replaced' : 'signed_out');
  }

  stop(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  private add(sid: string, exp: number, why: RevokeReason): void {
    if (exp <= Date.now() / 1000) return;
    const known = this.revoked.has(sid);
    this.revoked.set(sid, Math.max(exp, this.revoked.get(sid) ?? 0));
    if (!known) this.o.onRevoked(sid, why);
  }

  private sweep(): void {
    const now = Date.now() / 1000;
    for (const [sid, exp] of this.revoked) if (exp <= now) this.revoked.delete(sid);
  }
}
