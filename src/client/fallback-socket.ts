/**
 * The HTTP fallback as a WebSocket look-alike (WebSocketLike), so the client drives it exactly as a
 * WebSocket: `GET /fallback` is read as a Server-Sent Events stream (with fetch, which browsers and
 * Node 20 both have: headers can be set and the stream read as it comes), and frames go out as
 * POSTs to `/fallback?sid=…` with the session's key, one at a time and in order, each carrying every
 * frame queued meanwhile (one per line). See docs/protocol.md, "HTTP fallback".
 */
import type { WebSocketLike } from './types.js';

const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;
/** Frames per POST at most (the server takes up to 16 frames' worth of bytes per POST). */
const MAX_LINES = 16;

export type FallbackFetch = (url: string, init: { method?: string; headers?: Record<string, string>; body?: string; signal?: AbortSignal; keepalive?: boolean }) => Promise<{
  status: number;
  ok: boolean;
  body: ReadableStream<Uint8Array> | null;
  text(): Promise<string>;
}>;

/** The fallback endpoint for a client URL (http(s) or ws(s), with or without /ws), keeping its query (token, echo). */
export function fallbackUrl(url: string): string {
  const u = new URL(url);
  if (u.protocol === 'ws:') u.protocol = 'http:';
  else if (u.protocol === 'wss:') u.protocol = 'https:';
  if (u.pathname === '/ws' || u.pathname === '/' || u.pathname === '') u.pathname = '/fallback';
  else if (u.pathname.endsWith('/ws')) u.pathname = u.pathname.slice(0, -3) + '/fallback';
  return u.toString();
}

type Handler<E> = ((ev: E) => void) | null;

export class FallbackSocket implements WebSocketLike {
  readyState = CONNECTING;
  readonly protocol = 'confab.v1';
  binaryType?: string;
  onopen: Handler<never> = null;
  onmessage: Handler<{ data: unknown }> = null;
  onclose: Handler<{ code: number; reason: string }> = null;
  onerror: Handler<{ message: string }> = null;
  /** Which transport this is (the client reports it). */
  readonly transport = 'fallback' as const;

  readonly #url: string;
  readonly #fetch: FallbackFetch;
  readonly #abort = new AbortController();
  #sid: string | undefined;
  #key: string | undefined;
  #queue: string[] = [];
  #posting = false;
  /** The server's `close` event, when it sent one. */
  #closeInfo: { code: number; reason: string } | undefined;
  #closedReported = false;

  /** `url`: the client's socket URL (ws(s)://host/ws?token=…) or the fallback URL itself. */
  constructor(url: string, _protocols?: string | string[], fetchFn?: FallbackFetch) {
    this.#url = fallbackUrl(url);
    const f = fetchFn ?? ((globalThis as { fetch?: FallbackFetch }).fetch?.bind(globalThis) as FallbackFetch | undefined);
    if (!f) throw new TypeError('the HTTP fallback needs fetch');
    this.#fetch = f;
    void this.#read();
  }

  /** The session id (after `open`). */
  get sid(): string | undefined {
    return this.#sid;
  }

  send(data: string): void {
    if (this.readyState !== OPEN) throw new Error('fallback session is not open');
    this.#queue.push(data);
    void this.#pump();
  }

  close(code = 1000, reason = ''): void {
    if (this.readyState === CLOSED) return;
    this.readyState = CLOSING;
    this.#abort.abort();
    this.#finish(code, reason);
  }

  #finish(code: number, reason: string): void {
    this.readyState = CLOSED;
    this.#queue = [];
    if (this.#closedReported) return;
    this.#closedReported = true;
    if (!this.#abort.signal.aborted) this.#abort.abort();
    this.onclose?.({ code, reason });
  }

  #fail(message: string): void {
    if (this.readyState === CLOSED) return;
    this.onerror?.({ message });
    this.#finish(1006, message);
  }

  async #read(): Promise<void> {
    let res;
    try {
      res = await this.#fetch(this.#url, { headers: { accept: 'text/event-stream' }, signal: this.#abort.signal });
    } catch (err) {
      return this.#fail(`fallback stream failed: ${(err as Error)?.message ?? String(err)}`);
    }
    if (res.status !== 200 || !res.body) {
      let body = '';
      try {
        body = await res.text();
      } catch {
        /* no body */
      }
      let code = '';
      try {
        code = String((JSON.parse(body) as { code?: unknown }).code ?? '');
      } catch {
        /* not JSON */
      }
      // the same shape as a refused WebSocket upgrade's error ("… 401 …"): the client reads the status from it
      return this.#fail(`fallback stream refused: ${res.status} ${code}`.trim());
    }
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        // events end with a blank line; scanned with a moving index (no copy per event)
        const blank = /\r?\n\r?\n|\r\r/g;
        let start = 0;
        let m: RegExpExecArray | null;
        while ((m = blank.exec(buf)) !== null) {
          this.#event(buf.slice(start, m.index));
          start = m.index + m[0].length;
          if (this.readyState === CLOSED) return;
        }
        if (start > 0) buf = buf.slice(start);
      }
    } catch (err) {
      if (this.readyState !== CLOSED) return this.#fail(`fallback stream broke: ${(err as Error)?.message ?? String(err)}`);
      return;
    }
    const c = this.#closeInfo;
    if (c) this.#finish(c.code, c.reason);
    else this.#fail('fallback stream ended');
  }

  #event(raw: string): void {
    let name = 'message';
    const data: string[] = [];
    for (const line of raw.split(/\r?\n|\r/)) {
      if (line === '' || line.startsWith(':')) continue;
      const c = line.indexOf(':');
      const field = c < 0 ? line : line.slice(0, c);
      let value = c < 0 ? '' : line.slice(c + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') name = value;
      else if (field === 'data') data.push(value);
    }
    const text = data.join('\n');
    switch (name) {
      case 'message':
        if (this.readyState === OPEN) this.onmessage?.({ data: text });
        return;
      case 'open': {
        try {
          const o = JSON.parse(text) as { sid?: unknown; key?: unknown };
          if (typeof o.sid !== 'string' || typeof o.key !== 'string') throw new Error('no sid');
          this.#sid = o.sid;
          this.#key = o.key;
        } catch {
          return this.#fail('fallback stream opened without a session');
        }
        this.readyState = OPEN;
        this.onopen?.(undefined as never);
        return;
      }
      case 'ping':
        // the keepalive's answer: an empty POST proves this client is there (costs no rate token)
        return void this.#post('');
      case 'close':
        try {
          const o = JSON.parse(text) as { code?: unknown; reason?: unknown };
          this.#closeInfo = { code: typeof o.code === 'number' ? o.code : 1006, reason: typeof o.reason === 'string' ? o.reason : '' };
        } catch {
          this.#closeInfo = { code: 1006, reason: 'bad close event' };
        }
        return;
      default:
        return; // unknown events from a newer server are ignored
    }
  }

  /** POST what is queued, one POST at a time (frames keep their order). */
  async #pump(): Promise<void> {
    if (this.#posting) return;
    this.#posting = true;
    try {
      while (this.#queue.length > 0 && this.readyState === OPEN) {
        const lines = this.#queue.splice(0, MAX_LINES);
        if (!(await this.#post(lines.join('\n')))) return;
      }
    } finally {
      this.#posting = false;
    }
  }

  /** One POST; false when the session is unusable (it is closed then). */
  async #post(body: string): Promise<boolean> {
    if (this.readyState !== OPEN || this.#sid === undefined) return false;
    const u = new URL(this.#url);
    u.search = '';
    u.searchParams.set('sid', this.#sid);
    let res;
    try {
      res = await this.#fetch(u.toString(), {
        method: 'POST',
        headers: { 'content-type': 'text/plain;charset=utf-8', 'x-confab-key': this.#key! },
        body,
        signal: this.#abort.signal,
      });
      if (res.status !== 204) await res.text().catch(() => '');
    } catch (err) {
      if (this.readyState === OPEN) this.#fail(`fallback POST failed: ${(err as Error)?.message ?? String(err)}`);
      return false;
    }
    if (res.status === 204) return true;
    // 413 and 410: the stream carries the close (code and reason); anything else ends the session here
    if (res.status === 413 || res.status === 410) return false;
    this.#fail(`fallback POST refused: ${res.status}`);
    return false;
  }
}
