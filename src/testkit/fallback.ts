/**
 * Test kit: a raw client of the HTTP fallback (GET /fallback as Server-Sent Events, POST
 * /fallback?sid=…) over node:http, with full control of headers (Origin, key, body size), for the
 * security and protocol tests. The SDK's own transport is src/client/fallback-socket.ts.
 */
import { request, type IncomingMessage } from 'node:http';
import { waitFor } from '../procs/wait.js';

export interface SseEvent {
  event: string;
  data: string;
}

export interface RawFallback {
  status: number;
  headers: IncomingMessage['headers'];
  /** JSON body of a refusal (status other than 200). */
  refusal?: { code: string; message: string };
  sid: string;
  key: string;
  /** Every event so far, in order (`message` events are confab frames). */
  events: SseEvent[];
  /** The confab frames so far (parsed `message` events). */
  frames: { t: string; [k: string]: unknown }[];
  /** The `close` event's body, when one came. */
  closeEvent?: { code: number; reason: string };
  /** True once the stream ended (either side). */
  ended: boolean;
  /** Resolves with the first frame matching `pred` (bounded wait). */
  next(pred: (f: { t: string; [k: string]: unknown }) => boolean, timeoutMs?: number): Promise<{ t: string; [k: string]: unknown }>;
  /** POST a body (frames, one JSON per line) to this session; `key`/`sid` default to this session's. */
  post(body: string, o?: { sid?: string; key?: string; origin?: string }): Promise<{ status: number; body: string; headers: IncomingMessage['headers'] }>;
  /** POST frames (each JSON-encoded, one per line). */
  send(...frames: unknown[]): Promise<{ status: number; body: string }>;
  /** Told about every frame as it arrives, with the bytes of its event (`data: …\n\n`). */
  onFrame?: (f: { t: string; [k: string]: unknown }, bytes: number) => void;
  /** Stop reading the stream (its socket's buffers fill up: a client that never reads). */
  pause(): void;
  destroy(): void;
}

export interface OpenOptions {
  token?: string;
  origin?: string;
  echo?: boolean;
  /** Stop reading the stream (a client that never reads). */
  paused?: boolean;
}

/** POST to /fallback of `base` (no session of ours needed: for attacks). */
export function postFallback(base: string, body: string, o: { sid?: string; key?: string; origin?: string } = {}): Promise<{ status: number; body: string; headers: IncomingMessage['headers'] }> {
  const u = new URL('/fallback', base);
  if (o.sid !== undefined) u.searchParams.set('sid', o.sid);
  const headers: Record<string, string> = { 'content-type': 'text/plain', 'content-length': String(Buffer.byteLength(body)) };
  if (o.key !== undefined) headers['x-confab-key'] = o.key;
  if (o.origin !== undefined) headers.origin = o.origin;
  return new Promise((resolve, reject) => {
    const req = request(u, { method: 'POST', headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, headers: res.headers }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Open a fallback stream at `base` (http://host:port); resolves once the response head (and, on 200, the `open` event) arrived. */
export function openFallback(base: string, o: OpenOptions = {}): Promise<RawFallback> {
  const u = new URL('/fallback', base);
  if (o.token !== undefined) u.searchParams.set('token', o.token);
  if (o.echo === false) u.searchParams.set('echo', '0');
  const headers: Record<string, string> = { accept: 'text/event-stream' };
  if (o.origin !== undefined) headers.origin = o.origin;
  return new Promise((resolve, reject) => {
    const req = request(u, { headers, agent: false }, (res) => {
      const r: RawFallback = {
        status: res.statusCode ?? 0,
        headers: res.headers,
        sid: '',
        key: '',
        events: [],
        frames: [],
        ended: false,
        async next(pred, timeoutMs = 5000) {
          let hit: { t: string } | undefined;
          await waitFor(() => (hit = r.frames.find(pred)) !== undefined || r.ended, { timeoutMs, what: 'a fallback frame' });
          if (!hit) throw new Error(`stream ended (${JSON.stringify(r.closeEvent)}) before the frame; got ${r.frames.map((f) => f.t).join(',')}`);
          return hit as { t: string; [k: string]: unknown };
        },
        post: (body, p = {}) => postFallback(base, body, { sid: p.sid ?? r.sid, key: p.key ?? r.key, ...(p.origin !== undefined ? { origin: p.origin } : {}) }),
        send: (...frames) => r.post(frames.map((f) => JSON.stringify(f)).join('\n')),
        destroy: () => req.destroy(),
        pause: () => res.pause(),
      };
      res.on('error', () => {});
      res.on('close', () => (r.ended = true));
      if (r.status !== 200) {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          try {
            r.refusal = JSON.parse(text) as { code: string; message: string };
          } catch {
            /* not JSON */
          }
          resolve(r);
        });
        return;
      }
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        buf += c;
        let start = 0;
        let i: number;
        // scan with an index (slicing the buffer per event is quadratic in a chunk of many events)
        while ((i = buf.indexOf('\n\n', start)) >= 0) {
          const raw = buf.slice(start, i);
          start = i + 2;
          let event = 'message';
          const data: string[] = [];
          for (const line of raw.split('\n')) {
            if (line.startsWith(':')) continue;
            if (line.startsWith('event: ')) event = line.slice(7);
            else if (line.startsWith('data: ')) data.push(line.slice(6));
          }
          const ev = { event, data: data.join('\n') };
          r.events.push(ev);
          if (event === 'open') {
            const o2 = JSON.parse(ev.data) as { sid: string; key: string };
            r.sid = o2.sid;
            r.key = o2.key;
            resolve(r);
          } else if (event === 'message') {
            const f = JSON.parse(ev.data) as { t: string };
            r.frames.push(f);
            r.onFrame?.(f, Buffer.byteLength(raw) + 2);
          } else if (event === 'close') r.closeEvent = JSON.parse(ev.data) as { code: number; reason: string };
        }
        if (start > 0) buf = buf.slice(start);
      });
      if (o.paused) {
        res.pause();
        resolve(r);
      }
    });
    req.on('error', reject);
    req.end();
  });
}
