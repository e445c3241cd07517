/**
 * A raw protocol client for tests: speaks confab.v1 frames directly over `ws`
 * and records everything it receives, so tests assert exact frame order.
 */
import WebSocket from 'ws';
import type { ClientFrame, ServerFrame } from '../protocol/frames.js';
import { SUBPROTOCOL } from '../protocol/frames.js';
import { createSession } from './gateway.js';
import { waitFor } from '../procs/wait.js';

/** A session created over HTTP (`POST /api/session`). */
export type Session = Awaited<ReturnType<typeof createSession>>;

export class RawClient {
  readonly frames: ServerFrame[] = [];
  closeCode?: number;
  closeReason?: string;
  private readonly taken = new Set<number>();

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (d) => this.frames.push(JSON.parse(d.toString()) as ServerFrame));
    ws.on('close', (code, reason) => {
      this.closeCode = code;
      this.closeReason = reason.toString();
    });
    ws.on('error', () => {});
  }

  /** Connect with a token; resolves after the `welcome` frame. */
  static async connect(wsUrl: string, token: string, opts: { headers?: Record<string, string>; protocol?: string | null } = {}): Promise<RawClient> {
    const protocols = opts.protocol === null ? [] : [opts.protocol ?? SUBPROTOCOL];
    const ws = new WebSocket(`${wsUrl}${wsUrl.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`, protocols, { headers: opts.headers });
    const c = new RawClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode })));
      ws.once('error', reject);
    });
    await c.next('welcome');
    return c;
  }

  /**
   * Create a session for `handle` on a gateway (its HTTP `url`) and connect with its token (its `wsUrl`);
   * the client is also pushed onto `track` when given (for closing in `after()`).
   */
  static async session(gateway: { url: string; wsUrl: string }, handle: string, track?: RawClient[]): Promise<{ c: RawClient; s: Session }> {
    const s = await createSession(gateway.url, handle);
    const c = await RawClient.connect(gateway.wsUrl, s.token);
    track?.push(c);
    return { c, s };
  }

  send(frame: ClientFrame | Record<string, unknown>): void {
    this.ws.send(JSON.stringify(frame));
  }

  sendText(text: string | Buffer): void {
    this.ws.send(text);
  }

  /** The earliest frame of type `t` matching `pred` not returned by `next` before, waiting up to `timeoutMs`. */
  async next<T extends ServerFrame['t']>(t: T, pred: (f: Extract<ServerFrame, { t: T }>) => boolean = () => true, timeoutMs = 10_000): Promise<Extract<ServerFrame, { t: T }>> {
    let found: Extract<ServerFrame, { t: T }> | undefined;
    await waitFor(
      () => {
        for (let i = 0; i < this.frames.length; i++) {
          const f = this.frames[i]!;
          if (!this.taken.has(i) && f.t === t && pred(f as Extract<ServerFrame, { t: T }>)) {
            found = f as Extract<ServerFrame, { t: T }>;
            this.taken.add(i);
            return true;
          }
        }
        return false;
      },
      { timeoutMs, what: `frame ${t}`, intervalMs: 5 },
    );
    return found!;
  }

  /** All frames of a type received so far. */
  all<T extends ServerFrame['t']>(t: T): Extract<ServerFrame, { t: T }>[] {
    return this.frames.filter((f) => f.t === t) as Extract<ServerFrame, { t: T }>[];
  }

  /** `msg` frames of a room, in arrival order. */
  msgs(room: string): Extract<ServerFrame, { t: 'msg' }>[] {
    return this.all('msg').filter((m) => m.room === room);
  }

  async closed(timeoutMs = 10_000): Promise<number> {
    await waitFor(() => this.closeCode !== undefined, { timeoutMs, what: 'close' });
    return this.closeCode!;
  }

  close(): void {
    this.ws.close();
  }
}

/** Join `room` (resuming from `since` when given) and resolve with the `joined` frame for it. */
export function joinRoom(c: RawClient, room: string, since?: { epoch: string; offset: number }): Promise<Extract<ServerFrame, { t: 'joined' }>> {
  c.send(since ? { t: 'join', room, since } : { t: 'join', room });
  return c.next('joined', (j) => j.room === room);
}
