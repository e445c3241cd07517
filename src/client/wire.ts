/**
 * Small pure helpers of the client's wire: socket URLs, the drain close's retry hint, frame text,
 * and UTF-8 lengths for the frame-size check.
 */
import type { ServerFrame } from '../protocol/frames.js';
import { ClientError } from './errors.js';

const MAX_RETRY_HINT_MS = 120_000;

/** UTF-8 length of a string, without allocating for the common short case. */
export function utf8Bytes(s: string, atMost: number): number {
  if (s.length * 3 <= atMost) return s.length; // cannot exceed the bound: the exact value is not needed
  return new TextEncoder().encode(s).length;
}

/** Build the WebSocket URL from an http(s) or ws(s) base URL. */
export function socketUrl(base: string, token: string): string {
  const u = new URL(base);
  if (u.protocol === 'http:') u.protocol = 'ws:';
  else if (u.protocol === 'https:') u.protocol = 'wss:';
  else if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new TypeError(`unsupported URL scheme ${u.protocol}`);
  if (u.pathname === '/' || u.pathname === '') u.pathname = '/ws';
  u.searchParams.set('token', token);
  return u.toString();
}

/** Parse the retry hint of a `draining` close reason: {"code":"draining","retryMs":N}. */
export function retryHint(reason: string): number | undefined {
  try {
    const v: unknown = JSON.parse(reason);
    const ms = (v as { retryMs?: unknown } | null)?.retryMs;
    if (typeof ms === 'number' && Number.isFinite(ms) && ms >= 0) return Math.min(ms, MAX_RETRY_HINT_MS);
  } catch {
    /* not JSON: no hint */
  }
  return undefined;
}

export function frameText(data: unknown): string | undefined {
  if (typeof data === 'string') return data;
  if (data instanceof ArrayBuffer) return new TextDecoder().decode(data);
  if (ArrayBuffer.isView(data)) return new TextDecoder().decode(data);
  return undefined;
}

/** A server frame from a socket message, or the ClientError (`bad_server_frame`) saying why it is none. */
export function parseServerFrame(data: unknown): ServerFrame | ClientError {
  let f: unknown;
  try {
    f = JSON.parse(frameText(data) ?? '');
  } catch {
    return new ClientError('bad_server_frame', 'server frame is not JSON');
  }
  if (typeof f !== 'object' || f === null || typeof (f as { t?: unknown }).t !== 'string') return new ClientError('bad_server_frame', 'server frame has no type');
  return f as ServerFrame;
}
