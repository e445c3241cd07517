/**
 * Frames built once, written many times. A message going to N local sockets is
 * JSON-encoded once and wrapped once in a complete, unmasked WebSocket text
 * frame (RFC 6455 §5.2); every socket then gets the same bytes, instead of ws
 * building a header and corking two writes per socket and message.
 */
import type { WebSocket } from 'ws';

/**
 * A complete server-to-client WebSocket text frame (FIN, opcode 1, no mask) around `payload`.
 * `own`: in memory of its own rather than a slice of Node's shared 8 KiB pool, for frames kept
 * long (the room cache), so a kept frame holds only its own bytes and its budget is exact.
 */
export function textFrame(payload: string | Buffer, own = false): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const n = body.length;
  const head = n < 126 ? 2 : n < 65536 ? 4 : 10;
  const out = own ? Buffer.allocUnsafeSlow(head + n) : Buffer.allocUnsafe(head + n);
  out[0] = 0x81;
  if (n < 126) out[1] = n;
  else if (n < 65536) {
    out[1] = 126;
    out.writeUInt16BE(n, 2);
  } else {
    out[1] = 127;
    out.writeUInt32BE(Math.floor(n / 2 ** 32), 2);
    out.writeUInt32BE(n >>> 0, 6);
  }
  body.copy(out, head);
  return out;
}

/** Encode a stored message (its JSON) as a complete `msg` frame, once per message per node, in its own memory (it may be cached). */
export function msgFrame(json: string): Buffer {
  return textFrame(`{"t":"msg",${json.slice(1)}`, true);
}

/** The JSON payload inside a frame made by textFrame (tests, fallbacks). */
export function framePayload(frame: Buffer): Buffer {
  const len = frame[1]! & 0x7f;
  return frame.subarray(len < 126 ? 2 : len === 126 ? 4 : 10);
}

/** The parts of ws's WebSocket used to write pre-built frames (ws 8: `_socket`, `_sender._state` 0 = idle). */
interface WsInternals {
  readyState: number;
  _socket?: { write(b: Buffer): boolean; cork(): void; uncork(): void } | null;
  _sender?: { _state?: number; _bufferedBytes?: number };
}

/**
 * A socket's output for the current tick. Frames are queued and written together once per
 * event-loop turn (setImmediate): one syscall per socket per tick however many frames it got,
 * straight to the socket when ws's sender is idle (confab negotiates no compression, so it is),
 * through ws.send otherwise.
 */
export class SocketWriter {
  private out: Buffer[] = [];
  private bytes = 0;

  constructor(private readonly ws: WebSocket) {}

  push(frame: Buffer): void {
    if (this.out.length === 0) {
      dirty.add(this);
      if (!scheduled) {
        scheduled = true;
        setImmediate(flushAll);
      }
    }
    this.out.push(frame);
    this.bytes += frame.length;
    if (this.bytes >= FLUSH_AT) this.flush(); // a burst (a replay page) goes out now, where the send-buffer cap sees it
  }

  /** Bytes queued for this tick's write. */
  get queuedBytes(): number {
    return this.bytes;
  }

  /** Write what is queued now (before a close frame, so nothing is reordered). */
  flush(): void {
    const out = this.out;
    if (out.length === 0) return;
    this.out = [];
    this.bytes = 0;
    const w = this.ws as unknown as WsInternals;
    if (w.readyState !== 1) return;
    const sock = w._socket;
    if (sock && (w._sender?._state ?? 0) === 0) {
      if (out.length === 1) sock.write(out[0]!);
      else {
        sock.cork();
        for (const b of out) sock.write(b);
        sock.uncork();
      }
    } else for (const b of out) this.ws.send(framePayload(b), { binary: false });
  }

  /** Forget what is queued (the connection is being cut off). */
  drop(): void {
    this.out = [];
    this.bytes = 0;
    dirty.delete(this);
  }
}

/** Queued bytes that are written at once rather than at the end of the tick. */
const FLUSH_AT = 64 * 1024;
const dirty = new Set<SocketWriter>();
let scheduled = false;

function flushAll(): void {
  scheduled = false;
  for (const w of dirty) w.flush();
  dirty.clear();
}
