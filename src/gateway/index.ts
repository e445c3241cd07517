/**
 * The gateway: one HTTP server for the web client, health, metrics, the publish
 * API and the WebSocket upgrade (authenticated in the `upgrade` handler), over a
 * Bus and a History. `startGateway` returns once it listens; `drain` is the
 * graceful shutdown (G5); `close` stops at once.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import { WebSocketServer } from 'ws';
import type { Bus } from '../bus/types.js';
import type { Config } from '../config/config.js';
import type { History } from '../history/types.js';
import { SUBPROTOCOL } from '../protocol/frames.js';
import { Connection } from './connection.js';
import { Core } from './core.js';
import { createRequestHandler, pageOrigins, serveMetrics } from './http.js';
import { TrustedProxies } from './address.js';
import { EdgeBudget, edgeDefaults } from './edge.js';
import { loadOrCreateSecret } from '../auth/secrets.js';
import { SocketSession } from '../auth/socket.js';
import { textFrame } from './wire.js';

export { Core, VERSION } from './core.js';

export interface GatewayDeps {
  config: Config;
  bus: Bus;
  history: History;
  logger?: Logger;
}

export interface Gateway {
  readonly url: string;
  readonly port: number;
  readonly node: string;
  readonly core: Core;
  readonly server: Server;
  /** Port of CONFAB_METRICS_PORT's listener, when set. */
  readonly metricsPort: number | undefined;
  /** Open connections on this node. */
  connectionCount(): number;
  /** Graceful drain (G5): fail readiness, stop accepting, move clients over the drain window, finish publishes, release the bus. */
  drain(): Promise<void>;
  /** Stop at once: close sockets, server, bus and history. */
  close(): Promise<void>;
}

function rejectUpgrade(socket: Duplex, status: number, code: string, message: string): void {
  const body = JSON.stringify({ code, message });
  const reason = { 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 409: 'Conflict', 429: 'Too Many Requests', 503: 'Service Unavailable' }[status] ?? 'Error';
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
}

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
function proxiesOf(config: Config): TrustedProxies {
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

/** `/ws?echo=0`: the connection is not sent its own live messages (its acks carry prev and ts instead). */
function echoOf(req: IncomingMessage): boolean {
  return new URL(req.url ?? '/', 'http://x').searchParams.get('echo') !== '0';
}

function tokenOf(req: IncomingMessage): string | undefined {
  const auth = req.headers.authorization;
  if (auth?.startsWith('Bearer ')) return auth.slice(7).trim();
  return new URL(req.url ?? '/', 'http://x').searchParams.get('token') ?? undefined;
}

export async function startGateway(deps: GatewayDeps): Promise<Gateway> {
  const { config, bus, history } = deps;
  const log = deps.logger ?? pino({ level: config.logLevel }).child({ node: config.node, region: config.region });
  const core = new Core(config, bus, history, log, loadOrCreateSecret(config.secret, config.dataDir, config.secretFile));
  const conns = new Set<Connection>();
  /** False once a drain has given the load balancer its time to notice (/readyz fails before this). */
  let accepting = true;
  const proxies = proxiesOf(config);
  const edge = new EdgeBudget({
    maxHttpConnections: config.maxHttpConnections,
    maxHttpPerIp: config.maxHttpPerIp,
    maxSockets: config.maxSockets,
    maxSocketsPerIp: config.maxConnPerIp,
    proxies,
    onRefused: (code, what) => core.metrics.refusals.inc({ code, what }),
  });
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: config.maxFrameBytes,
    perMessageDeflate: false,
    handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
  });
  const server = createServer(
    {
      maxHeaderSize: config.maxHeaderBytes,
      headersTimeout: config.headersTimeoutMs,
      requestTimeout: config.headersTimeoutMs * 3,
      keepAliveTimeout: 5000,
      connectionsCheckingInterval: Math.max(100, Math.min(5000, Math.floor(config.headersTimeoutMs / 2))),
    },
    ((handler) => (req: IncomingMessage, res: ServerResponse) => {
      if (!edge.answerRefused(req, res)) handler(req, res);
    })(createRequestHandler(core)),
  );
  const fd = edgeDefaults();
  // past the budget plus a quarter of the headroom, new connections are dropped at accept (no answer, no descriptor kept)
  edge.attach(server, config.maxHttpConnections + (fd.hardMax - fd.maxHttpConnections));
  if (config.maxHttpConnections > fd.maxHttpConnections) {
    log.warn({ maxHttpConnections: config.maxHttpConnections, openFiles: fd.fdLimit, safe: fd.maxHttpConnections }, 'CONFAB_MAX_HTTP_CONNECTIONS leaves less headroom than the open-files limit needs: raise ulimit -n');
  }

  server.on('upgrade', (req, socket, head) => {
    socket.on('error', () => socket.destroy());
    const ip = clientIp(config, req);
    if (edge.refusalOf(req.socket)) return void socket.destroy(); // answered 503/429 at accept
    if (!accepting) return rejectUpgrade(socket, 503, 'draining', 'node is draining');
    if (new URL(req.url ?? '/', 'http://x').pathname !== '/ws') return rejectUpgrade(socket, 404, 'not_found', 'WebSocket endpoint is /ws');
    if (!originAllowed(config, req)) return rejectUpgrade(socket, 403, 'forbidden_origin', 'origin not allowed');
    const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((s) => s.trim());
    if (!offered.includes(SUBPROTOCOL)) return rejectUpgrade(socket, 400, 'protocol_violation', `offer the subprotocol ${SUBPROTOCOL}`);
    void (async () => {
      const r = await core.auth.authenticate(tokenOf(req));
      if (socket.destroyed) return;
      if (!r.ok) return rejectUpgrade(socket, r.status, r.code, r.message);
      if (!accepting) return rejectUpgrade(socket, 503, 'draining', 'node is draining');
      const session = r.session;
      const slot = edge.acquireSocket(ip);
      if ('refused' in slot) {
        return slot.refused === 'node_full'
          ? rejectUpgrade(socket, 503, 'node_full', 'this node holds its maximum of WebSockets; try another or later')
          : rejectUpgrade(socket, 429, 'too_many_connections', 'too many connections from this address');
      }
      if (!core.users.openSocket(session.id)) {
        slot.release();
        core.metrics.refusals.inc({ code: 'too_many_sockets', what: 'ws' });
        return rejectUpgrade(socket, 429, 'too_many_sockets', `at most ${config.maxSocketsPerUser} sockets per user on this node`);
      }
      edge.upgraded(req.socket);
      wss.handleUpgrade(req, socket, head, (ws) => {
        const conn = new Connection(core, ws, { id: session.id, handle: session.handle }, ip, (c) => {
          if (conns.delete(c)) {
            slot.release();
            core.users.closeSocket(session.id);
            core.metrics.connections--;
          }
        }, echoOf(req));
        conn.auth = new SocketSession(session, core.auth, conn);
        conns.add(conn);
        core.metrics.connections++;
        conn.start();
      });
    })().catch((err: unknown) => {
      log.error({ err }, 'upgrade failed');
      if (!socket.destroyed) rejectUpgrade(socket, 503, 'internal', 'internal error');
    });
  });
  // a signed-out (or replaced) session's sockets close on every node
  const offRevoked = core.auth.onRevoked((sid, why) => {
    for (const c of conns) if (c.auth?.sid === sid) c.close(why === 'replaced' ? 'replaced' : 'session_revoked');
  });
  // /metrics on its own port (CONFAB_METRICS_PORT): not reachable where the public port is
  let metricsServer: Server | undefined;
  if (config.metricsPort !== undefined) {
    const ms = createServer((req, res) => {
      if (new URL(req.url ?? '/', 'http://x').pathname !== '/metrics') {
        res.writeHead(404, { 'content-type': 'application/json' });
        return void res.end('{"code":"not_found","message":"only /metrics here"}');
      }
      serveMetrics(core, req, res).catch((err: unknown) => {
        log.error({ err }, 'metrics failed');
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
    });
    metricsServer = ms;
    await new Promise<void>((resolveListen, reject) => {
      ms.once('error', reject);
      ms.listen({ port: config.metricsPort, host: config.metricsHost }, () => {
        ms.off('error', reject);
        resolveListen();
      });
    });
  }
  server.on('clientError', (err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
    log.debug({ err: (err as Error).message }, 'client error');
  });

  // keepalive: WebSocket pings, never broadcast; a peer without a pong within the timeout is cut off
  const sweep = () => {
    // closed with 4002: a peer that still reads (it only stopped answering) sees the code; a dead path sees nothing
    for (const c of conns) if (!c.alive) c.close('ping_timeout');
  };
  let sweepTimer: ReturnType<typeof setTimeout> | undefined;
  const pinger = setInterval(() => {
    for (const c of conns) {
      c.alive = false;
      c.ws.ping();
    }
    sweepTimer = setTimeout(sweep, config.pingTimeoutMs);
    sweepTimer.unref();
  }, config.pingIntervalMs);
  pinger.unref();

  const offStatus = bus.onStatus((s) => {
    log.warn({ bus: s }, s === 'up' ? 'bus is back' : 'bus is down: publishes are rejected until it returns');
    const frame = textFrame(JSON.stringify({ t: 'status', bus: s }));
    for (const c of conns) c.sendFramed(frame);
    if (s === 'up') core.hub.catchUp();
    else core.hub.busDown();
  });
  core.presence.start();
  await core.auth.start();
  core.users.start();

  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    // a deep accept queue: a reconnect storm must not overflow it into SYN retries (capped by net.core.somaxconn)
    server.listen({ port: config.port, host: config.host, backlog: 4096 }, () => {
      server.off('error', reject);
      resolveListen();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const shownHost = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `http://${shownHost}:${port}`;
  log.info({ url, bus: bus.kind, history: history.kind }, 'gateway listening');

  let stopped: Promise<void> | undefined;
  const release = async () => {
    clearInterval(pinger);
    if (sweepTimer) clearTimeout(sweepTimer);
    offStatus();
    offRevoked();
    core.auth.stop();
    metricsServer?.close();
    metricsServer?.closeAllConnections();
    core.presence.stop();
    core.users.stop();
    core.hub.close();
    await new Promise<void>((r) => server.close(() => r()));
    wss.close();
    await bus.close();
    await history.close();
  };

  return {
    url,
    port,
    node: config.node,
    core,
    server,
    metricsPort: metricsServer ? (metricsServer.address() as AddressInfo).port : undefined,
    connectionCount: () => conns.size,
    drain() {
      stopped ??= (async () => {
        core.draining = true;
        log.info({ connections: conns.size }, 'draining: readiness fails now');
        // upgrades are still accepted while the load balancer notices the failing readiness: refusing them now
        // would answer 503 to clients it still sends here
        if (config.drainReadyDelayMs > 0) await new Promise((r) => setTimeout(r, config.drainReadyDelayMs));
        accepting = false;
        server.close();
        server.closeIdleConnections();
        const all = [...conns];
        await Promise.all(
          all.map(async (c) => {
            const at = Math.random() * config.drainWindowMs;
            await new Promise((r) => setTimeout(r, at));
            await c.drainClose(Math.floor(Math.random() * 1000));
          }),
        );
        await core.whenIdle();
        log.info('drained: releasing bus subscriptions and history');
        await release();
      })();
      return stopped;
    },
    close() {
      stopped ??= (async () => {
        core.draining = true;
        accepting = false;
        for (const c of [...conns]) c.terminate();
        server.closeAllConnections();
        await release();
      })();
      return stopped;
    },
  };
}
