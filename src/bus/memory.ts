/**
 * In-process bus: the reference adapter and the embedded default. Several
 * gateways in one process share one MemoryBroker, so multi-node behaviour can
 * be tested without a broker. Delivery is asynchronous (a microtask batch per
 * publish), in publish order, to every subscriber including the publisher.
 */
import { SubjectBus } from './subject-bus.js';

export class MemoryBroker {
  private readonly subs = new Map<string, Set<MemoryBus>>();
  private readonly buses = new Set<MemoryBus>();
  private down = false;

  get isDown(): boolean {
    return this.down;
  }

  /** Simulate a broker outage (tests): every bus reports 'down' and publishes are rejected. */
  setDown(down: boolean): void {
    if (this.down === down) return;
    this.down = down;
    for (const b of this.buses) b.brokerStatus(down ? 'down' : 'up');
  }

  /** @internal */
  attach(bus: MemoryBus): void {
    this.buses.add(bus);
  }
  /** @internal */
  detach(bus: MemoryBus): void {
    this.buses.delete(bus);
    for (const [subject, s] of this.subs) if (s.delete(bus) && s.size === 0) this.subs.delete(subject);
  }
  /** @internal */
  add(subject: string, bus: MemoryBus): void {
    let s = this.subs.get(subject);
    if (!s) this.subs.set(subject, (s = new Set()));
    s.add(bus);
  }
  /** @internal */
  remove(subject: string, bus: MemoryBus): void {
    const s = this.subs.get(subject);
    if (!s) return;
    s.delete(bus);
    if (s.size === 0) this.subs.delete(subject);
  }
  /** @internal */
  deliver(subject: string, data: Uint8Array): void {
    const s = this.subs.get(subject);
    if (!s) return;
    const buses = [...s];
    queueMicrotask(() => {
      // a bus that dropped the subject meanwhile must not receive (its handlers check themselves)
      for (const b of buses) if (this.subs.get(subject)?.has(b)) b.receive(subject, data);
    });
  }
}

export class MemoryBus extends SubjectBus {
  readonly kind = 'memory';

  constructor(private readonly broker: MemoryBroker = new MemoryBroker()) {
    super(broker.isDown ? 'down' : 'up');
    broker.attach(this);
  }

  /** @internal the broker went down or up */
  brokerStatus(s: 'up' | 'down'): void {
    this.setStatus(s);
  }

  /** @internal a payload for one of this bus's subjects */
  receive(subject: string, data: Uint8Array): void {
    this.deliver(subject, data);
  }

  protected send(subject: string, data: Uint8Array): void {
    this.broker.deliver(subject, data);
  }

  protected listen(subject: string): void {
    this.broker.add(subject, this);
  }

  protected unlisten(subject: string): void {
    this.broker.remove(subject, this);
  }

  protected async shutdown(): Promise<void> {
    this.broker.detach(this);
  }
}
