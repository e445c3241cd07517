/**
 * One owner per handle, cluster-wide, on every bus: each handle's confusable skeleton
 * (skeleton.ts) has a claim log, a room of the History (`_h-<skeleton>`), which every gateway of
 * a deployment shares (the History is shared whenever the bus joins gateways: config.ts refuses
 * anything else). A claim is an append; the History orders a room's appends totally (G1), so every
 * node that reads the log agrees on who holds the handle. The rule, applied in log order:
 *   - `claim(u, exp)` takes the handle when nobody holds it, or its holder's claim had expired
 *     at that entry's time, or u already holds it (then the expiry extends);
 *   - `release(u)` frees it when u holds it (sign-out, rename).
 * A claimer appends, then reads the log back: it holds the handle only if the rule says so after
 * its own entry (two concurrent claims: the earlier in the log wins, the other is told handle_taken).
 * A claim is checked against the log before it is appended, so a refused claimer does not grow
 * the log. Each node caches "u holds s until exp" (what the log said), which the upgrade uses
 * without a read; the bus (`ctl.auth`) tells other nodes of a new holder or a release, and a
 * cached holder is trusted only while its claim lives and its session is not revoked.
 * Nothing here depends on the bus kind: the bus only speeds up cache updates.
 */
import { randomBytes } from 'node:crypto';
import type { History } from '../history/types.js';
import type { Member } from '../protocol/frames.js';
import { skeletonRoom } from './skeleton.js';

/** Entries read back from a claim log (a handle's whole recent story; renewals append one each). */
const LOG_WINDOW = 200;
/** Holders cached per node (a bounded map: the oldest entries go first). */
const CACHE_MAX = 100_000;

export interface Holder {
  user: string;
  handle: string;
  /** Unix seconds. */
  exp: number;
}

type Entry = { op: 'claim'; u: string; h: string; exp: number; ts: number } | { op: 'release'; u: string; h: string; ts: number };

export type ClaimResult = { ok: true } | { ok: false; holder: Holder };

export interface HandleRegistryOptions {
  history: History;
  node: string;
  region: string;
  /** Tell the other nodes (the auth channel on the bus); may throw while the bus is down. */
  announce(msg: { k: 'held' | 'released'; room: string; user: string; handle: string; exp?: number }): void;
}

/** The holder after a log, at `nowS` (unix s). */
export function holderOf(entries: Entry[], nowS: number): Holder | undefined {
  let h: Holder | undefined;
  for (const e of entries) {
    const at = Math.floor(e.ts / 1000);
    if (e.op === 'claim') {
      if (h && h.user !== e.u && h.exp > at) continue; // held by another: this claim lost
      h = { user: e.u, handle: e.h, exp: h && h.user === e.u ? Math.max(h.exp, e.exp) : e.exp };
      if (h.handle !== e.h) h.handle = e.h;
    } else if (h && h.user === e.u) {
      h = undefined;
    }
  }
  return h && h.exp > nowS ? h : undefined;
}

function parseEntry(text: string, ts: number, user: string): Entry | undefined {
  try {
    const v = JSON.parse(text) as { op?: unknown; h?: unknown; exp?: unknown };
    if (typeof v.h !== 'string') return undefined;
    if (v.op === 'claim' && typeof v.exp === 'number') return { op: 'claim', u: user, h: v.h, exp: v.exp, ts };
    if (v.op === 'release') return { op: 'release', u: user, h: v.h, ts };
  } catch {
    // not ours
  }
  return undefined;
}

export class HandleRegistry {
  private readonly cache = new Map<string, Holder>();

  constructor(private readonly o: HandleRegistryOptions) {}

  /** Who holds `handle` (or a look-alike) now, read from the log. Rejects when the History cannot be read. */
  async holder(handle: string, nowS = Math.floor(Date.now() / 1000)): Promise<Holder | undefined> {
    const room = skeletonRoom(handle);
    const r = await this.o.history.recent(room, LOG_WINDOW);
    const entries: Entry[] = [];
    for (const m of r.messages) {
      const e = parseEntry(m.text, m.ts, m.from.user);
      if (e) entries.push(e);
    }
    const h = holderOf(entries, nowS);
    if (h) this.remember(room, h);
    else this.cache.delete(room);
    return h;
  }

  /**
   * Claim `handle` for `user` until `exp` (unix s). Resolves ok when `user` holds it afterwards,
   * else with the holder. Rejects (ConfabError from the History) when the log cannot be written or read.
   */
  async claim(user: Member, exp: number): Promise<ClaimResult> {
    const room = skeletonRoom(user.handle);
    const before = await this.holder(user.handle);
    if (before && before.user !== user.id) return { ok: false, holder: before };
    if (before && before.user === user.id && before.exp >= exp && before.handle === user.handle) return { ok: true };
    await this.append(room, user, { op: 'claim', h: user.handle, exp });
    const after = await this.holder(user.handle);
    if (!after || after.user !== user.id) return after ? { ok: false, holder: after } : { ok: false, holder: { user: '', handle: user.handle, exp } };
    this.tell({ k: 'held', room, user: user.id, handle: user.handle, exp: after.exp });
    return { ok: true };
  }

  /** Free `handle` if `user` holds it (sign-out, rename). */
  async release(user: Member): Promise<void> {
    const room = skeletonRoom(user.handle);
    await this.append(room, user, { op: 'release', h: user.handle });
    this.cache.delete(room);
    this.tell({ k: 'released', room, user: user.id, handle: user.handle });
  }

  /**
   * Does `user` hold `handle` until at least `exp`? From the cache when it says so, else the log,
   * claiming the handle when it is free (an app token's first socket). Resolves the holder when another user has it.
   */
  async ensure(user: Member, exp: number): Promise<ClaimResult> {
    const room = skeletonRoom(user.handle);
    const c = this.cache.get(room);
    if (c && c.user === user.id && c.exp >= exp) return { ok: true };
    return this.claim(user, exp);
  }

  /** A message from another node's registry. */
  onRemote(msg: { k: string; room?: unknown; user?: unknown; handle?: unknown; exp?: unknown }): void {
    if (typeof msg.room !== 'string') return;
    if (msg.k === 'released') {
      const c = this.cache.get(msg.room);
      if (c && c.user === msg.user) this.cache.delete(msg.room);
    } else if (msg.k === 'held' && typeof msg.user === 'string' && typeof msg.handle === 'string' && typeof msg.exp === 'number') {
      this.remember(msg.room, { user: msg.user, handle: msg.handle, exp: msg.exp });
    }
  }

  private remember(room: string, h: Holder): void {
    this.cache.delete(room);
    this.cache.set(room, h);
    if (this.cache.size > CACHE_MAX) this.cache.delete(this.cache.keys().next().value!);
  }

  private tell(msg: Parameters<HandleRegistryOptions['announce']>[0]): void {
    try {
      this.o.announce(msg);
    } catch {
      // the bus is down: other nodes read the log when their cache does not answer
    }
  }

  private async append(room: string, user: Member, body: object): Promise<void> {
    await this.o.history.append({
      room,
      id: `c${randomBytes(9).toString('base64url').replace(/[^A-Za-z0-9_-]/g, '')}`,
      kind: 'msg',
      text: JSON.stringify(body),
      from: { user: user.id, handle: user.handle, node: this.o.node, region: this.o.region },
      ts: Date.now(),
    });
  }
}
