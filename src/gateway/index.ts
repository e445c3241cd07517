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
import type { Connection } from './connection.js';
import { Core } from './core.js';
import { createRequestHandler, serveMetrics } from './http.js';
import { EdgeBudget, edgeDefaults } from './edge.js';
import { loadOrCreateSecret } from '../auth/secrets.js';
import { textFrame } from './wire.js';
import { admit, echoOf, openConnection, precheck, proxiesOf, type AdmitContext } from './admit.js';
import { WsTransport } from './transport.js';
import { FallbackSessions } from './fallback.js';

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

export { originAllowed, clientIp } from './admit.js';

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
  const ctx: AdmitContext = { core, edge, accepting: () => accepting, conns };
  const fallback = new FallbackSessions(ctx);
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
      if (!edge.answerRefused(req, res) && !fallback.handle(req, res)) handler(req, res);
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
    if (edge.refusalOf(req.socket)) return void socket.destroy(); // answered 503/429 at accept
    if (!accepting) return rejectUpgrade(socket, 503, 'draining', 'node is draining');
    if (new URL(req.url ?? '/', 'http://x').pathname !== '/ws') return rejectUpgrade(socket, 404, 'not_found', 'WebSocket endpoint is /ws');
    const pre = precheck(ctx, req);
    if (pre) return rejectUpgrade(socket, pre.status, pre.code, pre.message);
    const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((s) => s.trim());
    if (!offered.includes(SUBPROTOCOL)) return rejectUpgrade(socket, 400, 'protocol_violation', `offer the subprotocol ${SUBPROTOCOL}`);
    void (async () => {
      const a = await admit(ctx, req);
      if (socket.destroyed) {
        if (a.ok) a.release();
        return;
      }
      if (!a.ok) return rejectUpgrade(socket, a.status, a.code, a.message);
      edge.upgraded(req.socket);
      wss.handleUpgrade(req, socket, head, (ws) => openConnection(ctx, a, new WsTransport(ws), echoOf(req)));
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
      c.transport.ping();
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
