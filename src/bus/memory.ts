/**
 * In-process bus: the reference adapter and the embedded default. Several
 * gateways in one process share one MemoryBroker, so multi-node behaviour can
 * be tested without a broker. Delivery is asynchronous (a microtask batch per
 * publish), in publish order, to every subscriber including the publisher.
 */
import { ConfabError } from '../protocol/codes.js';
import type { Bus, BusHandler, BusStatus, BusSubscription } from './types.js';

export class MemoryBroker {
  private readonly subs = new Map<string, Set<BusHandler>>();
  private readonly buses = new Set<MemoryBus>();
  private down = false;

  get isDown(): boolean {
    return this.down;
  }

  /** Simulate a broker outage (tests): every bus reports 'down' and publishes are rejected. */
  setDown(down: boolean): void {
    if (this.down === down) return;
    this.down = down;
    for (const b of this.buses) b.emitStatus(down ? 'down' : 'up');
  }

  /** @internal */
  attach(bus: MemoryBus): void {
    this.buses.add(bus);
  }
  /** @internal */
  detach(bus: MemoryBus): void {
    this.buses.delete(bus);
  }
  /** @internal */
  add(subject: string, h: BusHandler): void {
    let s = this.subs.get(subject);
    if (!s) this.subs.set(subject, (s = new Set()));
    s.add(h);
  }
  /** @internal */
  remove(subject: string, h: BusHandler): void {
    const s = this.subs.get(subject);
    if (!s) return;
    s.delete(h);
    if (s.size === 0) this.subs.delete(subject);
  }
  /** @internal */
  deliver(subject: string, data: Uint8Array): void {
    const s = this.subs.get(subject);
    if (!s) return;
    const handlers = [...s];
    queueMicrotask(() => {
      for (const h of handlers) {
        // a handler unsubscribed meanwhile must not receive
        if (!this.subs.get(subject)?.has(h)) continue;
        try {
          h(data);
        } catch {
          // a failing subscriber must not affect the others
        }
      }
    });
  }
}

export class MemoryBus implements Bus {
  readonly kind = 'memory';
  private readonly listeners = new Set<(s: BusStatus) => void>();
  private readonly mine = new Map<BusHandler, string>();
  private closed = false;

  constructor(private readonly broker: MemoryBroker = new MemoryBroker()) {
    broker.attach(this);
  }

  get status(): BusStatus {
    return this.closed || this.broker.isDown ? 'down' : 'up';
  }

  onStatus(listener: (s: BusStatus) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** @internal */
  emitStatus(s: BusStatus): void {
    for (const l of this.listeners) l(s);
  }

  publish(subject: string, data: Uint8Array): void {
    if (this.status === 'down') throw new ConfabError('bus_unavailable');
    this.broker.deliver(subject, data);
  }

  subscribe(subject: string, handler: BusHandler): BusSubscription {
    if (this.closed) throw new ConfabError('bus_unavailable', 'bus is closed');
    // wrap so the same function can be subscribed twice and removed independently
    const h: BusHandler = (d) => handler(d);
    this.mine.set(h, subject);
    this.broker.add(subject, h);
    return {
      unsubscribe: () => {
        if (!this.mine.delete(h)) return;
        this.broker.remove(subject, h);
      },
    };
  }

  async flush(): Promise<void> {}

  subscriptionCount(): number {
    return new Set(this.mine.values()).size;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    for (const [h, subject] of this.mine) this.broker.remove(subject, h);
    this.mine.clear();
    this.closed = true;
    this.broker.detach(this);
    this.emitStatus('down');
  }
}
