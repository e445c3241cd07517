/**
 * The HTTP fallback's transport: server-to-client frames as Server-Sent Events on one long GET
 * response, client-to-server frames from POSTs (fallback.ts hands each line to `receive`). The
 * same confab.v1 frames as on a WebSocket, one per `data:` line (JSON never holds a raw newline).
 *
 * Events on the stream (docs/protocol.md, "HTTP fallback"):
 *   event: open   data: {"sid","key"}      first; the POST address and key of this session
 *   (message)     data: <confab.v1 frame>  every frame the server sends
 *   event: ping   data: {}                 keepalive; answer with a POSTed `ping` frame within CONFAB_PING_TIMEOUT_MS
 *   event: close  data: {"code","reason"}  the server closes (the WebSocket close code and reason); the stream ends
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FrameTransport, TransportEvents } from './transport.js';
import { framePayload } from './wire.js';

const DATA = Buffer.from('data: ');
const END = Buffer.from('\n\n');
const PING = Buffer.from('event: ping\ndata: {}\n\n');

/**
 * SSE encodings of this tick's frames: a room frame is the same Buffer for every member, so it is
 * encoded once per tick however many fallback members get it (kept no longer: the room cache's
 * frames do not pin a second copy).
 */
let tickCache = new Map<Buffer, Buffer>();
let cacheClearScheduled = false;

/** `data: <frame JSON>\n\n` for a frame built by wire.ts textFrame. */
export function sseEvent(frame: Buffer): Buffer {
  let b = tickCache.get(frame);
  if (b) return b;
  b = Buffer.concat([DATA, framePayload(frame), END]);
  tickCache.set(frame, b);
  if (!cacheClearScheduled) {
    cacheClearScheduled = true;
    setImmediate(() => {
      cacheClearScheduled = false;
      tickCache = new Map();
    });
  }
  return b;
}

/** A named event (open, close) with a JSON body. */
export function namedEvent(name: string, body: unknown): Buffer {
  return Buffer.from(`event: ${name}\ndata: ${JSON.stringify(body)}\n\n`);
}

export class SseTransport implements FrameTransport {
  readonly kind = 'fallback' as const;
  private ev?: TransportEvents;
  private out: Buffer[] = [];
  private bytes = 0;
  private scheduled = false;
  private ended = false;

  constructor(
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
  ) {}

  bind(ev: TransportEvents): void {
    this.ev = ev;
    const gone = () => {
      this.ended = true;
      this.out = [];
      this.bytes = 0;
      ev.closed();
    };
    this.res.once('close', gone);
    this.res.on('error', (err) => ev.error(err));
    this.req.on('error', (err) => ev.error(err));
  }

  /** One client frame from a POST (one line of its body). */
  receive(line: string): void {
    this.ev?.alive();
    this.ev?.message(line, false);
  }

  /** A POST of this session arrived (even an empty one): the peer is there. */
  touch(): void {
    this.ev?.alive();
  }

  get closed(): boolean {
    return this.ended;
  }

  push(frame: Buffer): void {
    if (this.ended) return;
    const b = sseEvent(frame);
    this.out.push(b);
    this.bytes += b.length;
    if (this.bytes >= FLUSH_AT) return this.flush();
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.flush();
      });
    }
  }

  flush(): void {
    if (this.out.length === 0) return;
    const out = this.out;
    this.out = [];
    this.bytes = 0;
    if (this.ended || this.res.writableEnded) return;
    this.res.write(out.length === 1 ? out[0]! : Buffer.concat(out));
    this.uncork();
  }

  /**
   * node:http corks the socket on a response write until the next tick: uncorked now, the bytes reach
   * the kernel at once (as a WebSocket's do), so the send-buffer cap measures what the peer has not
   * read, not what a burst within one tick queued.
   */
  private uncork(): void {
    const sock = this.res.socket;
    while (sock && sock.writableCorked > 0) sock.uncork();
  }

  drop(): void {
    this.out = [];
    this.bytes = 0;
  }

  get queuedBytes(): number {
    return this.bytes;
  }

  get bufferedAmount(): number {
    return this.res.writableLength + (this.res.socket?.writableLength ?? 0);
  }

  async drained(bytes: number, deadline: number, stop: () => boolean): Promise<void> {
    this.flush();
    while (!stop() && !this.ended && this.bufferedAmount > bytes && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const sock = this.res.socket;
        const done = () => {
          clearTimeout(timer);
          sock?.off('drain', done);
          resolve();
        };
        const timer = setTimeout(done, 50);
        sock?.once('drain', done);
      });
    }
  }

  close(closeCode: number, reason: string, graceMs: number): void {
    if (this.ended || this.res.writableEnded) return;
    this.flush();
    this.res.end(namedEvent('close', { code: closeCode, reason }));
    // a peer that does not read up to the close event in time is cut off
    setTimeout(() => {
      if (!this.res.destroyed && !this.res.writableFinished) this.res.destroy();
    }, graceMs).unref();
  }

  terminate(): void {
    this.drop();
    this.ended = true;
    this.res.destroy();
  }

  ping(): void {
    if (this.ended || this.res.writableEnded) return;
    this.flush();
    this.res.write(PING);
    this.uncork();
  }

  /** Write the stream's first event (before the connection's `welcome`). */
  open(body: { sid: string; key: string }): void {
    this.res.write(namedEvent('open', body));
  }
}

/** Queued bytes that are written at once rather than at the end of the tick (as wire.ts). */
const FLUSH_AT = 64 * 1024;
