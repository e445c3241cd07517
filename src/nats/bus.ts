/**
 * NATS Bus: core NATS subjects `<prefix>.<subject>` (e.g. `confab.room.lobby`,
 * `confab.ctl.presence`). One NATS subscription per subject this node has
 * interest in, shared by every local handler, dropped with the last handler, so
 * a node receives only the rooms it has members in. Publishing while
 * disconnected throws ConfabError('bus_unavailable') instead of letting the
 * client buffer silently; the client resubscribes by itself on reconnect.
 */
import type { Subscription } from '@nats-io/transport-node';
import type pino from 'pino';
import type { Bus, BusHandler, BusStatus, BusSubscription } from '../bus/types.js';
import { ConfabError } from '../protocol/codes.js';
import type { NatsLink } from './link.js';

/** Bus subjects: dot-separated tokens, no wildcards or whitespace. */
const SUBJECT_RE = /^[^\s.*>]+(\.[^\s.*>]+)*$/;

interface Entry {
  sub: Subscription;
  handlers: Set<BusHandler>;
}

export class NatsBus implements Bus {
  readonly kind = 'nats';
  private readonly subs = new Map<string, Entry>();
  private closed = false;
  private readonly listeners = new Set<(s: BusStatus) => void>();
  private readonly offLink: () => void;
  /** Messages delivered to local handlers (metrics, interest tests). */
  received = 0;

  constructor(private readonly link: NatsLink, private readonly prefix: string, private readonly log: pino.Logger) {
    link.acquire();
    this.offLink = link.onStatus((s) => {
      if (!this.closed) this.emit(s);
    });
  }

  get status(): BusStatus {
    return this.closed ? 'down' : this.link.status;
  }

  onStatus(listener: (s: BusStatus) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(s: BusStatus): void {
    for (const l of [...this.listeners]) {
      try {
        l(s);
      } catch (e) {
        this.log.error({ err: e }, 'bus status listener failed');
      }
    }
  }

  private wire(subject: string): string {
    if (typeof subject !== 'string' || subject.length > 256 || !SUBJECT_RE.test(subject)) {
      throw new ConfabError('bad_room', `invalid bus subject ${JSON.stringify(subject)}`);
    }
    return `${this.prefix}.${subject}`;
  }

  publish(subject: string, data: Uint8Array): void {
    const wire = this.wire(subject);
    if (this.closed) throw new ConfabError('bus_unavailable', 'bus is closed');
    this.link.assertUp();
    try {
      this.link.nc.publish(wire, data);
    } catch (e) {
      throw new ConfabError('bus_unavailable', `publish failed: ${(e as Error).message}`, { cause: e });
    }
  }

  subscribe(subject: string, handler: BusHandler): BusSubscription {
    const wire = this.wire(subject);
    if (this.closed) throw new ConfabError('bus_unavailable', 'bus is closed');
    // wrap so one function subscribed twice is two independent subscriptions
    const h: BusHandler = (d) => handler(d);
    let e = this.subs.get(subject);
    if (!e) {
      const handlers = new Set<BusHandler>();
      let sub: Subscription;
      try {
        sub = this.link.nc.subscribe(wire, {
          callback: (err, msg) => {
            if (err) {
              this.log.warn({ err, subject }, 'NATS subscription error');
              return;
            }
            this.received++;
            for (const fn of [...handlers]) {
              if (!handlers.has(fn)) continue;
              try {
                fn(msg.data);
              } catch (ex) {
                this.log.error({ err: ex, subject }, 'bus handler failed');
              }
            }
          },
        });
      } catch (ex) {
        throw new ConfabError('bus_unavailable', `subscribe failed: ${(ex as Error).message}`, { cause: ex });
      }
      e = { sub, handlers };
      this.subs.set(subject, e);
    }
    const entry = e;
    entry.handlers.add(h);
    return {
      unsubscribe: () => {
        if (!entry.handlers.delete(h)) return;
        if (entry.handlers.size === 0 && this.subs.get(subject) === entry) {
          this.subs.delete(subject);
          try {
            entry.sub.unsubscribe();
          } catch {
            // connection already closed
          }
        }
      },
    };
  }

  async flush(): Promise<void> {
    if (this.closed) return;
    this.link.assertUp();
    try {
      await this.link.nc.flush();
    } catch (e) {
      throw new ConfabError('bus_unavailable', `flush failed: ${(e as Error).message}`, { cause: e });
    }
  }

  subscriptionCount(): number {
    return this.subs.size;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const e of this.subs.values()) {
      e.handlers.clear();
      try {
        e.sub.unsubscribe();
      } catch {
        // connection already closed
      }
    }
    this.subs.clear();
    this.offLink();
    await this.link.release();
    this.emit('down');
  }
}
