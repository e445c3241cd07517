/**
 * The conformance kit's own minimal client: only what docs/protocol.md documents
 * (HTTP with fetch, the `/ws` upgrade with `ws` or the HTTP fallback at `/fallback`, JSON frames). Every frame a probe
 * receives is validated against the protocol schema (src/protocol/schema.ts, the
 * source of docs/protocol.schema.json); a frame that does not match is recorded as
 * a violation and fails the check that received it.
 *
 * Waiting is event-driven and always bounded: `until` resolves when a condition over
 * the frames received so far holds, re-evaluated on every frame and on close.
 * Sending is paced by a token bucket below the server's announced rate limit
 * (`welcome.limits`), so no check floods by accident; `sendUnpaced` is for the one
 * check that exceeds the limit on purpose, within `floodCloseAfter`.
 */
import { EventEmitter } from 'node:events';
import WebSocket from 'ws';
import { FallbackSocket } from '../client/fallback-socket.js';
import { checkServerFrame, type ServerFrameParsed } from '../protocol/schema.js';
import { SUBPROTOCOL } from '../protocol/constants.js';

export type Frame = ServerFrameParsed;
export type FrameOf<T extends Frame['t']> = Extract<Frame, { t: T }>;
export type Limits = FrameOf<'welcome'>['limits'];

/** A check that cannot run here: reported as skipped with the reason. */
export class Skip extends Error {
  override name = 'Skip';
}

/** The transport a run's sockets use: the WebSocket, or the HTTP fallback (SSE + POSTs, docs/protocol.md). */
export type ProbeTransport = 'websocket' | 'fallback';

/** The part of a `ws` WebSocket a Probe uses; the fallback's adapter has the same shape. */
interface ProbeSocket {
  readonly readyState: number;
  readonly protocol: string;
  on(ev: 'message', fn: (data: WebSocket.RawData, isBinary: boolean) => void): unknown;
  on(ev: 'close', fn: (code: number, reason: Buffer) => void): unknown;
  on(ev: 'error', fn: (err: Error) => void): unknown;
  once(ev: 'open', fn: () => void): unknown;
  once(ev: 'close', fn: () => void): unknown;
  once(ev: 'error', fn: (err: Error) => void): unknown;
  once(ev: 'unexpected-response', fn: (req: { destroy(): void }, res: { statusCode?: number }) => void): unknown;
  send(data: string | Buffer, opts: { binary?: boolean }, cb: (err?: Error) => void): void;
  close(code?: number): void;
  terminate(): void;
}

/**
 * The HTTP fallback (the SDK's FallbackSocket: GET /fallback as Server-Sent Events, POSTs) with the
 * events and methods of a `ws` WebSocket, so every check runs over it unchanged. A binary frame does
 * not exist there: a check that sends one is skipped.
 */
class FallbackProbeSocket extends EventEmitter implements ProbeSocket {
  readonly protocol = SUBPROTOCOL;
  private readonly fs: FallbackSocket;

  constructor(wsUrl: string, headers: Record<string, string> | undefined) {
    super();
    const fetchWithHeaders = ((url: string, init: RequestInit) => fetch(url, { ...init, headers: { ...headers, ...(init.headers as Record<string, string>) } })) as unknown as ConstructorParameters<typeof FallbackSocket>[2];
    this.fs = new FallbackSocket(wsUrl, SUBPROTOCOL, fetchWithHeaders);
    this.fs.onopen = () => this.emit('open');
    this.fs.onmessage = (ev) => this.emit('message', Buffer.from(String(ev.data)), false);
    this.fs.onerror = (ev) => this.emit('error', new Error(ev.message));
    this.fs.onclose = (ev) => this.emit('close', ev.code, Buffer.from(ev.reason));
  }

  get readyState(): number {
    return this.fs.readyState;
  }

  send(data: string | Buffer, opts: { binary?: boolean }, cb: (err?: Error) => void): void {
    if (opts.binary) return cb(new Skip('binary frames do not exist on the HTTP fallback'));
    try {
      this.fs.send(typeof data === 'string' ? data : data.toString('utf8'));
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }

  close(code = 1000): void {
    this.fs.close(code);
  }

  terminate(): void {
    this.fs.close(1006);
  }
}

/** A failed expectation: the check fails with this message. */
export class CheckFailure extends Error {
  override name = 'CheckFailure';
}

export function expect(cond: unknown, message: string): asserts cond {
  if (!cond) throw new CheckFailure(message);
}

/** Short JSON of a value for messages. */
export function show(v: unknown, max = 240): string {
  let s: string;
  try {
    s = typeof v === 'string' ? v : (JSON.stringify(v) ?? String(v));
  } catch {
    s = String(v);
  }
  return s.length > max ? `${s.slice(0, max)}…(${s.length} chars)` : s;
}

/** The URLs of one confab deployment, from its base URL (http(s)://host:port[/prefix]). */
export class Endpoint {
  readonly base: string;
  constructor(base: string) {
    const u = new URL(base);
    if (u.protocol === 'ws:') u.protocol = 'http:';
    if (u.protocol === 'wss:') u.protocol = 'https:';
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`${base}: expected an http(s):// URL`);
    u.search = '';
    u.hash = '';
    this.base = u.toString().replace(/\/+$/, '');
  }
  http(path: string): string {
    return this.base + path;
  }
  ws(path = '/ws'): string {
    return this.base.replace(/^http/, 'ws') + path;
  }
}

export interface HttpAnswer {
  status: number;
  contentType: string;
  text: string;
  json: unknown;
}

/** One HTTP request, bounded in time; the body is parsed as JSON when it is JSON. */
export async function request(url: string, init: RequestInit = {}, timeoutMs = 5_000): Promise<HttpAnswer> {
  const res = await fetch(url, { ...init, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', text, json };
}

export interface Session {
  token: string;
  user: { id: string; handle: string };
  expiresAt: number;
}

/** POST /api/session; throws a CheckFailure unless it answers 200 with a token and the user. */
export async function createSession(ep: Endpoint, handle: string, token?: string): Promise<Session> {
  const a = await request(ep.http('/api/session'), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(token === undefined ? { handle } : { handle, token }),
  });
  expect(a.status === 200, `POST /api/session ${show({ handle })}: expected 200, got ${a.status} ${show(a.text)}`);
  const b = a.json as Partial<Session> | undefined;
  expect(typeof b?.token === 'string' && b.token.length > 0, `POST /api/session: no token in ${show(a.text)}`);
  expect(typeof b.user?.id === 'string' && b.user.id.length > 0 && b.user.handle === handle, `POST /api/session: user should be {id, handle: ${handle}}, got ${show(b.user)}`);
  expect(typeof b.expiresAt === 'number', `POST /api/session: expiresAt should be a number, got ${show(b.expiresAt)}`);
  return b as Session;
}

export interface UpgradeRefusal {
  status: number;
  body: unknown;
}

/**
 * Try a WebSocket upgrade that should be refused; resolves with the HTTP status and JSON body of the
 * refusal, or `undefined` when the server accepted it (the socket is closed again at once).
 */
export function tryUpgrade(url: string, protocols: string[], headers: Record<string, string> = {}, timeoutMs = 5_000): Promise<UpgradeRefusal | undefined> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, { headers, handshakeTimeout: timeoutMs });
    let done = false;
    const finish = (v: UpgradeRefusal | undefined | Error) => {
      if (done) return;
      done = true;
      if (v instanceof Error) reject(v);
      else resolve(v);
    };
    ws.on('open', () => {
      ws.terminate();
      finish(undefined);
    });
    ws.on('unexpected-response', (req, res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        if (text.length < 4096) text += d;
      });
      res.on('end', () => {
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          body = text;
        }
        finish({ status: res.statusCode ?? 0, body });
        req.destroy();
      });
      res.on('error', () => finish({ status: res.statusCode ?? 0, body: text }));
    });
    ws.on('error', (err) => finish(err));
  });
}

/** Client-side token bucket below the server's limit: `rate` per second up to `burst`, starting full. */
export class Pacer {
  private tokens: number;
  private at = Date.now();
  constructor(private readonly rate: number, private readonly burst: number, full = true) {
    this.tokens = full ? burst : 0;
  }
  /** Milliseconds to wait before the next frame may go (0: now); takes the token. */
  take(): number {
    const now = Date.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) / 1000) * this.rate);
    this.at = now;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens / this.rate) * 1000);
  }
  /** Start again from empty (after a burst that used up the server's bucket). */
  drain(): void {
    this.tokens = 0;
    this.at = Date.now();
  }
}

/** A pacer comfortably inside the announced limits. */
export function pacerFor(limits: Limits | undefined): Pacer {
  if (!limits) return new Pacer(5, 5);
  return new Pacer(limits.ratePerSec * 0.8, Math.max(1, Math.floor(limits.rateBurst * 0.8)));
}

export interface ProbeOptions {
  /** Offer this subprotocol list instead of ['confab.v1']. */
  protocols?: string[];
  /** Send the token as `Authorization: Bearer` instead of `?token=`. */
  bearer?: boolean;
  /** A name for messages ("A", "B on peer"). */
  name?: string;
  timeoutMs?: number;
  /** The socket's transport (default websocket). */
  transport?: ProbeTransport;
}

/** One connection (a WebSocket or a fallback session) that records and validates every frame it receives. */
export class Probe {
  /** Every frame received, in order (also the ones that failed validation, as parsed JSON). */
  readonly frames: Frame[] = [];
  /** Frames that did not match the schema (or were not JSON text). */
  readonly violations: string[] = [];
  closeCode?: number;
  closeReason?: string;
  readonly name: string;
  private readonly listeners = new Set<() => void>();
  private pacer: Pacer;
  private readonly timeoutMs: number;
  private sendChain: Promise<void> = Promise.resolve();

  private constructor(readonly ws: ProbeSocket, opts: ProbeOptions, private readonly onFrame: (ok: boolean) => void) {
    this.name = opts.name ?? 'client';
    this.timeoutMs = opts.timeoutMs ?? 5_000;
    this.pacer = new Pacer(5, 5);
    ws.on('message', (data, isBinary) => {
      const text = Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.from(data).toString('utf8');
      let ok = true;
      if (isBinary) {
        ok = false;
        this.violations.push(`${this.name}: binary frame (confab.v1 frames are text): ${show(text, 120)}`);
      }
      const c = checkServerFrame(text);
      if (c.ok) this.frames.push(c.frame);
      else {
        ok = false;
        this.violations.push(`${this.name}: frame does not match the schema (${c.problem}): ${show(text, 300)}`);
        try {
          this.frames.push(JSON.parse(text) as Frame);
        } catch {
          // not JSON: recorded as a violation only
        }
      }
      this.onFrame(ok);
      this.notify();
    });
    ws.on('close', (code, reason) => {
      this.closeCode = code;
      this.closeReason = reason.toString();
      this.notify();
    });
    ws.on('error', () => {
      // the close event follows; a failed open is reported by open()
    });
  }

  /**
   * Open a socket with `token` on `wsUrl`, resolve once it is open. `onFrame` is told about every
   * frame (valid or not), for the run's totals.
   */
  static open(wsUrl: string, token: string, opts: ProbeOptions, onFrame: (ok: boolean) => void): Promise<Probe> {
    const url = opts.bearer ? wsUrl : `${wsUrl}?token=${encodeURIComponent(token)}`;
    const headers = opts.bearer ? { authorization: `Bearer ${token}` } : undefined;
    const ws: ProbeSocket =
      opts.transport === 'fallback'
        ? new FallbackProbeSocket(url, headers)
        : new WebSocket(url, opts.protocols ?? [SUBPROTOCOL], { headers, handshakeTimeout: opts.timeoutMs ?? 5_000, maxPayload: 64 * 1024 * 1024 });
    const p = new Probe(ws, opts, onFrame);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(p));
      ws.once('unexpected-response', (req, res) => {
        req.destroy();
        reject(new CheckFailure(`${p.name}: upgrade refused with HTTP ${res.statusCode}`));
      });
      ws.once('error', (err) => reject(new CheckFailure(`${p.name}: could not open ${wsUrl}: ${err.message}`)));
    });
  }

  /** The welcome frame (the first frame), waiting for it; the pacer follows its limits from then on. */
  async welcome(): Promise<FrameOf<'welcome'>> {
    await this.until(() => this.frames.length > 0, 'the first frame (welcome)');
    const w = this.frames[0]!;
    expect(w.t === 'welcome', `${this.name}: the first frame should be welcome, got ${show(w)}`);
    this.pacer = pacerFor(w.limits);
    return w;
  }

  private notify(): void {
    for (const l of [...this.listeners]) l();
  }

  /** Resolve when `cond()` holds (checked now, on every frame and on close); fail after the timeout naming `what`. */
  until(cond: () => boolean, what: string, timeoutMs = this.timeoutMs): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        let ok: boolean;
        try {
          ok = cond();
        } catch (e) {
          off();
          reject(e instanceof Error ? e : new Error(String(e)));
          return;
        }
        if (ok) {
          off();
          resolve();
        }
      };
      const timer = setTimeout(() => {
        off();
        const closed = this.closeCode !== undefined ? ` (socket closed with ${this.closeCode} ${show(this.closeReason)})` : '';
        const last = this.frames.slice(-3).map((f) => show(f, 160)).join(', ');
        reject(new CheckFailure(`${this.name}: no ${what} within ${timeoutMs} ms${closed}; last frames: ${last || 'none'}`));
      }, timeoutMs);
      const off = () => {
        clearTimeout(timer);
        this.listeners.delete(check);
      };
      this.listeners.add(check);
    });
  }

  /** The first frame of type `t` at or after index `from` matching `pred`, waiting for it. */
  async find<T extends Frame['t']>(t: T, pred: (f: FrameOf<T>) => boolean, what: string, from = 0, timeoutMs = this.timeoutMs): Promise<FrameOf<T>> {
    let found: FrameOf<T> | undefined;
    await this.until(() => {
      for (let i = from; i < this.frames.length; i++) {
        const f = this.frames[i]!;
        if (f.t === t && pred(f as FrameOf<T>)) {
          found = f as FrameOf<T>;
          return true;
        }
      }
      return false;
    }, what, timeoutMs);
    return found!;
  }

  /** Index of a frame in `frames` (by identity). */
  indexOf(f: Frame): number {
    return this.frames.indexOf(f);
  }

  /** The answer to a frame carrying `id`: its `ack` or an `error` naming it. */
  answer(id: string, from = 0, timeoutMs = this.timeoutMs): Promise<FrameOf<'ack'> | FrameOf<'error'>> {
    let found: FrameOf<'ack'> | FrameOf<'error'> | undefined;
    return this.until(() => {
      for (let i = from; i < this.frames.length; i++) {
        const f = this.frames[i]!;
        if ((f.t === 'ack' || f.t === 'error') && f.id === id) {
          found = f;
          return true;
        }
      }
      return false;
    }, `answer (ack or error) to id ${id}`, timeoutMs).then(() => found!);
  }

  /** `msg` frames of a room, in arrival order. */
  msgs(room: string, from = 0): FrameOf<'msg'>[] {
    return this.frames.slice(from).filter((f): f is FrameOf<'msg'> => f.t === 'msg' && f.room === room);
  }

  /** Send a frame (JSON-encoded unless a string or Buffer), paced below the rate limit, in order. */
  send(frame: object | string | Buffer): Promise<void> {
    const data = typeof frame === 'string' || Buffer.isBuffer(frame) ? frame : JSON.stringify(frame);
    const run = async () => {
      const wait = this.pacer.take();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      await this.write(data);
    };
    const p = this.sendChain.then(run);
    this.sendChain = p.catch(() => undefined);
    return p;
  }

  /** Send without pacing (the rate-limit check only). */
  sendUnpaced(frame: object | string | Buffer, opts: { binary?: boolean } = {}): Promise<void> {
    const data = typeof frame === 'string' || Buffer.isBuffer(frame) ? frame : JSON.stringify(frame);
    return this.write(data, opts.binary);
  }

  /** The server's bucket is empty after a burst: pace from empty. */
  drainPacer(): void {
    this.pacer.drain();
  }

  /** Strings go as text frames; a Buffer too unless `binary`. */
  private write(data: string | Buffer, binary = false): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.ws.readyState !== WebSocket.OPEN) return reject(new CheckFailure(`${this.name}: socket is not open (closed with ${this.closeCode ?? '?'} ${show(this.closeReason ?? '')})`));
      this.ws.send(data, { binary }, (err) => (err ? reject(err instanceof Skip ? err : new CheckFailure(`${this.name}: send failed: ${err.message}`)) : resolve()));
    });
  }

  /** Wait for the socket to close; resolves with the close code. */
  async closed(timeoutMs = this.timeoutMs): Promise<number> {
    await this.until(() => this.closeCode !== undefined, 'close', timeoutMs);
    return this.closeCode!;
  }

  close(): void {
    if (this.ws.readyState === WebSocket.CONNECTING || this.ws.readyState === WebSocket.OPEN) this.ws.close(1000);
  }

  /** Close and wait until the server has seen it (bounded). */
  async closeAndWait(timeoutMs = this.timeoutMs): Promise<void> {
    this.close();
    if (this.ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        this.ws.terminate();
        resolve();
      }, timeoutMs);
      this.ws.once('close', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}
