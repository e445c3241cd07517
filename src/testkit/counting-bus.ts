/** Wraps a Bus and counts what this node receives per subject (interest tests, any adapter). */
import type { Bus, BusHandler, BusStatus, BusSubscription } from '../bus/types.js';

export class CountingBus implements Bus {
  readonly received = new Map<string, number>();
  constructor(readonly inner: Bus) {}
  get kind(): string {
    return this.inner.kind;
  }
  get status(): BusStatus {
    return this.inner.status;
  }
  onStatus(l: (s: BusStatus) => void): () => void {
    return this.inner.onStatus(l);
  }
  publish(subject: string, data: Uint8Array): void {
    this.inner.publish(subject, data);
  }
  subscribe(subject: string, handler: BusHandler): BusSubscription {
    return this.inner.subscribe(subject, (d) => {
      this.received.set(subject, (this.received.get(subject) ?? 0) + 1);
      handler(d);
    });
  }
  /** Messages received on subjects starting with `prefix`. */
  count(prefix: string): number {
    let n = 0;
    for (const [s, c] of this.received) if (s.startsWith(prefix)) n += c;
    return n;
  }
  flush(): Promise<void> {
    return this.inner.flush();
  }
  subscriptionCount(): number {
    return this.inner.subscriptionCount();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
