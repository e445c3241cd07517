/**
 * A minimal WebSocket client written over `net` for the load generator.
 *
 * Why not the `ws` client: the load generator runs 10,000 clients on one core
 * and must stay cheaper than the servers it measures. This client does the
 * HTTP upgrade, parses unmasked server frames in place (no copy, no per-frame
 * event emitter), answers pings, and sends masked frames with an all-zero
 * masking key (legal per RFC 6455 §5.3; the server still runs its unmask step),
 * so each send is one allocation and one write.
 */
import net from 'node:net';
import { randomBytes } from 'node:crypto';

export interface WireEvents {
  /** Upgrade done; frames may be sent. */
  open(): void;
  /** One complete text (or binary) message: bytes buf[start, end). The buffer is only valid during the call. */
  message(buf: Buffer, start: number, end: number): void;
  /** Socket gone. `code` is the close code if the server sent a close frame, `status` the HTTP status if the upgrade was refused. */
  close(info: { code?: number; status?: number; error?: string }): void;
}

/** Shared read buffer: every read is parsed synchronously, partial frames are copied out. */
const READ_BUF = Buffer.allocUnsafe(256 * 1024);

const S_CONNECTING = 0;
const S_OPEN = 1;
const S_CLOSED = 2;

export class WireSocket {
  readonly socket: net.Socket;
  private state = S_CONNECTING;
  private head = '';
  private rest: Buffer | null = null;
  private frags: Buffer[] | null = null;
  private closeCode: number | undefined;
  private status: number | undefined;
  private readonly ev: WireEvents;

  constructor(port: number, host: string, path: string, extraHeaders: string, ev: WireEvents) {
    this.ev = ev;
    const s = net.connect({
      port,
      host,
      noDelay: true,
      // read into one shared buffer, bypassing the stream 'data' machinery (one callback per read, no allocation)
      onread: { buffer: READ_BUF, callback: (n: number, buf: Uint8Array) => this.onRead(n, buf as Buffer) },
    });
    this.socket = s;
    s.on('connect', () => {
      const key = randomBytes(16).toString('base64');
      s.write(
        `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${extraHeaders}\r\n`,
      );
    });
    s.on('error', (e) => this.finish(e.message));
    s.on('close', () => this.finish());
  }

  get isOpen(): boolean {
    return this.state === S_OPEN;
  }

  private finish(error?: string): void {
    if (this.state === S_CLOSED) return;
    this.state = S_CLOSED;
    this.socket.destroy();
    this.ev.close({ code: this.closeCode, status: this.status, error });
  }

  private onRead(n: number, buf: Buffer): boolean {
    this.onData(buf.subarray(0, n));
    return true;
  }

  private onData(d: Buffer): void {
    if (this.state === S_CONNECTING) {
      this.head += d.toString('latin1');
      const end = this.head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (this.head.length > 16384) this.finish('upgrade response too large');
        return;
      }
      const m = /^HTTP\/1\.1 (\d{3})/.exec(this.head);
      this.status = m ? Number(m[1]) : 0;
      if (this.status !== 101) {
        this.finish(`upgrade refused: HTTP ${this.status}`);
        return;
      }
      const bodyStart = Buffer.byteLength(this.head.slice(0, end + 4), 'latin1');
      const headLen = this.head.length;
      this.head = '';
      this.state = S_OPEN;
      this.ev.open();
      const restLen = headLen - bodyStart;
      if (restLen > 0 && this.state === S_OPEN) this.parse(d.subarray(d.length - restLen));
      return;
    }
    if (this.state === S_OPEN) this.parse(d);
  }

  private parse(chunk: Buffer): void {
    let buf = chunk;
    if (this.rest) {
      buf = Buffer.concat([this.rest, chunk]);
      this.rest = null;
    }
    const len = buf.length;
    let pos = 0;
    while (this.state === S_OPEN) {
      if (len - pos < 2) break;
      const b0 = buf[pos]!;
      const b1 = buf[pos + 1]!;
      let plen = b1 & 0x7f;
      let hdr = 2;
      if (plen === 126) {
        if (len - pos < 4) break;
        plen = buf.readUInt16BE(pos + 2);
        hdr = 4;
      } else if (plen === 127) {
        if (len - pos < 10) break;
        plen = buf.readUInt32BE(pos + 2) * 0x100000000 + buf.readUInt32BE(pos + 6);
        hdr = 10;
      }
      if (b1 & 0x80) {
        this.finish('server sent a masked frame');
        return;
      }
      if (len - pos < hdr + plen) break;
      const start = pos + hdr;
      const end = start + plen;
      pos = end;
      this.frame(b0 & 0x0f, (b0 & 0x80) !== 0, buf, start, end);
    }
    if (pos < len && this.state === S_OPEN) this.rest = Buffer.from(buf.subarray(pos));
  }

  private frame(op: number, fin: boolean, buf: Buffer, start: number, end: number): void {
    if (op === 1 || op === 2 || op === 0) {
      if (!fin || this.frags) {
        (this.frags ??= []).push(Buffer.from(buf.subarray(start, end)));
        if (!fin) return;
        const all = Buffer.concat(this.frags);
        this.frags = null;
        this.ev.message(all, 0, all.length);
        return;
      }
      this.ev.message(buf, start, end);
    } else if (op === 8) {
      this.closeCode = end - start >= 2 ? buf.readUInt16BE(start) : 1005;
      this.writeFrame(8, Buffer.from(buf.subarray(start, Math.min(end, start + 2))));
      this.socket.end();
      this.finish();
    } else if (op === 9) {
      this.writeFrame(10, Buffer.from(buf.subarray(start, end)));
    }
  }

  private writeFrame(op: number, payload: Buffer): void {
    const n = payload.length;
    const hdr = n < 126 ? 2 : n < 65536 ? 4 : 10;
    const f = Buffer.allocUnsafe(hdr + 4 + n);
    f[0] = 0x80 | op;
    if (hdr === 2) f[1] = 0x80 | n;
    else if (hdr === 4) {
      f[1] = 0x80 | 126;
      f.writeUInt16BE(n, 2);
    } else {
      f[1] = 0x80 | 127;
      f.writeUInt32BE(0, 2);
      f.writeUInt32BE(n, 6);
    }
    f.writeUInt32BE(0, hdr); // zero masking key: payload goes out as is
    payload.copy(f, hdr + 4);
    this.socket.write(f);
  }

  /** Send one text message (latin1/ASCII or UTF-8 string). */
  sendText(text: string): void {
    if (this.state !== S_OPEN) return;
    this.writeFrame(1, Buffer.from(text, 'utf8'));
  }

  /** Close politely (close frame, then FIN). */
  close(code = 1000): void {
    if (this.state !== S_OPEN) {
      this.socket.destroy();
      return;
    }
    const p = Buffer.allocUnsafe(2);
    p.writeUInt16BE(code, 0);
    this.writeFrame(8, p);
    this.socket.end();
  }

  /** Drop without a close frame (like a network loss or a killed client). */
  destroy(): void {
    this.socket.destroy();
    this.finish();
  }

  /** Stop reading (a slow consumer): the kernel buffers fill, then the server's. */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }
}
