/**
 * Redis pub/sub Bus. A publisher connection and a dedicated subscriber
 * connection; subject `s` travels on channel `<prefix>:s`. Status is 'up' only
 * while both connections are ready and every subscription has been re-made
 * (this adapter resubscribes itself after a reconnect, acknowledged, instead of
 * relying on ioredis' fire-and-forget autoResubscribe). Redis pub/sub is
 * at-most-once: a message published while a node is disconnected is not
 * delivered to it; the gateway recovers such holes from History by `prev`.
 */
import type { Redis } from 'ioredis';
import type pino from 'pino';
import { SubjectBus } from '../bus/subject-bus.js';
import { ConfabError } from '../protocol/codes.js';
import { connectReady, logConnectionErrors, openConnection, quitConnection, startHealthPings, type ConnSettings } from './connection.js';

export class RedisBus extends SubjectBus {
  readonly kind = 'redis';
  private readonly pub: Redis;
  private readonly sub: Redis;
  /** Subscribe/unsubscribe commands not yet acknowledged (flush waits for them). */
  private readonly pending = new Set<Promise<unknown>>();
  private subReady = false;
  private stopPings: () => void = () => {};
  /** Bumped on every subscriber (re)connect so a stale resubscribe cannot mark the bus up. */
  private generation = 0;

  private constructor(private readonly s: ConnSettings, private readonly prefix: string, log: pino.Logger, node: string) {
    super('down', log);
    this.pub = openConnection(s, `confab-${node}-pub`, { commandTimeout: false, pipeline: true });
    this.sub = openConnection(s, `confab-${node}-sub`);
  }

  /** Connect both connections; rejects with bus_unavailable when Redis is unreachable. */
  static async open(s: ConnSettings, prefix: string, log: pino.Logger, node: string): Promise<RedisBus> {
    const bus = new RedisBus(s, prefix, log, node);
    bus.wire(log);
    try {
      await Promise.all([connectReady(bus.pub, s, 'publisher'), connectReady(bus.sub, s, 'subscriber')]);
    } catch (e) {
      await bus.close();
      throw e;
    }
    await bus.resubscribe();
    return bus;
  }

  private wire(log: pino.Logger): void {
    logConnectionErrors(this.pub, log, 'pub');
    logConnectionErrors(this.sub, log, 'sub');
    for (const ev of ['ready', 'close', 'end', 'reconnecting']) this.pub.on(ev, () => this.update());
    this.sub.on('ready', () => {
      void this.resubscribe();
    });
    for (const ev of ['close', 'end', 'reconnecting']) {
      this.sub.on(ev, () => {
        this.subReady = false;
        this.generation++;
        this.update();
      });
    }
    this.sub.on('messageBuffer', (channel: Buffer, message: Buffer) => this.dispatch(channel, message));
    this.stopPings = startHealthPings([this.pub, this.sub], this.s, log);
  }

  /** Subscribe every current subject on a fresh subscriber connection, then report up. */
  private async resubscribe(): Promise<void> {
    if (this.closed || this.sub.status !== 'ready') return;
    const gen = ++this.generation;
    const channels = this.subjects().map((s) => this.channel(s));
    try {
      if (channels.length > 0) await this.track(this.sub.subscribe(...channels));
    } catch (err) {
      this.log?.warn({ err: (err as Error).message }, 'redis resubscribe failed; reconnecting');
      if (gen === this.generation && this.sub.status === 'ready') this.sub.disconnect(true);
      return;
    }
    if (gen !== this.generation || this.closed) return;
    this.subReady = true;
    this.update();
  }

  private channel(subject: string): string {
    return `${this.prefix}:${subject}`;
  }

  private dispatch(channel: Buffer, message: Buffer): void {
    const name = channel.toString();
    if (name.startsWith(`${this.prefix}:`)) this.deliver(name.slice(this.prefix.length + 1), message);
  }

  private track<T>(p: Promise<T>): Promise<T> {
    const q = p.finally(() => this.pending.delete(q));
    this.pending.add(q);
    q.catch(() => undefined);
    return p;
  }

  private update(): void {
    const was = this.status;
    this.setStatus(this.subReady && this.pub.status === 'ready' && this.sub.status === 'ready' ? 'up' : 'down');
    if (this.status !== was) this.log?.info({ status: this.status }, 'redis bus status');
  }

  protected send(subject: string, data: Uint8Array): void {
    if (this.pub.status !== 'ready') throw new ConfabError('bus_unavailable');
    const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    this.pub.publish(this.channel(subject), buf).catch((err: unknown) => {
      // the connection dropped with this publish in flight: it may or may not have been delivered
      this.log?.warn({ err: (err as Error).message, subject }, 'redis publish failed');
    });
  }

  // while disconnected a subject is subscribed by resubscribe() on the next 'ready'
  protected listen(subject: string): void {
    if (this.sub.status === 'ready') this.track(this.sub.subscribe(this.channel(subject))).catch(() => this.dropOnFailure());
  }

  protected unlisten(subject: string): void {
    if (this.sub.status === 'ready') this.track(this.sub.unsubscribe(this.channel(subject))).catch(() => this.dropOnFailure());
  }

  /** A failed (un)subscribe leaves the subscription set unknown: reconnect, which resubscribes from scratch. */
  private dropOnFailure(): void {
    if (this.closed || this.sub.status !== 'ready') return;
    this.log?.warn('redis (un)subscribe failed; reconnecting the subscriber');
    this.sub.disconnect(true);
  }

  protected override async flushTransport(): Promise<void> {
    const results = await Promise.allSettled([...this.pending, this.pub.ping()]);
    if (results.some((r) => r.status === 'rejected') || this.status !== 'up') throw new ConfabError('bus_unavailable', 'redis flush failed');
  }

  protected async shutdown(): Promise<void> {
    this.stopPings();
    const t = this.s.commandTimeoutMs;
    await Promise.all([quitConnection(this.pub, t), quitConnection(this.sub, t)]);
  }
}
