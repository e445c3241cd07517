/**
 * The client's liveness check while connected: a `ping` frame every `intervalMs`; no `pong` (or
 * other answer proving the connection alive) within `timeoutMs` after one means the connection is
 * dead. One Keepalive per client; `start` per connection, `stop` when it ends.
 */
export class Keepalive {
  #ping: ReturnType<typeof setInterval> | undefined;
  #pong: ReturnType<typeof setTimeout> | undefined;

  constructor(
    readonly intervalMs: number,
    readonly timeoutMs: number,
  ) {}

  /** Every intervalMs: `sendPing()` when `open()`; `dead()` when no answer came within timeoutMs of a ping. */
  start(open: () => boolean, sendPing: () => void, dead: () => void): void {
    this.stop();
    if (this.intervalMs <= 0) return;
    this.#ping = setInterval(() => {
      if (!open()) return;
      sendPing();
      this.#pong ??= setTimeout(() => {
        this.#pong = undefined;
        dead();
      }, this.timeoutMs);
    }, this.intervalMs);
  }

  /** An answer arrived: the connection is alive. */
  answered(): void {
    clearTimeout(this.#pong);
    this.#pong = undefined;
  }

  stop(): void {
    clearInterval(this.#ping);
    this.answered();
    this.#ping = undefined;
  }
}
