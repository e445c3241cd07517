/**
 * The browser session: handle + token from POST /api/session.
 *
 * Identity is per tab. Every session this browser holds is kept in localStorage
 * (`confab.sessions`, by user id); a tab uses one of them, remembers which in sessionStorage
 * (so a reload keeps it) and holds a Web Lock named after it while open. A new window or tab
 * takes the most recently used session that no open tab holds, or asks for a handle: two
 * windows are two users, a reload is the same user, and closing the browser and coming back
 * signs the last user in again. Without Web Locks (a plain-http page on another host than
 * localhost is not a secure context) a new tab takes the last session, as before.
 */
import { HANDLE_RE } from '../client/index.js';

export interface SavedSession {
  handle: string;
  token: string;
  userId: string;
  /** Expiry in ms since the epoch, when the server said. */
  expiresAt?: number;
  /** What this user may do, from the server (absent: an older server; everything allowed). */
  perms?: { alert: boolean };
}

const KEY = 'confab.sessions';
const LEGACY_KEY = 'confab.session';
const TAB_KEY = 'confab.tab-user';
const MAX_KEPT = 8;

/** An HTTP-level refusal from /api/session: the server's string code and status. */
export class SessionError extends Error {
  readonly code: string;
  readonly status: number;
  constructor(code: string, message: string, status: number) {
    super(message);
    this.name = 'SessionError';
    this.code = code;
    this.status = status;
  }
}

/** Client-side handle check, the same rule as the server's HANDLE_RE; returns a message when invalid. */
export function handleProblem(handle: string): string | undefined {
  if (handle.length < 2) return 'A handle needs at least 2 characters.';
  if (handle.length > 24) return 'A handle has at most 24 characters.';
  if (!HANDLE_RE.test(handle)) return 'Use letters, digits, “.”, “_” or “-”, starting with a letter or digit.';
  return undefined;
}

/** What to tell a user whose sign-in was refused. */
export function refusalText(err: SessionError, handle: string): string {
  if (err.code === 'handle_taken') return `“${handle}” is taken: ${err.message}.`;
  return err.message;
}

function parse(v: unknown): SavedSession | undefined {
  const s = v as Partial<SavedSession> | null;
  if (!s || typeof s.handle !== 'string' || typeof s.token !== 'string' || typeof s.userId !== 'string') return undefined;
  return {
    handle: s.handle,
    token: s.token,
    userId: s.userId,
    ...(typeof s.expiresAt === 'number' ? { expiresAt: s.expiresAt } : {}),
    ...(s.perms && typeof s.perms.alert === 'boolean' ? { perms: { alert: s.perms.alert } } : {}),
  };
}

type Kept = Record<string, { s: SavedSession; usedAt: number }>;

function readKept(): Kept {
  const out: Kept = {};
  try {
    const raw = JSON.parse(localStorage.getItem(KEY) ?? '{}') as Record<string, { s?: unknown; usedAt?: unknown }>;
    for (const [id, v] of Object.entries(raw ?? {})) {
      const s = parse(v?.s);
      if (s && s.userId === id && (s.expiresAt === undefined || s.expiresAt > Date.now())) out[id] = { s, usedAt: typeof v.usedAt === 'number' ? v.usedAt : 0 };
    }
    const legacy = parse(JSON.parse(localStorage.getItem(LEGACY_KEY) ?? 'null'));
    if (legacy && !out[legacy.userId]) out[legacy.userId] = { s: legacy, usedAt: 0 };
  } catch {
    /* corrupt or blocked: none */
  }
  return out;
}

function writeKept(kept: Kept): void {
  const newest = Object.entries(kept)
    .sort((a, b) => b[1].usedAt - a[1].usedAt)
    .slice(0, MAX_KEPT);
  try {
    localStorage.setItem(KEY, JSON.stringify(Object.fromEntries(newest)));
    localStorage.removeItem(LEGACY_KEY);
  } catch {
    /* storage full or blocked: the session lasts this page only */
  }
}

function tabUser(): string | null {
  try {
    return sessionStorage.getItem(TAB_KEY);
  } catch {
    return null;
  }
}

function setTabUser(id: string | null): void {
  try {
    if (id) sessionStorage.setItem(TAB_KEY, id);
    else sessionStorage.removeItem(TAB_KEY);
  } catch {
    /* ignore */
  }
}

type LockManagerLike = { request(name: string, opts: { ifAvailable: boolean }, cb: (lock: unknown) => Promise<void>): Promise<unknown> };

function lockManager(): LockManagerLike | undefined {
  return (navigator as { locks?: LockManagerLike }).locks;
}

let held: { userId: string; release: () => void } | undefined;

/** Hold this user's tab lock while the page lives; false when another tab holds it. */
async function tryHold(userId: string): Promise<boolean> {
  if (held?.userId === userId) return true;
  const locks = lockManager();
  if (!locks) return true;
  return new Promise<boolean>((resolve) => {
    locks
      .request(`confab.session.${userId}`, { ifAvailable: true }, (lock) => {
        if (!lock) {
          resolve(false);
          return Promise.resolve();
        }
        resolve(true);
        return new Promise<void>((release) => {
          held = { userId, release };
        });
      })
      .catch(() => resolve(false));
  });
}

function releaseHeld(): void {
  held?.release();
  held = undefined;
}

/**
 * The session this tab should use: its own (after a reload), else the most recently used one
 * no other tab holds; undefined: ask for a handle.
 */
export async function claimSession(): Promise<SavedSession | undefined> {
  const kept = readKept();
  const mine = tabUser();
  if (mine && kept[mine] && (await tryHold(mine))) return kept[mine].s;
  const order = Object.values(kept).sort((a, b) => b.usedAt - a.usedAt);
  if (!lockManager()) return order[0]?.s;
  for (const k of order) {
    if (await tryHold(k.s.userId)) {
      setTabUser(k.s.userId);
      return k.s;
    }
  }
  return undefined;
}

/** Keep a (new or renewed) session as this tab's. */
export async function saveSession(s: SavedSession): Promise<void> {
  const kept = readKept();
  kept[s.userId] = { s, usedAt: Date.now() };
  writeKept(kept);
  if (held && held.userId !== s.userId) releaseHeld();
  setTabUser(s.userId);
  await tryHold(s.userId);
}

/** Forget this tab's session (sign-out) and let it go. */
export function clearSession(userId: string | undefined): void {
  if (userId) {
    const kept = readKept();
    delete kept[userId];
    writeKept(kept);
  }
  setTabUser(null);
  releaseHeld();
}

function toMs(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return v < 1e12 ? v * 1000 : v;
  if (typeof v === 'string') {
    const t = Date.parse(v);
    return Number.isNaN(t) ? undefined : t;
  }
  return undefined;
}

/**
 * POST /api/session: a new session for `handle`, or a renewal when `token` is given.
 * Rejects with SessionError on a 4xx/5xx answer, and with TypeError when the server is unreachable.
 */
export async function requestSession(handle: string, token?: string): Promise<SavedSession> {
  const res = await fetch('/api/session', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(token ? { handle, token } : { handle }),
  });
  let body: Record<string, unknown> = {};
  try {
    body = (await res.json()) as Record<string, unknown>;
  } catch {
    /* non-JSON answer */
  }
  if (!res.ok) {
    const code = typeof body.code === 'string' ? body.code : `http_${res.status}`;
    const message = typeof body.message === 'string' ? body.message : `the server answered ${res.status}`;
    throw new SessionError(code, message, res.status);
  }
  const user = body.user as { id?: unknown; handle?: unknown } | undefined;
  if (typeof body.token !== 'string' || typeof user?.id !== 'string' || typeof user.handle !== 'string') {
    throw new SessionError('bad_response', 'unexpected answer from /api/session', res.status);
  }
  const expiresAt = toMs(body.expiresAt);
  const perms = body.perms as { alert?: unknown } | undefined;
  return {
    handle: user.handle,
    token: body.token,
    userId: user.id,
    ...(expiresAt !== undefined ? { expiresAt } : {}),
    ...(typeof perms?.alert === 'boolean' ? { perms: { alert: perms.alert } } : {}),
  };
}

/** DELETE /api/session: sign the session out on every node (best effort: the page forgets it anyway). */
export async function signOut(token: string): Promise<void> {
  try {
    await fetch('/api/session', { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
  } catch {
    /* unreachable: the token expires on its own */
  }
}
