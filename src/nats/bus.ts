/**
 * NATS Bus: core NATS subjects `<prefix>.<subject>` (e.g. `confab.room.lobby`,
 * `confab.ctl.presence`). One NATS subscription per subject this node has
 * interest in (the handlers behind it are SubjectBus's), dropped with the last
 * handler, so a node receives only the rooms it has members in. Publishing while
 * disconnected throws ConfabError('bus_unavailable') instead of letting the
 * client buffer silently; the client resubscribes by itself on reconnect.
 */
import type { Subscription } from '@nats-io/transport-node';
import type pino from 'pino';
import { SubjectBus } from '../bus/subject-bus.js';
import { ConfabError } from '../protocol/codes.js';
import type { NatsLink } from './link.js';

export class NatsBus extends SubjectBus {
  readonly kind = 'nats';
  private readonly subs = new Map<string, Subscription>();
  private readonly offLink: () => void;

  constructor(private readonly link: NatsLink, private readonly prefix: string, log: pino.Logger) {
    super(link.status, log);
    link.acquire();
    this.offLink = link.onStatus((s) => this.setStatus(s));
  }

  protected send(subject: string, data: Uint8Array): void {
    this.link.assertUp();
    try {
      this.link.nc.publish(`${this.prefix}.${subject}`, data);
    } catch (e) {
      throw new ConfabError('bus_unavailable', `publish failed: ${(e as Error).message}`, { cause: e });
    }
  }

  protected listen(subject: string): void {
    try {
      const sub = this.link.nc.subscribe(`${this.prefix}.${subject}`, {
        callback: (err, msg) => {
          if (err) this.log?.warn({ err, subject }, 'NATS subscription error');
          else this.deliver(subject, msg.data);
        },
      });
      this.subs.set(subject, sub);
    } catch (ex) {
      throw new ConfabError('bus_unavailable', `subscribe failed: ${(ex as Error).message}`, { cause: ex });
    }
  }

  protected unlisten(subject: string): void {
    const sub = this.subs.get(subject);
    this.subs.delete(subject);
    try {
      sub?.unsubscribe();
    } catch {
      // connection already closed
    }
  }

  protected override async flushTransport(): Promise<void> {
    this.link.assertUp();
    try {
      await this.link.nc.flush();
    } catch (e) {
      throw new ConfabError('bus_unavailable', `flush failed: ${(e as Error).message}`, { cause: e });
    }
  }

  protected async shutdown(): Promise<void> {
    for (const subject of [...this.subs.keys()]) this.unlisten(subject);
    this.offLink();
    await this.link.release();
  }
}
