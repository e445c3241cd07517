/**
 * SubjectBus: the part every subject bus shares, so an adapter is transport only. It holds the
 * handler registry (several handlers per subject, each removable on its own, one transport
 * subscription per subject however many handlers: reference counted), fans a received payload out
 * to the subject's local handlers (a throwing handler never affects the others), keeps the status
 * and tells its listeners about changes, checks subjects, and refuses publishes while down or closed
 * with ConfabError('bus_unavailable'). An adapter implements:
 *
 * - `listen(subject)` / `unlisten(subject)`: start / stop receiving one subject on the transport
 *   (called for the first handler of a subject and after its last one is gone);
 * - `send(subject, data)`: put one payload on the transport (the bus is up when it is called);
 * - `shutdown()`: release the transport (every subject is already dropped);
 *
 * and calls `deliver(subject, data)` for each payload received, `setStatus()` when its transport
 * goes up or down. `flushTransport()` (default: nothing to wait for) backs `flush()`.
 */
import type pino from 'pino';
import { ConfabError } from '../protocol/codes.js';
import type { Bus, BusHandler, BusStatus, BusSubscription } from './types.js';

/** Bus subjects: dot-separated tokens without whitespace or wildcards, at most 256 characters. */
const SUBJECT_RE = /^[^\s.*>]+(\.[^\s.*>]+)*$/;

export function checkSubject(subject: string): void {
  if (typeof subject !== 'string' || subject.length > 256 || !SUBJECT_RE.test(subject)) {
    throw new ConfabError('bad_room', `invalid bus subject ${JSON.stringify(subject)}`);
  }
}

/** Payload bytes and counts through one bus, by direction and subject class (`room.*` or node-wide `ctl.*`). */
export interface BusTraffic {
  inBytes: { room: number; ctl: number };
  inMsgs: { room: number; ctl: number };
  outBytes: { room: number; ctl: number };
  outMsgs: { room: number; ctl: number };
}

const classOf = (subject: string): 'room' | 'ctl' => (subject.startsWith('room.') ? 'room' : 'ctl');

type Log = Pick<pino.Logger, 'error' | 'warn' | 'info' | 'debug'>;

export abstract class SubjectBus implements Bus {
  abstract readonly kind: string;
  private readonly handlers = new Map<string, Set<BusHandler>>();
  private readonly listeners = new Set<(s: BusStatus) => void>();
  private current: BusStatus;
  private closing: Promise<void> | undefined;
  /** Payloads handed to local handlers' subjects (metrics, interest tests). */
  received = 0;
  /** What crossed this node's bus connection (metrics `confab_bus_bytes_total`; docs/scaling.md). */
  readonly traffic: BusTraffic = { inBytes: { room: 0, ctl: 0 }, inMsgs: { room: 0, ctl: 0 }, outBytes: { room: 0, ctl: 0 }, outMsgs: { room: 0, ctl: 0 } };

  protected constructor(initial: BusStatus, protected readonly log?: Log) {
    this.current = initial;
  }

  get status(): BusStatus {
    return this.closing ? 'down' : this.current;
  }

  /** True once close() was called. */
  protected get closed(): boolean {
    return this.closing !== undefined;
  }

  onStatus(listener: (s: BusStatus) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The transport went up or down; listeners hear about changes only. Ignored once closed. */
  protected setStatus(s: BusStatus): void {
    if (this.closing || s === this.current) return;
    this.current = s;
    this.emit(s);
  }

  private emit(s: BusStatus): void {
    for (const l of [...this.listeners]) {
      try {
        l(s);
      } catch (err) {
        this.log?.error({ err }, 'bus status listener failed');
      }
    }
  }

  publish(subject: string, data: Uint8Array): void {
    checkSubject(subject);
    if (this.closing) throw new ConfabError('bus_unavailable', 'bus is closed');
    if (this.current !== 'up') throw new ConfabError('bus_unavailable');
    this.send(subject, data);
    const c = classOf(subject);
    this.traffic.outBytes[c] += data.byteLength;
    this.traffic.outMsgs[c]++;
  }

  subscribe(subject: string, handler: BusHandler): BusSubscription {
    checkSubject(subject);
    if (this.closing) throw new ConfabError('bus_unavailable', 'bus is closed');
    // wrapped, so one function subscribed twice is two independent subscriptions
    const h: BusHandler = (d) => handler(d);
    let set = this.handlers.get(subject);
    if (!set) {
      set = new Set();
      this.listen(subject); // throws (nothing registered) when the transport refuses
      this.handlers.set(subject, set);
    }
    set.add(h);
    const mine = set;
    return {
      unsubscribe: () => {
        if (!mine.delete(h) || mine.size > 0 || this.handlers.get(subject) !== mine) return;
        this.handlers.delete(subject);
        if (!this.closing) this.unlisten(subject);
      },
    };
  }

  /** Hand a received payload to the subject's local handlers (none: dropped, not counted). */
  protected deliver(subject: string, data: Uint8Array): void {
    const c = classOf(subject);
    this.traffic.inBytes[c] += data.byteLength; // received, whether or not anyone here listens (Pub/Sub: the whole topic)
    this.traffic.inMsgs[c]++;
    const set = this.handlers.get(subject);
    if (!set) return;
    this.received++;
    for (const h of [...set]) {
      if (!set.has(h)) continue; // unsubscribed by an earlier handler of this payload
      try {
        h(data);
      } catch (err) {
        this.log?.error({ err, subject }, 'bus handler failed');
      }
    }
  }

  /** Whether any local handler listens to `subject`. */
  protected hasInterest(subject: string): boolean {
    return this.handlers.has(subject);
  }

  /** Subjects with local handlers (to re-listen after a reconnect). */
  protected subjects(): string[] {
    return [...this.handlers.keys()];
  }

  async flush(): Promise<void> {
    if (this.closing) return;
    if (this.current !== 'up') throw new ConfabError('bus_unavailable');
    await this.flushTransport();
  }

  subscriptionCount(): number {
    return this.handlers.size;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      const was = this.current;
      this.handlers.clear();
      try {
        await this.shutdown();
      } finally {
        this.current = 'down';
        if (was === 'up') this.emit('down');
      }
    })();
    return this.closing;
  }

  protected abstract send(subject: string, data: Uint8Array): void;
  protected abstract listen(subject: string): void;
  protected abstract unlisten(subject: string): void;
  protected abstract shutdown(): Promise<void>;
  protected flushTransport(): Promise<void> {
    return Promise.resolve();
  }
}
