/**
 * Admission of a connection, whatever its transport: the Origin allow-list, draining, the session
 * token, the node's and the address's socket budgets (edge.ts) and the user's sockets per node
 * (user-limits.ts). The WebSocket upgrade (index.ts) and the HTTP fallback stream (fallback.ts)
 * both go through `admit` and `openConnection`, so neither opens a way around the other's checks.
 */
import type { IncomingMessage } from 'node:http';
import type { Config } from '../config/config.js';
import type { Session } from '../auth/tokens.js';
import { SocketSession } from '../auth/socket.js';
import { TrustedProxies } from './address.js';
import { Connection } from './connection.js';
import type { Core } from './core.js';
import type { EdgeBudget } from './edge.js';
import { pageOrigins } from './http.js';
import type { FrameTransport } from './transport.js';

const originsCache = new WeakMap<Config, Set<string>>();
/** The page origins (http/https) of CONFAB_PUBLIC_URLS (ws/wss). */
function publicOrigins(config: Config): Set<string> {
  let o = originsCache.get(config);
  if (!o) {
    o = new Set(pageOrigins(config.publicUrls));
    originsCache.set(config, o);
  }
  return o;
}

/** Page hosts a gateway without configured origins accepts: the machine's own (a local demo). */
const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * The Origin check. Compared with the configured origins (CONFAB_ALLOWED_ORIGINS, the page
 * origins of CONFAB_PUBLIC_URLS), never with the request's own `Host` header: a DNS-rebinding
 * page (`Origin: http://evil.example`, `Host: evil.example`, resolved to this server) would pass
 * that. With nothing configured, only pages served from a loopback host are allowed.
 */
export function originAllowed(config: Config, req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true; // non-browser clients send no Origin
  if (config.allowedOrigins.includes('*') || config.allowedOrigins.includes(origin)) return true;
  // the pages of this deployment's other entry points (CONFAB_PUBLIC_URLS) may move their users here
  if (publicOrigins(config).has(origin)) return true;
  if (config.allowedOrigins.length > 0 || config.publicUrls.length > 0) return false;
  try {
    const u = new URL(origin);
    return (u.protocol === 'http:' || u.protocol === 'https:') && LOOPBACK_HOSTS.has(u.hostname);
  } catch {
    return false;
  }
}

const proxiesCache = new WeakMap<Config, TrustedProxies>();
export function proxiesOf(config: Config): TrustedProxies {
  let p = proxiesCache.get(config);
  if (!p) {
    p = new TrustedProxies(config.trustedProxies, config.clientIpHeader);
    proxiesCache.set(config, p);
  }
  return p;
}

/**
 * The client's address: the peer, or, when the peer is a trusted proxy (CONFAB_TRUSTED_PROXIES,
 * CIDR ranges), the address its header (CONFAB_CLIENT_IP_HEADER) names; see address.ts.
 */
export function clientIp(config: Config, req: IncomingMessage): string {
  return proxiesOf(config).clientIp(req.socket.remoteAddress, req.headers);
}

/** `?echo=0`: the connection is not sent its own live messages (its acks carry prev and ts instead). */
export function echoOf(req: IncomingMessage): boolean {
  return new URL(req.url ?? '/', 'http://x').searchParams.get('echo') !== '0';
}

/** The session token: `Authorization: Bearer <token>`, else `?token=`. */
export function tokenOf(req: IncomingMessage): string | undefined {
  const auth = req.headers.authorization;
  if (auth?.startsWith('Bearer ')) return auth.slice(7).trim();
  return new URL(req.url ?? '/', 'http://x').searchParams.get('token') ?? undefined;
}

/** A refusal: the HTTP status and the JSON body's code and message. */
export interface Refusal {
  ok: false;
  status: number;
  code: string;
  message: string;
}

/** An admitted client: its session and address, and its socket slot (released exactly once when the connection ends). */
export interface Admitted {
  ok: true;
  session: Session;
  ip: string;
  release(): void;
}

export interface AdmitContext {
  core: Core;
  edge: EdgeBudget;
  /** False once a drain stopped accepting. */
  accepting(): boolean;
  /** Every open connection of the node (drain, keepalive, revocation). */
  conns: Set<Connection>;
}

const no = (status: number, code: string, message: string): Refusal => ({ ok: false, status, code, message });

/** The checks done before the request's own work (an upgrade or a fallback stream): the Origin and draining. */
export function precheck(ctx: AdmitContext, req: IncomingMessage): Refusal | undefined {
  if (!ctx.accepting()) return no(503, 'draining', 'node is draining');
  if (!originAllowed(ctx.core.config, req)) return no(403, 'forbidden_origin', 'origin not allowed');
  return undefined;
}

/** Authenticate the request's token and take a socket slot of the node, the address and the user. */
export async function admit(ctx: AdmitContext, req: IncomingMessage): Promise<Admitted | Refusal> {
  const { core, edge } = ctx;
  const config = core.config;
  const ip = clientIp(config, req);
  const r = await core.auth.authenticate(tokenOf(req));
  if (!r.ok) return no(r.status, r.code, r.message);
  if (!ctx.accepting()) return no(503, 'draining', 'node is draining');
  const session = r.session;
  const slot = edge.acquireSocket(ip);
  if ('refused' in slot) {
    return slot.refused === 'node_full'
      ? no(503, 'node_full', 'this node holds its maximum of WebSockets; try another or later')
      : no(429, 'too_many_connections', 'too many connections from this address');
  }
  if (!core.users.openSocket(session.id)) {
    slot.release();
    core.metrics.refusals.inc({ code: 'too_many_sockets', what: 'ws' });
    return no(429, 'too_many_sockets', `at most ${config.maxSocketsPerUser} sockets per user across the nodes`);
  }
  let released = false;
  return {
    ok: true,
    session,
    ip,
    release: () => {
      if (released) return;
      released = true;
      slot.release();
      core.users.closeSocket(session.id);
    },
  };
}

/** Open the connection of an admitted client over `transport` and send its `welcome`. */
export function openConnection(ctx: AdmitContext, a: Admitted, transport: FrameTransport, echo: boolean): Connection {
  const { core, conns } = ctx;
  const conn = new Connection(core, transport, { id: a.session.id, handle: a.session.handle }, a.ip, (c) => {
    if (conns.delete(c)) {
      a.release();
      core.metrics.connections--;
      if (transport.kind === 'fallback') core.metrics.fallbackConnections--;
    }
  }, echo);
  conn.auth = new SocketSession(a.session, core.auth, conn);
  conns.add(conn);
  core.metrics.connections++;
  if (transport.kind === 'fallback') core.metrics.fallbackConnections++;
  conn.start();
  return conn;
}
