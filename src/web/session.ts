/** The browser session: handle + token from POST /api/session, kept in localStorage across reloads. */
import { HANDLE_RE } from '../client/index.js';

export interface SavedSession {
  handle: string;
  token: string;
  userId: string;
  /** Expiry in ms since the epoch, when the server said. */
  expiresAt?: number;
}

const KEY = 'confab.session';

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

export function loadSession(): SavedSession | undefined {
  try {
    const v = JSON.parse(localStorage.getItem(KEY) ?? 'null') as Partial<SavedSession> | null;
    if (v && typeof v.handle === 'string' && typeof v.token === 'string' && typeof v.userId === 'string') {
      return { handle: v.handle, token: v.token, userId: v.userId, ...(typeof v.expiresAt === 'number' ? { expiresAt: v.expiresAt } : {}) };
    }
  } catch {
    /* corrupt: treat as none */
  }
  return undefined;
}

export function saveSession(s: SavedSession): void {
  try {
    localStorage.setItem(KEY, JSON.stringify(s));
  } catch {
    /* storage full or blocked: the session lasts this page only */
  }
}

export function clearSession(): void {
  try {
    localStorage.removeItem(KEY);
  } catch {
    /* ignore */
  }
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
  return { handle: user.handle, token: body.token, userId: user.id, ...(expiresAt !== undefined ? { expiresAt } : {}) };
}

/** DELETE /api/session: sign the session out on every node (best effort: the page forgets it anyway). */
export async function signOut(token: string): Promise<void> {
  try {
    await fetch('/api/session', { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
  } catch {
    /* unreachable: the token expires on its own */
  }
}
