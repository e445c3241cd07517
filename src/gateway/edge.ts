/**
 * The edge budget (G11): how many TCP connections and WebSockets this node holds, in total and per
 * client address, refused with a clear answer (503 or 429 and a close) well before the process runs
 * out of file descriptors: past that point every accept fails and even health checks die with
 * ECONNRESET. The defaults derive from the open-files limit (/proc/self/limits; Node has no
 * getrlimit), keeping headroom for the bus, history files and logs.
 */
import { readdirSync, readFileSync } from 'node:fs';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { addressKey, type TrustedProxies } from './address.js';

/** The soft open-files limit of this process, or undefined when it cannot be read (not Linux) or is unlimited. */
export function openFilesLimit(text?: string): number | undefined {
  let t = text;
  if (t === undefined) {
    try {
      t = readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return undefined;
    }
  }
  const m = /^Max open files\s+(\S+)/m.exec(t);
  if (!m || m[1] === 'unlimited') return undefined;
  const n = Number(m[1]);
  return Number.isFinite(n) && n > 0 ? n : undefined;
}

/** File descriptors kept free of client connections: for the bus, history, logs and the refusals themselves. */
export function fdHeadroom(fdLimit: number): number {
  return Math.max(64, Math.ceil(fdLimit * 0.1));
}

/** When the open-files limit cannot be read. */
const FALLBACK_FD_LIMIT = 1024;

/** Descriptors this process holds now (stdio, event loop, pipes): not available to connections. */
export function openDescriptors(): number {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return 32;
  }
}

/**
 * Default budgets from the open-files limit: HTTP connections (of every kind, WebSockets included)
 * = limit - what the process already holds - headroom; WebSockets = that minus a share kept for
 * plain HTTP (health checks, sessions, the page) so a node full of sockets still answers /readyz.
 * `hardMax`: past it, new connections are dropped at accept without an answer (a quarter of the
 * headroom above the budget holds the refusals in flight).
 */
export function edgeDefaults(fdLimit = openFilesLimit() ?? FALLBACK_FD_LIMIT, held = openDescriptors()): { fdLimit: number; maxHttpConnections: number; maxSockets: number; hardMax: number } {
  const headroom = fdHeadroom(fdLimit);
  const maxHttpConnections = Math.max(16, fdLimit - held - headroom);
  const maxSockets = Math.max(8, maxHttpConnections - Math.max(16, Math.ceil(maxHttpConnections * 0.05)));
  return { fdLimit, maxHttpConnections, maxSockets, hardMax: maxHttpConnections + Math.ceil(headroom / 4) };
}

/** Counts per key, refusing past `max`. */
export class KeyedCounter {
  private readonly counts = new Map<string, number>();
  constructor(readonly max: number) {}
  tryAcquire(key: string): boolean {
    const n = this.counts.get(key) ?? 0;
    if (n >= this.max) return false;
    this.counts.set(key, n + 1);
    return true;
  }
  release(key: string): void {
    const n = (this.counts.get(key) ?? 0) - 1;
    if (n <= 0) this.counts.delete(key);
    else this.counts.set(key, n);
  }
  get(key: string): number {
    return this.counts.get(key) ?? 0;
  }
  get keys(): number {
    return this.counts.size;
  }
}

export interface EdgeOptions {
  maxHttpConnections: number;
  maxHttpPerIp: number;
  maxSockets: number;
  maxSocketsPerIp: number;
  proxies: TrustedProxies;
  /** Called for each refusal (metrics); `code` is the JSON body's code. */
  onRefused?(code: 'node_full' | 'too_many_connections', what: 'http' | 'ws'): void;
}

/** A refused connection: its status, code and message, answered to its first request. */
interface Refusal {
  status: 503 | 429;
  code: 'node_full' | 'too_many_connections';
  message: string;
}

/** A refused connection is cut this long after its answer (when its peer has not closed it first). */
const REFUSED_LINGER_MS = 1000;

function refusalText(r: Refusal): string {
  const body = JSON.stringify({ code: r.code, message: r.message });
  const reason = r.status === 503 ? 'Service Unavailable' : 'Too Many Requests';
  return `HTTP/1.1 ${r.status} ${reason}\r\nConnection: close\r\nRetry-After: ${r.status === 503 ? 5 : 10}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

/**
 * Accounting of every TCP connection the HTTP server accepts (`attach`) and of every WebSocket
 * (`acquireSocket`). A connection over the node budget is answered 503 (`node_full`) at once, before
 * it sends anything, and closed; one over its address's budget of not-upgraded connections (peer
 * address, grouped per /64; trusted proxies are exempt here, their clients are counted per forwarded
 * address by `acquireSocket`) 429 (`too_many_connections`). A refused connection is cut
 * REFUSED_LINGER_MS after its answer at the latest; past the budget plus a quarter of the headroom
 * the server drops new connections at accept (`server.maxConnections`), so descriptors never run out.
 */
export class EdgeBudget {
  private http = 0;
  private sockets = 0;
  private readonly httpPerIp: KeyedCounter;
  private readonly socketsPerIp: KeyedCounter;
  private readonly refused = new WeakMap<Socket, Refusal>();
  /** The per-address slot of a connection not yet upgraded (released at the upgrade or the close). */
  private readonly slots = new WeakMap<Socket, () => void>();

  constructor(private readonly o: EdgeOptions) {
    this.httpPerIp = new KeyedCounter(o.maxHttpPerIp);
    this.socketsPerIp = new KeyedCounter(o.maxSocketsPerIp);
  }

  get httpConnections(): number {
    return this.http;
  }
  get openSockets(): number {
    return this.sockets;
  }

  /** `hardMax`: connections beyond which the server closes new ones without an answer. */
  attach(server: Server, hardMax: number): void {
    server.maxConnections = hardMax;
    server.prependListener('connection', (socket: Socket) => this.onConnection(socket));
  }

  private onConnection(socket: Socket): void {
    const peer = socket.remoteAddress ?? 'unknown';
    this.http++;
    let key: string | undefined;
    let counted = false;
    if (this.http > this.o.maxHttpConnections) {
      this.refuse(socket, { status: 503, code: 'node_full', message: 'this node is at its connection budget; try again later' });
    } else if (!this.o.proxies.has(peer)) {
      key = addressKey(peer);
      counted = this.httpPerIp.tryAcquire(key);
      if (!counted) this.refuse(socket, { status: 429, code: 'too_many_connections', message: 'too many connections from this address' });
    }
    let slot = counted;
    const releaseSlot = () => {
      if (slot && key !== undefined) this.httpPerIp.release(key);
      slot = false;
    };
    this.slots.set(socket, releaseSlot);
    socket.once('close', () => {
      this.http--;
      releaseSlot();
    });
  }

  private refuse(socket: Socket, r: Refusal): void {
    this.o.onRefused?.(r.code, 'http');
    this.refused.set(socket, r);
    socket.on('error', () => socket.destroy());
    socket.end(refusalText(r));
    const t = setTimeout(() => socket.destroy(), REFUSED_LINGER_MS);
    t.unref();
    socket.once('close', () => clearTimeout(t));
  }

  /** The refusal of the connection `socket` came on, if it was refused (it was answered at accept). */
  refusalOf(socket: Socket): Refusal | undefined {
    return this.refused.get(socket);
  }

  /** A request on a refused connection (answered already): dropped; true when it was refused. */
  answerRefused(req: IncomingMessage, res: ServerResponse): boolean {
    const r = this.refused.get(req.socket);
    if (!r) return false;
    if (req.socket.writableEnded) {
      res.destroy();
      return true;
    }
    const body = JSON.stringify({ code: r.code, message: r.message });
    res.writeHead(r.status, { connection: 'close', 'retry-after': r.status === 503 ? '5' : '10', 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
    return true;
  }

  /** The connection became a WebSocket: it now counts as a socket of its client, no longer as a plain-HTTP connection of its peer. */
  upgraded(socket: Socket): void {
    this.slots.get(socket)?.();
  }

  /**
   * A WebSocket for the client at `ip` (already resolved through the trusted proxies): a refusal
   * code, or undefined and a release function to call exactly once when the socket ends.
   */
  acquireSocket(ip: string): { refused: 'node_full' | 'too_many_connections' } | { release: () => void } {
    if (this.sockets >= this.o.maxSockets) {
      this.o.onRefused?.('node_full', 'ws');
      return { refused: 'node_full' };
    }
    const key = addressKey(ip);
    if (!this.socketsPerIp.tryAcquire(key)) {
      this.o.onRefused?.('too_many_connections', 'ws');
      return { refused: 'too_many_connections' };
    }
    this.sockets++;
    let done = false;
    return {
      release: () => {
        if (done) return;
        done = true;
        this.sockets--;
        this.socketsPerIp.release(key);
      },
    };
  }
}
