/**
 * The HTTP fallback (issue 14) for clients whose network refuses WebSocket upgrades: one endpoint,
 * `/fallback`.
 *
 *   GET  /fallback[?token=…&echo=0]   opens a session: a Server-Sent Events stream of confab.v1 frames
 *                                     (fallback-transport.ts); its first event names the session (`sid`)
 *                                     and its POST key.
 *   POST /fallback?sid=SID            client frames, one JSON frame per line; header `X-Confab-Key: KEY`.
 *                                     Answered 204 once handed to the connection; the answers come on the stream.
 *   OPTIONS /fallback                 CORS preflight for the allowed origins.
 *
 * A session is a Connection (connection.ts) like a WebSocket's: the same admission (admit.ts: Origin,
 * token, node/address/user socket budgets), limits (frame size, rate, flood, rooms, send buffer),
 * acks, resume, drain and keepalive. The stream is the connection: when it ends, the session is gone.
 * A POST must reach the node holding the stream: the response header `X-Confab-Sid` lets a load
 * balancer learn the session (deploy/haproxy.cfg sticks on it); the sid starts with the node id, and a
 * POST that reaches another node is answered 404 with `Fly-Replay: instance=<node>` (Fly's proxy
 * replays it on the right machine).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ErrorCodes } from '../protocol/codes.js';
import type { Connection } from './connection.js';
import { admit, echoOf, openConnection, originAllowed, precheck, type AdmitContext } from './admit.js';
import { SseTransport } from './fallback-transport.js';
import { SECURITY_HEADERS } from './http.js';

export const FALLBACK_PATH = '/fallback';
/** A POST body holds at most this many frames' worth of bytes (each line at most CONFAB_MAX_FRAME_BYTES). */
export const FRAMES_PER_POST = 16;

interface FallbackSession {
  conn: Connection;
  transport: SseTransport;
  key: Buffer;
}

/** A node id as it may appear in a sid (and a Fly-Replay header). */
function nodeTag(node: string): string {
  return node.replace(/[^A-Za-z0-9_-]/g, '').slice(0, 64) || 'node';
}

export class FallbackSessions {
  private readonly sessions = new Map<string, FallbackSession>();
  private readonly tag: string;

  constructor(private readonly ctx: AdmitContext) {
    this.tag = nodeTag(ctx.core.config.node);
  }

  get size(): number {
    return this.sessions.size;
  }

  /** Handle the request when it is the fallback's; false otherwise (the normal routes answer it). */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== FALLBACK_PATH) return false;
    const method = req.method ?? 'GET';
    if (method === 'OPTIONS') this.preflight(req, res);
    else if (method === 'GET') void this.stream(req, res).catch((err: unknown) => this.failed(req, res, err));
    else if (method === 'POST') void this.post(req, res, url).catch((err: unknown) => this.failed(req, res, err));
    else this.answer(req, res, 405, { code: 'method_not_allowed', message: 'GET opens a fallback stream, POST sends frames' });
    return true;
  }

  private failed(req: IncomingMessage, res: ServerResponse, err: unknown): void {
    this.ctx.core.log.error({ err }, 'fallback request failed');
    if (!res.headersSent) this.answer(req, res, 500, { code: 'internal', message: 'internal error' });
    else res.destroy();
  }

  /** CORS for an allowed cross-origin page (a page of another entry point of this deployment). */
  private cors(req: IncomingMessage): Record<string, string> {
    const origin = req.headers.origin;
    if (origin === undefined || !originAllowed(this.ctx.core.config, req)) return {};
    return { 'access-control-allow-origin': origin, vary: 'origin', 'access-control-expose-headers': 'x-confab-sid' };
  }

  private answer(req: IncomingMessage, res: ServerResponse, status: number, body?: { code: string; message: string }, extra: Record<string, string> = {}): void {
    const data = body ? JSON.stringify(body) : '';
    res.writeHead(status, {
      ...SECURITY_HEADERS,
      ...this.cors(req),
      ...extra,
      'cache-control': 'no-store',
      ...(body ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(data)) } : {}),
    });
    res.end(data);
  }

  private preflight(req: IncomingMessage, res: ServerResponse): void {
    if (!originAllowed(this.ctx.core.config, req)) return this.answer(req, res, 403, { code: 'forbidden_origin', message: 'origin not allowed' });
    this.answer(req, res, 204, undefined, {
      'access-control-allow-methods': 'GET, POST',
      'access-control-allow-headers': 'authorization, content-type, x-confab-key',
      'access-control-max-age': '600',
    });
  }

  private async stream(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const ctx = this.ctx;
    const pre = precheck(ctx, req);
    if (pre) return this.answer(req, res, pre.status, { code: pre.code, message: pre.message });
    const a = await admit(ctx, req);
    if (!a.ok) return this.answer(req, res, a.status, { code: a.code, message: a.message });
    if (res.destroyed || req.socket.destroyed) return a.release();
    // the connection is a client's socket now (counted per client address by `admit`), no longer a plain-HTTP one
    ctx.edge.upgraded(req.socket);
    req.socket.setTimeout(0);
    req.socket.setNoDelay(true);
    const sid = `${this.tag}.${randomBytes(16).toString('base64url')}`;
    const key = randomBytes(24).toString('base64url');
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      ...this.cors(req),
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store, no-transform',
      'x-accel-buffering': 'no',
      'x-confab-sid': sid,
    });
    const transport = new SseTransport(req, res);
    transport.open({ sid, key });
    const conn = openConnection(ctx, a, transport, echoOf(req));
    this.sessions.set(sid, { conn, transport, key: Buffer.from(key) });
    res.once('close', () => this.sessions.delete(sid));
  }

  /** The session a POST names, when its key is right (a wrong key is answered like an unknown session). */
  private lookup(req: IncomingMessage, sid: string | null): FallbackSession | undefined {
    if (!sid) return undefined;
    const s = this.sessions.get(sid);
    const got = req.headers['x-confab-key'];
    if (!s || typeof got !== 'string') return undefined;
    const g = Buffer.from(got);
    return g.length === s.key.length && timingSafeEqual(g, s.key) && !s.conn.gone ? s : undefined;
  }

  private async post(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const config = this.ctx.core.config;
    if (!originAllowed(config, req)) return this.answer(req, res, 403, { code: 'forbidden_origin', message: 'origin not allowed' });
    const sid = url.searchParams.get('sid');
    const s = this.lookup(req, sid);
    if (!s) {
      const owner = sid?.split('.')[0];
      // on Fly, the proxy replays the POST on the machine that holds the stream
      const replay: Record<string, string> = owner && owner !== this.tag && /^[A-Za-z0-9_-]{1,64}$/.test(owner) ? { 'fly-replay': `instance=${owner}` } : {};
      req.resume();
      return this.answer(req, res, 404, { code: 'unknown_session', message: 'no open fallback session with that sid and key on this node; open a new stream' }, replay);
    }
    s.transport.touch();
    const cap = config.maxFrameBytes * FRAMES_PER_POST;
    const tooLarge = () => {
      // as a WebSocket frame over the limit closes its socket (1009, empty reason: the WebSocket layer's close),
      // so does a POST over it its session
      this.answer(req, res, 413, { code: 'too_large', message: `a POST holds at most ${cap} bytes, each frame at most ${config.maxFrameBytes}` }, { connection: 'close' });
      this.ctx.core.metrics.closes.inc({ code: 'too_large' });
      s.transport.drop();
      s.transport.close(ErrorCodes.too_large.close ?? 1009, '', 2000); // the stream's end closes the connection
    };
    if (Number(req.headers['content-length'] ?? 0) > cap) return tooLarge();
    const body = await readCapped(req, cap);
    if (body === null) return; // cut off mid-body: nothing of it is delivered (a resend is deduplicated by id)
    if (body === undefined) return tooLarge();
    const lines = body.toString('utf8').split('\n');
    if (lines.some((l) => Buffer.byteLength(l) > config.maxFrameBytes)) return tooLarge();
    for (const line of lines) {
      const text = line.endsWith('\r') ? line.slice(0, -1) : line;
      if (text.trim() === '') continue;
      if (s.conn.gone) break;
      s.transport.receive(text);
    }
    if (s.conn.gone) return this.answer(req, res, 410, { code: 'closed', message: 'the session closed; its stream carries the reason' });
    this.answer(req, res, 204);
  }
}

/** The request body; undefined past `cap` bytes (the rest is not read: the answer closes the connection); null when the client went away mid-body. */
function readCapped(req: IncomingMessage, cap: number): Promise<Buffer | undefined | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > cap) {
        req.off('data', onData);
        req.pause();
        return resolve(undefined);
      }
      chunks.push(c);
    };
    req.on('data', onData);
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', reject);
    req.once('close', () => resolve(null)); // after 'end' this changes nothing
  });
}
