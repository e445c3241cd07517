/**
 * Frames built once, written many times. A message going to N local sockets is
 * JSON-encoded once and wrapped once in a complete, unmasked WebSocket text
 * frame (RFC 6455 §5.2); every socket then gets the same bytes in one write,
 * instead of ws building a header and corking two writes per socket.
 */
import type { WebSocket } from 'ws';

/** A complete server-to-client WebSocket text frame (FIN, opcode 1, no mask) around `payload`. */
export function textFrame(payload: string | Buffer): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const n = body.length;
  const head = n < 126 ? 2 : n < 65536 ? 4 : 10;
  const out = Buffer.allocUnsafe(head + n);
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

/** The JSON payload inside a frame made by textFrame (tests, fallbacks). */
export function framePayload(frame: Buffer): Buffer {
  const len = frame[1]! & 0x7f;
  return frame.subarray(len < 126 ? 2 : len === 126 ? 4 : 10);
}

/** The parts of ws's WebSocket used to write pre-built frames (ws 8: `_socket`, `_sender._state` 0 = idle). */
interface WsInternals {
  readyState: number;
  _socket?: { write(b: Buffer): boolean; writableLength: number } | null;
  _sender?: { _state?: number; _bufferedBytes?: number };
}

/**
 * Write a pre-built frame straight to the socket when ws's sender is idle (no compression is
 * negotiated by confab, so it always is); otherwise hand the payload to ws.send. Returns false
 * when the socket is not open.
 */
export function writeFrame(ws: WebSocket, frame: Buffer): boolean {
  const w = ws as unknown as WsInternals;
  if (w.readyState !== 1) return false;
  if (w._socket && (w._sender?._state ?? 0) === 0) w._socket.write(frame);
  else ws.send(framePayload(frame), { binary: false });
  return true;
}
