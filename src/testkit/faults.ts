/**
 * Test kit: network faults between a process under test and a server it talks to.
 *
 * `startFaultProxy(port)` is a loopback TCP proxy in front of a server (nats-server,
 * redis-server, …). Point the client at the proxy, then switch the link at will:
 *
 * - `cut()`: every connection is closed and new ones are refused (accepted and closed
 *   at once) until `restore()` — a clean partition the client notices at once;
 * - `blackhole()`: connections stay open but nothing is forwarded either way, and new
 *   connections are accepted but never reach the server — a silent partition (pulled
 *   cable, dropped packets) that the client can only notice by its own timeouts. The
 *   bytes are held, not dropped, like TCP retransmits them: after `restore()` they are
 *   delivered in order (unless the client gave up on that connection meanwhile);
 * - `delay(ms, dir)`: every chunk is forwarded `ms` later (order kept) — a slow server
 *   or a slow link;
 * - `restore()`: forward everything as it comes again (held and delayed bytes go out now).
 *
 * Bounded: at most `maxConnections` connections (more are refused) and at most
 * `maxHeldBytes` held per direction of a connection (past that, reading from the sender
 * pauses — TCP backpressure — until the queue drains). Loopback only.
 *
 * `pollStatus(url)` samples an HTTP endpoint (e.g. `/readyz`) in the background until
 * stopped, so a test can show what it answered during a fault.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export type FaultMode = 'pass' | 'cut' | 'blackhole' | 'delay';
/** `down` = server → client (responses), `up` = client → server (requests). */
export type FaultDirection = 'up' | 'down' | 'both';

export interface FaultProxy {
  readonly host: string;
  readonly port: number;
  readonly mode: FaultMode;
  /** Connections currently open through the proxy. */
  readonly connections: number;
  /** Connections accepted since start (refused ones included). */
  readonly accepted: number;
  /** `<scheme>://127.0.0.1:<port>`, e.g. url('nats') or url('redis'). */
  url(scheme: string): string;
  cut(): void;
  blackhole(): void;
  delay(ms: number, dir?: FaultDirection): void;
  restore(): void;
  close(): Promise<void>;
}

export interface FaultProxyOptions {
  targetHost?: string;
  maxConnections?: number;
  maxHeldBytes?: number;
}

interface Queued {
  chunk: Buffer;
  at: number;
}

/** One direction of one proxied connection: a FIFO of chunks, each released at its time. */
class Pipe {
  private readonly q: Queued[] = [];
  private bytes = 0;
  private lastAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private ended = false;
  dst: Socket | undefined;

  constructor(
    private readonly src: Socket,
    private readonly releaseAt: () => number,
    private readonly maxHeld: number,
  ) {}

  push(chunk: Buffer): void {
    const at = Math.max(this.releaseAt(), this.lastAt);
    this.lastAt = at;
    this.q.push({ chunk, at });
    this.bytes += chunk.length;
    if (this.bytes > this.maxHeld) this.src.pause();
    this.pump();
  }

  end(): void {
    this.ended = true;
    this.pump();
  }

  /** Release everything held now (order kept). */
  release(): void {
    const now = Date.now();
    for (const x of this.q) x.at = Math.min(x.at, now);
    this.lastAt = Math.min(this.lastAt, now);
    this.pump();
  }

  pump(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const dst = this.dst;
    if (!dst || dst.destroyed) return;
    const now = Date.now();
    while (this.q.length > 0 && this.q[0]!.at <= now) {
      const x = this.q.shift()!;
      this.bytes -= x.chunk.length;
      dst.write(x.chunk);
    }
    if (this.bytes <= this.maxHeld / 2 && this.src.isPaused() && !this.src.destroyed) this.src.resume();
    const head = this.q[0];
    if (head && Number.isFinite(head.at)) {
      this.timer = setTimeout(() => this.pump(), Math.max(1, head.at - now));
      this.timer.unref();
    } else if (!head && this.ended && !dst.writableEnded) {
      dst.end();
    }
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.q.length = 0;
    this.bytes = 0;
  }
}

class Link {
  upstream: Socket | undefined;
  /** client → server */
  readonly up: Pipe;
  /** server → client (exists once the upstream connection does) */
  down: Pipe | undefined;
  private closed = false;

  constructor(readonly client: Socket, private readonly proxy: Proxy) {
    this.up = new Pipe(client, () => proxy.releaseAt('up'), proxy.maxHeld);
    client.on('data', (d: Buffer) => this.up.push(d));
    client.on('end', () => this.up.end());
    client.on('error', () => {});
    client.on('close', () => this.destroy());
  }

  connectUpstream(): void {
    if (this.upstream || this.closed) return;
    const s = connect(this.proxy.targetPort, this.proxy.targetHost);
    s.setNoDelay(true);
    this.upstream = s;
    const down = new Pipe(s, () => this.proxy.releaseAt('down'), this.proxy.maxHeld);
    down.dst = this.client;
    this.down = down;
    this.up.dst = s;
    s.on('data', (d: Buffer) => down.push(d));
    s.on('end', () => down.end());
    s.on('error', () => {});
    s.on('close', () => this.destroy());
    this.up.pump();
  }

  release(): void {
    this.up.release();
    this.down?.release();
  }

  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    this.up.stop();
    this.down?.stop();
    this.client.destroy();
    this.upstream?.destroy();
    this.proxy.links.delete(this);
  }
}

class Proxy implements FaultProxy {
  readonly links = new Set<Link>();
  private _mode: FaultMode = 'pass';
  private delayMs = 0;
  private delayDir: FaultDirection = 'both';
  private _accepted = 0;
  port = 0;
  readonly host = '127.0.0.1';
  readonly maxHeld: number;
  private readonly maxConnections: number;
  readonly server: Server;

  constructor(readonly targetPort: number, readonly targetHost: string, opts: FaultProxyOptions) {
    this.maxHeld = opts.maxHeldBytes ?? 4 * 1024 * 1024;
    this.maxConnections = opts.maxConnections ?? 256;
    this.server = createServer({ allowHalfOpen: true }, (client) => this.accept(client));
  }

  get mode(): FaultMode {
    return this._mode;
  }

  get connections(): number {
    return this.links.size;
  }

  get accepted(): number {
    return this._accepted;
  }

  url(scheme: string): string {
    return `${scheme}://${this.host}:${this.port}`;
  }

  /** When a chunk arriving now in direction `dir` may be forwarded. */
  releaseAt(dir: 'up' | 'down'): number {
    if (this._mode === 'blackhole') return Infinity;
    if (this._mode === 'delay' && (this.delayDir === 'both' || this.delayDir === dir)) return Date.now() + this.delayMs;
    return Date.now();
  }

  private accept(client: Socket): void {
    this._accepted++;
    client.setNoDelay(true);
    if (this._mode === 'cut' || this.links.size >= this.maxConnections) {
      client.on('error', () => {});
      client.destroy();
      return;
    }
    const link = new Link(client, this);
    this.links.add(link);
    // black-holed: the connection is accepted but never reaches the server (until restored)
    if (this._mode !== 'blackhole') link.connectUpstream();
  }

  cut(): void {
    this._mode = 'cut';
    for (const l of [...this.links]) l.destroy();
  }

  blackhole(): void {
    this._mode = 'blackhole';
  }

  delay(ms: number, dir: FaultDirection = 'both'): void {
    this._mode = 'delay';
    this.delayMs = ms;
    this.delayDir = dir;
  }

  restore(): void {
    this._mode = 'pass';
    for (const l of [...this.links]) {
      l.connectUpstream();
      l.release();
    }
  }

  async close(): Promise<void> {
    for (const l of [...this.links]) l.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** A fault-injecting TCP proxy on 127.0.0.1:<free port> in front of `targetPort`. */
export async function startFaultProxy(targetPort: number, opts: FaultProxyOptions = {}): Promise<FaultProxy> {
  const p = new Proxy(targetPort, opts.targetHost ?? '127.0.0.1', opts);
  await new Promise<void>((resolve, reject) => {
    p.server.once('error', reject);
    p.server.listen(0, '127.0.0.1', () => {
      p.server.off('error', reject);
      resolve();
    });
  });
  p.port = (p.server.address() as { port: number }).port;
  return p;
}

export interface StatusSample {
  /** ms since the epoch */
  at: number;
  /** HTTP status, or 0 when the request failed or timed out */
  status: number;
}

export interface StatusPoller {
  readonly samples: StatusSample[];
  /** Stop polling; resolves with every sample once the loop has ended. */
  stop(): Promise<StatusSample[]>;
}

/** GET `url` every `intervalMs` (each request bounded by `timeoutMs`) until stopped; at most `maxSamples` kept. */
export function pollStatus(url: string, opts: { intervalMs?: number; timeoutMs?: number; maxSamples?: number } = {}): StatusPoller {
  const intervalMs = opts.intervalMs ?? 200;
  const timeoutMs = opts.timeoutMs ?? 2000;
  const maxSamples = opts.maxSamples ?? 10_000;
  const samples: StatusSample[] = [];
  let running = true;
  let wake: (() => void) | undefined;
  const loop = (async () => {
    while (running && samples.length < maxSamples) {
      const at = Date.now();
      let status = 0;
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
        status = res.status;
        await res.arrayBuffer();
      } catch {
        status = 0;
      }
      samples.push({ at, status });
      if (!running) break;
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, intervalMs).unref();
      });
    }
  })();
  return {
    samples,
    stop: async () => {
      running = false;
      wake?.();
      await loop;
      return samples;
    },
  };
}

/** Compress samples into runs, e.g. "200×12 503×40 200×3" (for assertion messages). */
export function statusRuns(samples: StatusSample[]): string {
  const out: string[] = [];
  let cur: number | undefined;
  let n = 0;
  for (const s of samples) {
    if (s.status === cur) n++;
    else {
      if (cur !== undefined) out.push(`${cur}×${n}`);
      cur = s.status;
      n = 1;
    }
  }
  if (cur !== undefined) out.push(`${cur}×${n}`);
  return out.join(' ');
}
