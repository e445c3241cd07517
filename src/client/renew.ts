/**
 * Session renewal for the SDK: when the server sends `refresh` (the socket's token expires soon),
 * the client gets a fresh token — from the app's `token` function when it gives a new one, else by
 * renewing a confab handle session (`POST /api/session {handle, token}` at the gateway's origin) —
 * and sends it on the open socket (`auth`), so nothing is dropped or resent.
 */

/** The part of `fetch` renewal uses; the platform's fetch fits. */
export type RenewFetch = (url: string, init: { method: string; headers: Record<string, string>; body: string; signal?: AbortSignal }) => Promise<{ ok: boolean; status: number; json(): Promise<unknown> }>;

/** The http(s) origin of a ws(s)/http(s) gateway URL. */
export function httpOrigin(url: string): string {
  const u = new URL(url);
  const proto = u.protocol === 'wss:' || u.protocol === 'https:' ? 'https:' : 'http:';
  return `${proto}//${u.host}`;
}

/** A refused renewal: the server's code (`session_expired`, `session_revoked`, `unauthorized`, …). */
export class RenewError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'RenewError';
  }
}

/** Renew a confab handle session at `base`; resolves the new token. */
export async function renewHandleSession(fetchFn: RenewFetch, base: string, handle: string, token: string, timeoutMs = 10_000): Promise<{ token: string; expiresAt?: number }> {
  const res = await fetchFn(`${httpOrigin(base)}/api/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ handle, token }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const body = (await res.json().catch(() => ({}))) as { token?: unknown; code?: unknown; message?: unknown; expiresAt?: unknown };
  if (!res.ok || typeof body.token !== 'string') {
    throw new RenewError(typeof body.code === 'string' ? body.code : `http_${res.status}`, typeof body.message === 'string' ? body.message : `renewal answered ${res.status}`);
  }
  return { token: body.token, ...(typeof body.expiresAt === 'number' ? { expiresAt: body.expiresAt } : {}) };
}

/**
 * A fresh token for the socket: from the app's token function when it gives another one, else by
 * renewing the handle session at the gateway (`onRenewed` is told the new token). Undefined when
 * there is nothing to renew.
 */
export async function freshToken(o: {
  token: string | (() => string | Promise<string>);
  current: string | undefined;
  fetch: RenewFetch | undefined;
  url: string;
  handle: string;
  onRenewed(token: string): void;
}): Promise<string | undefined> {
  let next = typeof o.token === 'function' ? await o.token() : undefined;
  if ((next === undefined || next === o.current) && o.current !== undefined) {
    const f = o.fetch ?? ((globalThis as { fetch?: RenewFetch }).fetch?.bind(globalThis) as RenewFetch | undefined);
    if (!f) throw new RenewError('unauthorized', 'no fetch to renew the session with; pass a token function');
    next = (await renewHandleSession(f, o.url, o.handle, o.current)).token;
    o.onRenewed(next);
  }
  return next;
}
