/**
 * What a Connection writes to and reads from: a transport-neutral sink and source of confab.v1
 * frames. The connection (connection.ts) decodes, limits and answers frames the same way whatever
 * carries them; a transport only moves bytes. Two exist: the WebSocket (this file) and the HTTP
 * fallback (fallback-transport.ts: Server-Sent Events down, POSTs up).
 */
import type { RawData, WebSocket } from 'ws';
import { SocketWriter } from './wire.js';

/** What a transport reports to its connection. */
export interface TransportEvents {
  /** One client frame (a WebSocket message, or one line of a fallback POST). */
  message(data: RawData | string, isBinary: boolean): void;
  /** The peer proved it is there (a pong, a POST): the keepalive sweep spares it. */
  alive(): void;
  /** The transport is gone (closed by either side): the connection cleans up. */
  closed(): void;
  error(err: unknown): void;
}

export interface FrameTransport {
  /** `ws` or `fallback` (logs, metrics, the conformance report). */
  readonly kind: 'ws' | 'fallback';
  /** Start reporting to `ev` (called once, by Connection.start). */
  bind(ev: TransportEvents): void;
  /** Queue a complete frame (a WebSocket text frame as built by wire.ts textFrame; shared by every member of a room). */
  push(frame: Buffer): void;
  /** Write what is queued now. */
  flush(): void;
  /** Forget what is queued (the connection is being cut off). */
  drop(): void;
  /** Bytes queued for this tick's write. */
  readonly queuedBytes: number;
  /** Bytes written and not yet taken by the peer: the send-buffer cap (CONFAB_SEND_BUFFER_BYTES) applies to it. */
  readonly bufferedAmount: number;
  /** Resolves once at most `bytes` are buffered, at `deadline`, or when `stop()` says the connection is gone. */
  drained(bytes: number, deadline: number, stop: () => boolean): Promise<void>;
  /** Close with a close code and reason (what was queued goes first unless dropped); cut off after `graceMs`. */
  close(closeCode: number, reason: string, graceMs: number): void;
  /** Cut off at once. */
  terminate(): void;
  /** Keepalive: ask the peer to prove it is there (it answers within CONFAB_PING_TIMEOUT_MS or is closed). */
  ping(): void;
}

/** A WebSocket (ws) as a FrameTransport; frames are written by SocketWriter once per tick. */
export class WsTransport implements FrameTransport {
  readonly kind = 'ws' as const;
  private readonly writer: SocketWriter;

  constructor(readonly ws: WebSocket) {
    this.writer = new SocketWriter(ws);
  }

  bind(ev: TransportEvents): void {
    this.ws.on('message', (data, isBinary) => ev.message(data, isBinary));
    this.ws.on('pong', () => ev.alive());
    this.ws.on('close', () => ev.closed());
    this.ws.on('error', (err) => ev.error(err));
  }

  push(frame: Buffer): void {
    this.writer.push(frame);
  }
  flush(): void {
    this.writer.flush();
  }
  drop(): void {
    this.writer.drop();
  }
  get queuedBytes(): number {
    return this.writer.queuedBytes;
  }
  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }

  async drained(bytes: number, deadline: number, stop: () => boolean): Promise<void> {
    this.writer.flush();
    const sock = (this.ws as unknown as { _socket?: NodeJS.EventEmitter })._socket;
    while (!stop() && this.ws.bufferedAmount > bytes && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          sock?.off('drain', done);
          resolve();
        };
        const timer = setTimeout(done, 50); // re-check: ws may buffer above the socket too
        sock?.once('drain', done);
      });
    }
  }

  close(closeCode: number, reason: string, graceMs: number): void {
    this.ws.close(closeCode, reason);
    // the close frame queues behind what the socket already holds (at most the send-buffer cap, nothing
    // more is written): a peer that is still reading gets it; one that does not answer in time is cut off
    setTimeout(() => this.ws.terminate(), graceMs).unref();
  }

  terminate(): void {
    this.writer.drop();
    this.ws.terminate();
  }

  ping(): void {
    this.ws.ping();
  }
}
