/**
 * A delaying TCP proxy: the WAN between two regions of a local cluster.
 *
 * `confab cluster up --wan-latency <ms> --wan-loss <pct>` puts one in front of
 * every NATS gateway port, and every server advertises the proxy instead of its
 * own gateway port, so every byte that crosses from one region to another goes
 * through one of these (docs/cluster.md, "WAN between regions").
 *
 * - Latency is a round-trip time: every chunk is held `latencyMs / 2` in each
 *   direction, so a request and its answer across regions take at least `latencyMs`.
 * - Loss on a TCP stream is not a lost byte but a retransmission: a chunk is
 *   "lost" with probability `lossPct / 100` and then delivered one retransmission
 *   timeout later (max(200 ms, 2 × latency), Linux's minimum RTO plus the round
 *   trip); since TCP is ordered, everything behind it waits too (head-of-line
 *   blocking), as on a real lossy link.
 * - Bounded: each direction holds at most `maxBufferedBytes` in flight; above it the
 *   proxy stops reading the sender (TCP back-pressure) until half of it drained, and
 *   it writes no faster than the receiver reads.
 * - Counted: bytes and chunks per direction, and, parsing the NATS protocol on the
 *   link, the messages it carried (RMSG/HMSG/MSG/PUB/HPUB), with an `onMessage`
 *   hook that sees each message's subject (tests assert on what crossed).
 * - `hold()` stops delivering (data waits, bounded as above) until `release()`:
 *   a WAN that is "slow beyond any timeout" for a test.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface WanProxyOptions {
  /** Listen address (default 127.0.0.1) and port (0: the kernel picks; read `port`). */
  host?: string;
  port?: number;
  /** Where connections go; may be set later with `setTarget` (connections before that are closed). */
  target?: { host?: string; port: number };
  /** Round-trip time added to the link, ms (each direction is held half of it). */
  latencyMs?: number;
  /** Percentage (0–100) of chunks delivered a retransmission timeout late. */
  lossPct?: number;
  /** Bytes in flight per direction per connection before reading the sender pauses (default 4 MiB). */
  maxBufferedBytes?: number;
  /** A label for logs and stats. */
  name?: string;
  /** Called for each NATS message carried: `dir` is `out` (dialer to target) or `back`. */
  onMessage?: (subject: string, dir: WanDirection, bytes: number) => void;
  /** Random source in [0,1) (tests). */
  random?: () => number;
}

export type WanDirection = 'out' | 'back';

export interface WanCounters {
  bytes: number;
  chunks: number;
  messages: number;
  /** Chunks delivered late as if lost and retransmitted. */
  retransmits: number;
}

export interface WanStats {
  name: string;
  port: number;
  latencyMs: number;
  lossPct: number;
  /** Connections accepted since start / open now. */
  connections: number;
  open: number;
  out: WanCounters;
  back: WanCounters;
  /** Highest bytes held in one direction of one connection at once. */
  peakBuffered: number;
}

const MIN_RTO_MS = 200;

const zero = (): WanCounters => ({ bytes: 0, chunks: 0, messages: 0, retransmits: 0 });

/**
 * Counts NATS protocol messages in a byte stream (either direction of a client,
 * route or gateway connection): control lines end in CRLF; MSG/RMSG/PUB carry a
 * payload of the size in their last field, HMSG/HPUB of the total size in theirs.
 * Anything it does not understand is skipped line by line (it only counts).
 */
export class NatsMessageCounter {
  private line: Buffer[] = [];
  private lineLen = 0;
  private skip = 0;
  /** Control lines longer than this are dropped (INFO can be long; nothing else is). */
  private static readonly MAX_LINE = 1 << 20;

  constructor(private readonly onMsg: (subject: string, bytes: number) => void) {}

  feed(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - i);
        this.skip -= n;
        i += n;
        continue;
      }
      const nl = chunk.indexOf(10, i);
      if (nl < 0) {
        this.push(chunk.subarray(i));
        return;
      }
      this.push(chunk.subarray(i, nl + 1));
      i = nl + 1;
      const text = Buffer.concat(this.line, this.lineLen).toString('latin1').trimEnd();
      this.line = [];
      this.lineLen = 0;
      this.control(text);
    }
  }

  private push(b: Buffer): void {
    if (this.lineLen + b.length > NatsMessageCounter.MAX_LINE) {
      this.line = [];
      this.lineLen = 0;
      return;
    }
    this.line.push(b);
    this.lineLen += b.length;
  }

  private control(text: string): void {
    const f = text.split(/[ \t]+/);
    const op = f[0]?.toUpperCase();
    if (op !== 'MSG' && op !== 'RMSG' && op !== 'PUB' && op !== 'HMSG' && op !== 'HPUB') return;
    const size = Number(f[f.length - 1]);
    if (!Number.isInteger(size) || size < 0) return;
    this.skip = size + 2; // payload + CRLF
    // RMSG/HMSG on routes and gateways carry the account first: `RMSG <account> <subject> …`
    const subject = (op === 'RMSG' || (op === 'HMSG' && f.length >= 5 && !/^\d+$/.test(f[2] ?? ''))) ? f[2] : f[1];
    this.onMsg(subject ?? '', size);
  }
}

class Pipe {
  private readonly queue: { chunk: Buffer; at: number }[] = [];
  private buffered = 0;
  private lastAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private blocked = false;
  private readonly counter: NatsMessageCounter;

  constructor(
    private readonly proxy: WanProxy,
    private readonly dir: WanDirection,
    private readonly from: Socket,
    private readonly to: Socket,
  ) {
    const c = proxy.counters(dir);
    this.counter = new NatsMessageCounter((subject, bytes) => {
      c.messages++;
      proxy.opts.onMessage?.(subject, dir, bytes);
    });
    from.on('data', (chunk: Buffer) => this.onData(chunk));
    to.on('drain', () => {
      this.blocked = false;
      this.pump();
    });
  }

  private onData(chunk: Buffer): void {
    const now = Date.now();
    const oneWay = this.proxy.latencyMs / 2;
    let at = now + oneWay;
    if (this.proxy.lossPct > 0 && this.proxy.random() * 100 < this.proxy.lossPct) {
      at += Math.max(MIN_RTO_MS, 2 * this.proxy.latencyMs);
      this.proxy.counters(this.dir).retransmits++;
    }
    at = Math.max(at, this.lastAt); // TCP keeps order: nothing overtakes a late chunk
    this.lastAt = at;
    this.queue.push({ chunk, at });
    this.buffered += chunk.length;
    this.proxy.notePeak(this.buffered);
    if (this.buffered > this.proxy.maxBuffered) this.from.pause();
    this.pump();
  }

  /** Deliver every chunk whose time has come, in order; schedule the next. */
  pump(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const now = Date.now();
    while (this.queue.length > 0 && !this.blocked && !this.proxy.held && this.queue[0]!.at <= now) {
      const { chunk } = this.queue.shift()!;
      this.buffered -= chunk.length;
      const c = this.proxy.counters(this.dir);
      c.bytes += chunk.length;
      c.chunks++;
      this.counter.feed(chunk);
      if (!this.to.write(chunk)) this.blocked = true;
    }
    if (this.buffered <= this.proxy.maxBuffered / 2 && this.from.isPaused()) this.from.resume();
    const head = this.queue[0];
    if (head && !this.blocked && !this.proxy.held) {
      this.timer = setTimeout(() => this.pump(), Math.max(0, head.at - Date.now()));
    }
  }

  /** Flush what is queued (on the sender's end), then end the other side. */
  end(): void {
    const finish = () => {
      if (this.queue.length === 0) this.to.end();
      else setTimeout(finish, Math.max(1, (this.queue.at(-1)?.at ?? 0) - Date.now()));
    };
    finish();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.queue.length = 0;
    this.buffered = 0;
  }
}

/** See the file comment. `WanProxy.listen(opts)` starts one. */
export class WanProxy {
  latencyMs: number;
  lossPct: number;
  readonly maxBuffered: number;
  held = false;
  readonly random: () => number;
  private target: { host: string; port: number } | undefined;
  private readonly server: Server;
  private readonly links = new Set<{ a: Socket; b: Socket; pipes: Pipe[] }>();
  private readonly stat: { connections: number; out: WanCounters; back: WanCounters; peak: number } = { connections: 0, out: zero(), back: zero(), peak: 0 };

  private constructor(readonly opts: WanProxyOptions) {
    this.latencyMs = checkLatency(opts.latencyMs ?? 0);
    this.lossPct = checkLoss(opts.lossPct ?? 0);
    this.maxBuffered = opts.maxBufferedBytes ?? 4 * 1024 * 1024;
    this.random = opts.random ?? Math.random;
    if (opts.target) this.setTarget(opts.target.port, opts.target.host);
    this.server = createServer((s) => this.accept(s));
  }

  /** Start listening; resolves once bound. */
  static async listen(opts: WanProxyOptions): Promise<WanProxy> {
    const p = new WanProxy(opts);
    await new Promise<void>((res, rej) => {
      p.server.once('error', rej);
      p.server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
        p.server.off('error', rej);
        res();
      });
    });
    return p;
  }

  get port(): number {
    return (this.server.address() as { port: number }).port;
  }

  get name(): string {
    return this.opts.name ?? `wan:${this.port}`;
  }

  setTarget(port: number, host = '127.0.0.1'): void {
    this.target = { host, port };
  }

  /** Change the link's delay or loss; applies to data arriving from now on. */
  configure(o: { latencyMs?: number; lossPct?: number }): void {
    if (o.latencyMs !== undefined) this.latencyMs = checkLatency(o.latencyMs);
    if (o.lossPct !== undefined) this.lossPct = checkLoss(o.lossPct);
  }

  /** Stop delivering in both directions (data waits, bounded) until `release()`. */
  hold(): void {
    this.held = true;
  }

  release(): void {
    this.held = false;
    for (const l of this.links) for (const p of l.pipes) p.pump();
  }

  counters(dir: WanDirection): WanCounters {
    return this.stat[dir];
  }

  notePeak(n: number): void {
    if (n > this.stat.peak) this.stat.peak = n;
  }

  stats(): WanStats {
    return {
      name: this.name,
      port: this.port,
      latencyMs: this.latencyMs,
      lossPct: this.lossPct,
      connections: this.stat.connections,
      open: this.links.size,
      out: { ...this.stat.out },
      back: { ...this.stat.back },
      peakBuffered: this.stat.peak,
    };
  }

  private accept(a: Socket): void {
    const t = this.target;
    if (!t) {
      a.destroy();
      return;
    }
    this.stat.connections++;
    a.setNoDelay(true);
    const b = connect({ host: t.host, port: t.port });
    b.setNoDelay(true);
    const link = { a, b, pipes: [] as Pipe[] };
    link.pipes = [new Pipe(this, 'out', a, b), new Pipe(this, 'back', b, a)];
    this.links.add(link);
    const close = () => {
      if (!this.links.delete(link)) return;
      for (const p of link.pipes) p.stop();
      a.destroy();
      b.destroy();
    };
    a.on('error', close);
    b.on('error', close);
    a.on('close', close);
    b.on('close', close);
    // a half-close travels after the data in front of it
    a.on('end', () => link.pipes[0]!.end());
    b.on('end', () => link.pipes[1]!.end());
  }

  /** Cut every link (both ends see a reset), keep listening. */
  cut(): void {
    for (const l of [...this.links]) {
      l.a.destroy();
      l.b.destroy();
    }
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((res) => this.server.close(() => res()));
  }
}

function checkLatency(ms: number): number {
  if (!Number.isFinite(ms) || ms < 0 || ms > 10_000) throw new RangeError(`WAN latency must be 0–10000 ms, got ${ms}`);
  return ms;
}

function checkLoss(pct: number): number {
  if (!Number.isFinite(pct) || pct < 0 || pct > 50) throw new RangeError(`WAN loss must be 0–50 %, got ${pct}`);
  return pct;
}
