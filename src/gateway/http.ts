/**
 * HTTP routes: the web client (static files), sessions, health, readiness,
 * metrics and the publish API for back ends. Every response carries a strict
 * Content-Security-Policy and the usual hardening headers.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, extname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { ConfabError } from '../protocol/codes.js';
import { ALERTS_ROOM, HANDLE_RE, ID_RE, ROOM_RE } from '../protocol/frames.js';
import type { Core } from './core.js';

export const WEB_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../dist/web');
const MAX_BODY = 16 * 1024;

export const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.map': 'application/json',
  '.json': 'application/json',
};

const SessionBody = z.object({ handle: z.string().max(64), token: z.string().max(8192).optional() }).strict();
const SignOutBody = z.object({ token: z.string().max(8192) }).strict();
const PublishBody = z.object({ text: z.string(), id: z.string().regex(ID_RE).optional(), handle: z.string().regex(HANDLE_RE).optional() }).strict();

class HttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body);
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(data) });
  res.end(data);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const type = req.headers['content-type'] ?? '';
  if (!type.startsWith('application/json')) throw new HttpError(415, 'bad_request', 'content-type must be application/json');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new HttpError(413, 'too_large', `body over ${MAX_BODY} bytes`);
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'bad_json', 'body is not valid JSON');
  }
}

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new HttpError(400, 'bad_request', `${i?.path.join('.') || 'body'}: ${i?.message ?? 'invalid'}`);
  }
  return r.data;
}

/** Constant-time comparison of a presented secret with the expected one (hashes first: no length leak). */
export function sameSecret(got: string, want: string): boolean {
  const a = createHash('sha256').update(got).digest();
  const b = createHash('sha256').update(want).digest();
  return timingSafeEqual(a, b) && got.length === want.length;
}

function bearer(req: IncomingMessage): string {
  return (req.headers.authorization ?? '').replace(/^Bearer\s+/i, '');
}

function checkApiKey(core: Core, req: IncomingMessage): void {
  const key = core.config.apiKey;
  if (!key) throw new HttpError(404, 'not_found', 'the publish API is off (set CONFAB_API_KEY)');
  if (!sameSecret(bearer(req), key)) throw new HttpError(401, 'unauthorized', 'missing or wrong API key');
}

/** GET /metrics: Prometheus text; with CONFAB_METRICS_TOKEN only for `Authorization: Bearer <token>`. */
export async function serveMetrics(core: Core, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const token = core.config.metricsToken;
  if (token !== undefined && !sameSecret(bearer(req), token)) {
    res.setHeader('www-authenticate', 'Bearer');
    return json(res, 401, { code: 'unauthorized', message: 'metrics need Authorization: Bearer <CONFAB_METRICS_TOKEN>' });
  }
  const body = await core.metrics.registry.metrics();
  res.writeHead(200, { 'content-type': core.metrics.registry.contentType, 'cache-control': 'no-store' });
  res.end(body);
}

async function publishApi(core: Core, req: IncomingMessage, res: ServerResponse, room: string, kind: 'msg' | 'alert'): Promise<void> {
  checkApiKey(core, req);
  const body = parse(PublishBody, await readJson(req));
  if (body.text.length > core.config.maxTextChars || body.text.trim() === '') throw new HttpError(400, 'bad_request', `text must be 1-${core.config.maxTextChars} characters`);
  const handle = body.handle ?? 'api';
  const id = body.id ?? `api-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
  // marked as the API's (from.kind), so a back end is never taken for a user's handle
  const r = await core.publish({ room, id, kind, text: body.text, from: { user: `api:${handle}`, handle, node: core.config.node, region: core.config.region, kind: 'api' } });
  json(res, r.duplicate ? 200 : 201, { room, id, offset: r.message.offset, epoch: r.message.epoch, dup: r.duplicate });
}

/**
 * The page's headers: with CONFAB_PUBLIC_URLS, the CSP's connect-src also names those entry points'
 * http(s) origins, so the client's readiness probe (GET /readyz) may reach the other regions.
 */
/** The page origins (http/https) of WebSocket entry points (ws/wss URLs), without repeats. */
export function pageOrigins(wsUrls: readonly string[]): string[] {
  return [...new Set(wsUrls.map((u) => new URL(u)).map((u) => `${u.protocol === 'wss:' ? 'https:' : 'http:'}//${u.host}`))];
}

export function pageHeaders(publicUrls: readonly string[]): Record<string, string> {
  const origins = pageOrigins(publicUrls);
  if (origins.length === 0) return SECURITY_HEADERS;
  const csp = SECURITY_HEADERS['content-security-policy']!.replace("connect-src 'self' ws: wss:", `connect-src 'self' ws: wss: ${origins.join(' ')}`);
  return { ...SECURITY_HEADERS, 'content-security-policy': csp };
}

async function serveStatic(res: ServerResponse, urlPath: string, headers: Record<string, string> = SECURITY_HEADERS): Promise<void> {
  const rel = urlPath === '/' ? '/index.html' : urlPath;
  const file = normalize(join(WEB_ROOT, decodeURIComponent(rel)));
  if (!file.startsWith(WEB_ROOT + '/')) throw new HttpError(404, 'not_found', 'not found');
  let data: Buffer;
  try {
    data = await readFile(file);
  } catch {
    throw new HttpError(404, 'not_found', urlPath === '/' ? 'web client not built: run npm run build' : 'not found');
  }
  res.writeHead(200, {
    ...headers,
    'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
    'content-length': data.length,
    // the page and the service worker are revalidated on every load, so a deploy reaches every tab
    'cache-control': extname(file) === '.html' || rel === '/sw.js' ? 'no-cache' : 'public, max-age=300',
  });
  res.end(data);
}

/** HTTP status of a typed error from the publish path: 503 = nothing stored, retry (same `id`); 409 = the `id` names another message. */
const CONFAB_ERROR_STATUS: Partial<Record<ConfabError['code'], number>> = { bus_unavailable: 503, store_failed: 503, duplicate_id_conflict: 409 };

export function createRequestHandler(core: Core): (req: IncomingMessage, res: ServerResponse) => void {
  const page = pageHeaders(core.config.publicUrls ?? []);
  return (req, res) => {
    void route(core, req, res, page).catch((err: unknown) => {
      if (err instanceof HttpError) return json(res, err.status, { code: err.code, message: err.message });
      if (err instanceof URIError) {
        // a malformed percent-encoding in the path (GET /%): the client's mistake, one quiet line
        core.log.debug({ url: req.url }, 'malformed URL');
        return json(res, 400, { code: 'bad_request', message: 'malformed URL encoding' });
      }
      if (err instanceof ConfabError) return json(res, CONFAB_ERROR_STATUS[err.code] ?? 500, { code: err.code, message: err.message });
      core.log.error({ err, url: req.url }, 'request failed');
      if (!res.headersSent) json(res, 500, { code: 'internal', message: 'internal error' });
    });
  };
}

async function route(core: Core, req: IncomingMessage, res: ServerResponse, page: Record<string, string>): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://x');
  const path = url.pathname;
  const method = req.method ?? 'GET';
  if (path === '/healthz') return json(res, 200, { status: 'ok', node: core.config.node, region: core.config.region });
  if (path === '/readyz') {
    // a bus that says "up" but does not bring this node's own heartbeats back (a frozen broker) is not ready either
    const busWorks = core.bus.status === 'up' && !core.presence.isStale;
    const ready = !core.draining && busWorks;
    res.setHeader('access-control-allow-origin', '*'); // the client SDK probes it from pages of any region
    return json(res, ready ? 200 : 503, { ready, draining: core.draining, bus: busWorks ? 'up' : 'down', node: core.config.node });
  }
  if (path === '/metrics') {
    if (core.config.metricsPort !== undefined) throw new HttpError(404, 'not_found', 'metrics are served on CONFAB_METRICS_PORT');
    return serveMetrics(core, req, res);
  }
  if (path === '/api/session' && method === 'POST') {
    const body = parse(SessionBody, await readJson(req));
    if (!HANDLE_RE.test(body.handle)) throw new HttpError(400, 'bad_handle', 'handles are 2-24 letters, digits, _ . - starting with a letter or digit');
    const r = await core.auth.issue(body.handle, body.token);
    if ('ok' in r) throw new HttpError(r.status, r.code, r.message);
    const { token, session } = r;
    return json(res, 200, {
      token,
      user: { id: session.id, handle: session.handle },
      expiresAt: session.exp * 1000,
      /** When renewals of this session end (sign in again then), ms. */
      maxExpiresAt: core.auth.signer.chainEnd(session.orig) * 1000,
      perms: core.auth.perms(session),
    });
  }
  if (path === '/api/session' && method === 'DELETE') {
    // sign-out: the token in Authorization: Bearer (or a JSON body {"token"})
    let token = bearer(req) || undefined;
    if (!token && (req.headers['content-type'] ?? '').startsWith('application/json')) token = parse(SignOutBody, await readJson(req)).token;
    const r = await core.auth.signOut(token);
    if (!r.ok) throw new HttpError(r.status, r.code, r.message);
    res.writeHead(204, { ...SECURITY_HEADERS, 'cache-control': 'no-store' });
    return void res.end();
  }
  if (path === '/api/config' && (method === 'GET' || method === 'HEAD')) return json(res, 200, { urls: core.config.publicUrls ?? [] });
  if (path === '/api/alerts' && method === 'POST') return publishApi(core, req, res, ALERTS_ROOM, 'alert');
  const m = /^\/api\/rooms\/([^/]+)\/messages$/.exec(path);
  if (m && method === 'POST') {
    const room = decodeURIComponent(m[1]!);
    if (!ROOM_RE.test(room)) throw new HttpError(400, 'bad_room', 'invalid room name');
    return publishApi(core, req, res, room, 'msg');
  }
  if (path.startsWith('/api/')) throw new HttpError(404, 'not_found', 'no such endpoint');
  if (method !== 'GET' && method !== 'HEAD') throw new HttpError(405, 'method_not_allowed', 'method not allowed');
  return serveStatic(res, path, page);
}
