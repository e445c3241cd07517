/**
 * Which transport the next connection attempt uses: the WebSocket, or the HTTP fallback
 * (fallback-socket.ts: Server-Sent Events down, POSTs up). Both look like a WebSocket to the client.
 *
 * `transport: 'auto'` (the default): WebSocket first. The next attempt goes over the fallback, at
 * once, when a WebSocket attempt fails before its first frame (an upgrade refused or cut by a proxy)
 * while no WebSocket of this client ever worked, or when no frame arrives within `fallbackAfterMs`
 * (default 4 s) of starting one (a proxy that accepts the upgrade and passes nothing). While
 * connected over the fallback, a WebSocket is tried beside it every `upgradeRetryMs` (default 60 s,
 * jittered): when it brings a frame, the client moves back to WebSocket (a reconnect that resumes
 * every room). `'websocket'` and `'fallback'` force one transport.
 */
import { FallbackSocket, type FallbackFetch } from './fallback-socket.js';
import type { WebSocketCtor, WebSocketLike } from './types.js';

export type TransportName = 'websocket' | 'fallback';
export type TransportMode = 'auto' | TransportName;

export interface TransportOptions {
  /** 'auto' (default), or force 'websocket' or 'fallback'. */
  transport: TransportMode;
  /** Auto: a WebSocket attempt with no frame after this many ms moves to the fallback (default 4000). */
  fallbackAfterMs: number;
  /** Auto, while on the fallback: try a WebSocket again this often (default 60000; 0 never). */
  upgradeRetryMs: number;
}

export const DEFAULT_TRANSPORT: TransportOptions = { transport: 'auto', fallbackAfterMs: 4000, upgradeRetryMs: 60_000 };

export class TransportChooser {
  readonly o: TransportOptions;
  /** A WebSocket of this client brought a frame once (its failures are then taken for the server's). */
  #wsWorked = false;
  /** The next attempt uses the fallback (auto). */
  #useFallback = false;
  #probe: { ws: WebSocketLike; timer: ReturnType<typeof setTimeout> } | undefined;
  #probeTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    opts: Partial<TransportOptions> | undefined,
    private readonly WS: WebSocketCtor | undefined,
    private readonly fetchFn: FallbackFetch | undefined,
    private readonly random: () => number = Math.random,
  ) {
    this.o = { ...DEFAULT_TRANSPORT, ...opts };
    if (!['auto', 'websocket', 'fallback'].includes(this.o.transport)) throw new TypeError(`ConfabClient: transport must be 'auto', 'websocket' or 'fallback'`);
    if (!(this.o.fallbackAfterMs > 0)) throw new RangeError('ConfabClient: fallbackAfterMs must be > 0');
    if (!(this.o.upgradeRetryMs >= 0)) throw new RangeError('ConfabClient: upgradeRetryMs must be >= 0');
    if (!WS && this.o.transport === 'websocket') throw new TypeError("ConfabClient: no global WebSocket; pass options.WebSocket (in Node: the 'ws' package)");
    const hasFetch = fetchFn ?? (globalThis as { fetch?: unknown }).fetch;
    if (!hasFetch && this.o.transport === 'fallback') throw new TypeError('ConfabClient: the HTTP fallback needs fetch');
    if (!WS && !hasFetch) throw new TypeError("ConfabClient: no global WebSocket; pass options.WebSocket (in Node: the 'ws' package)");
  }

  /** The transport of the next attempt. */
  next(): TransportName {
    if (this.o.transport !== 'auto') return this.o.transport;
    if (!this.WS) return 'fallback';
    return this.#useFallback ? 'fallback' : 'websocket';
  }

  /** Open a socket over `t` to the client's socket URL (ws(s)://…/ws?token=…). */
  open(t: TransportName, url: string, protocol: string): WebSocketLike {
    return t === 'websocket' ? new this.WS!(url, protocol) : new FallbackSocket(url, protocol, this.fetchFn);
  }

  /** Auto: how long a WebSocket attempt may go without a frame before the fallback is tried (undefined: no such limit). */
  frameDeadline(t: TransportName): number | undefined {
    return this.o.transport === 'auto' && t === 'websocket' && this.WS ? this.o.fallbackAfterMs : undefined;
  }

  /** A frame arrived over `t`. */
  worked(t: TransportName): void {
    if (t === 'websocket') {
      this.#wsWorked = true;
      this.#useFallback = false;
    }
  }

  /**
   * An attempt over `t` ended before its first frame; `silent`: it was open but brought nothing
   * within the deadline. True when the next attempt should start at once (it switches transport).
   */
  failed(t: TransportName, silent: boolean): boolean {
    if (this.o.transport !== 'auto') return false;
    if (t === 'websocket' && (silent || !this.#wsWorked)) {
      this.#useFallback = true;
      return true;
    }
    // the fallback failed too: most likely the server, not the path; the WebSocket goes first again
    if (t === 'fallback') this.#useFallback = false;
    return false;
  }

  /**
   * Connected over the fallback (auto): try a WebSocket every upgradeRetryMs; `onUpgradable` runs
   * when one brought a frame (it is closed again: the client reconnects over WebSocket and resumes).
   */
  watchUpgrade(url: () => string | undefined, protocol: string, onUpgradable: () => void): void {
    this.stopUpgrade();
    if (this.o.transport !== 'auto' || !this.WS || this.o.upgradeRetryMs <= 0) return;
    const delay = Math.round(this.o.upgradeRetryMs * (0.75 + this.random() / 2));
    this.#probeTimer = setTimeout(() => {
      this.#probeTimer = undefined;
      const u = url();
      if (u === undefined) return;
      let ws: WebSocketLike;
      try {
        ws = new this.WS!(u, protocol);
      } catch {
        return this.watchUpgrade(url, protocol, onUpgradable);
      }
      const done = (ok: boolean) => {
        if (this.#probe?.ws !== ws) return;
        clearTimeout(this.#probe.timer);
        this.#probe = undefined;
        ws.onmessage = ws.onclose = ws.onerror = null;
        try {
          ws.close(1000, 'upgrade probe');
        } catch {
          /* closing */
        }
        if (ok) {
          this.#wsWorked = true;
          this.#useFallback = false;
          onUpgradable();
        } else this.watchUpgrade(url, protocol, onUpgradable);
      };
      this.#probe = { ws, timer: setTimeout(() => done(false), this.o.fallbackAfterMs) };
      ws.onmessage = () => done(true);
      ws.onclose = () => done(false);
      ws.onerror = () => {};
    }, delay);
  }

  stopUpgrade(): void {
    clearTimeout(this.#probeTimer);
    this.#probeTimer = undefined;
    const p = this.#probe;
    if (!p) return;
    this.#probe = undefined;
    clearTimeout(p.timer);
    p.ws.onmessage = p.ws.onclose = p.ws.onerror = null;
    try {
      p.ws.close(1000, 'upgrade probe');
    } catch {
      /* closing */
    }
  }
}
