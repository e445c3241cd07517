/**
 * Google Cloud Pub/Sub Bus (the seed's alert service model): one topic for every gateway, one
 * subscription per gateway named `ID_<node id>`, created at start (a left-over one of the same name
 * is replaced) and deleted when the bus closes (drain, shutdown). Every node receives every message,
 * its own included; the subject travels as the `s` attribute and SubjectBus hands a message only to
 * local handlers of its subject, so a room message reaches the sockets of a room only on nodes with
 * members there (interest filtered locally; why not subscription filters or a topic per room shard:
 * docs/pubsub.md). Messages carry an ordering key per (publisher, subject), so one node's messages on
 * one subject arrive in publish order, as the Bus contract promises; the order of a room across nodes
 * comes from History offsets, not from Pub/Sub.
 *
 * Status: up after the topic and subscription exist and while a health probe (reading this node's
 * subscription, every CONFAB_PUBSUB_HEALTH_MS, bounded by CONFAB_PUBSUB_TIMEOUT_MS) succeeds. A failed
 * probe, a publish that fails with UNAVAILABLE or DEADLINE_EXCEEDED, or a pull stream that ends
 * brings a probe at once; while down publishes are refused with ConfabError('bus_unavailable'). When
 * a probe succeeds again the pull stream is reopened (the client's own retry would wait up to a
 * minute); a subscription or topic found missing (emulator restarted, deleted by hand or by
 * `confab pubsub gc`, expired) is created again, then the bus reports up. Messages are acknowledged on
 * receipt: the bus is at-most-once like NATS core; History fills any hole.
 */
import { PubSub, type ClientConfig, type Message, type Subscription, type Topic } from '@google-cloud/pubsub';
import type pino from 'pino';
import { peekEnvelope } from '../bus/envelope.js';
import { SubjectBus } from '../bus/subject-bus.js';
import { ConfabError } from '../protocol/codes.js';
import { LABEL_KIND, subscriptionName, type PubSubSettings } from './options.js';

/** gRPC status codes (the Pub/Sub client's errors carry them as `code`). */
export const Grpc = { DEADLINE_EXCEEDED: 4, NOT_FOUND: 5, ALREADY_EXISTS: 6, PERMISSION_DENIED: 7, UNAVAILABLE: 14, UNAUTHENTICATED: 16 } as const;

export function grpcCode(err: unknown): number | undefined {
  const c = (err as { code?: unknown } | null)?.code;
  return typeof c === 'number' ? c : undefined;
}

/** A client for `s`: the emulator in plain text, or Google with the key file / default credentials. */
export function pubsubClient(s: PubSubSettings): PubSub {
  const opts: ClientConfig & Record<`grpc.${string}`, number> = {
    projectId: s.projectId,
    ...(s.emulatorHost ? { apiEndpoint: s.emulatorHost, emulatorMode: true } : {}),
    ...(s.keyFilename ? { keyFilename: s.keyFilename } : {}),
    // gRPC channel options (passed through by google-gax): after an outage reconnect within ~2 s, not gRPC's default of up to 2 min
    'grpc.initial_reconnect_backoff_ms': 250,
    'grpc.max_reconnect_backoff_ms': 2000,
  };
  return new PubSub(opts);
}

/** Label values: lowercase letters, digits, `_` and `-`, at most 63. */
export function labelValue(v: string): string {
  return v.toLowerCase().replace(/[^a-z0-9_-]/g, '_').slice(0, 63);
}

/** Longest the admin calls at start (topic, subscription) may take, when CONFAB_PUBSUB_TIMEOUT_MS is shorter. */
const SETUP_TIMEOUT_MS = 10_000;

export class PubSubBus extends SubjectBus {
  readonly kind = 'pubsub';
  readonly subscriptionName: string;
  private readonly client: PubSub;
  private readonly topic: Topic;
  private sub: Subscription | undefined;
  private timer: NodeJS.Timeout | undefined;
  private probing: Promise<void> | undefined;
  /** The pull stream must be reopened before the bus is up again. */
  private streamBroken = false;
  private readonly inflight = new Set<Promise<unknown>>();
  private readonly gax: { timeout: number };
  /** Admin calls at start: a first call may wait for a connection (and a cold server), so it gets longer. */
  private readonly setupGax: { timeout: number };

  private constructor(private readonly s: PubSubSettings, private readonly node: string, log: pino.Logger) {
    super('down', log);
    this.subscriptionName = subscriptionName(node);
    this.client = pubsubClient(s);
    this.gax = { timeout: s.timeoutMs };
    this.setupGax = { timeout: Math.max(s.timeoutMs, SETUP_TIMEOUT_MS) };
    this.topic = this.client.topic(s.topic, {
      messageOrdering: true,
      batching: { maxMessages: 100, maxMilliseconds: s.batchMs },
      gaxOpts: { timeout: s.timeoutMs },
    });
  }

  /**
   * Ensure the topic and this node's subscription, start receiving, report up. Rejects with
   * ConfabError('bus_unavailable') when Pub/Sub cannot be reached or refuses (permissions), closing what it opened.
   */
  static async open(s: PubSubSettings, node: string, log: pino.Logger): Promise<PubSubBus> {
    const bus = new PubSubBus(s, node, log);
    try {
      await bus.ensure(true, bus.setupGax);
    } catch (e) {
      await bus.close().catch(() => undefined);
      throw new ConfabError('bus_unavailable', `Pub/Sub: cannot set up topic ${s.topic} and subscription ${bus.subscriptionName}: ${(e as Error).message}`, { cause: e });
    }
    bus.setStatus('up');
    bus.timer = setInterval(() => bus.probe(), s.healthMs);
    bus.timer.unref();
    return bus;
  }

  /** The topic (created if missing) and this node's subscription (created; `fresh`: a left-over one is replaced), then the pull stream. */
  private async ensure(fresh: boolean, gax = this.gax): Promise<void> {
    try {
      await this.topic.create(gax);
    } catch (e) {
      if (grpcCode(e) !== Grpc.ALREADY_EXISTS) throw e;
    }
    const sub = this.topic.subscription(this.subscriptionName);
    const create = () =>
      sub.create({
        gaxOpts: gax,
        enableMessageOrdering: true,
        ackDeadlineSeconds: 10,
        messageRetentionDuration: { seconds: this.s.retentionSec },
        expirationPolicy: { ttl: { seconds: this.s.expirationSec } },
        labels: { confab: LABEL_KIND, topic: labelValue(this.s.topic) },
      });
    try {
      await create();
    } catch (e) {
      if (grpcCode(e) !== Grpc.ALREADY_EXISTS) throw e;
      if (fresh) {
        // a subscription of the same node id left by a crash: its backlog is old news, and its settings may differ
        this.log?.info({ subscription: this.subscriptionName }, 'Pub/Sub: replacing a left-over subscription of this node id');
        await sub.delete(gax);
        await create();
      }
    }
    this.startStream(sub);
  }

  private startStream(sub: Subscription): void {
    const old = this.sub;
    this.sub = sub;
    if (old && old !== sub) void this.stopStream(old);
    sub.setOptions({ flowControl: { maxMessages: 10_000, allowExcessMessages: true }, ackDeadline: 10 });
    sub.on('message', (m: Message) => this.onMessage(m));
    sub.on('error', (err: unknown) => {
      this.log?.warn({ err: (err as Error).message, code: grpcCode(err) }, 'Pub/Sub pull stream failed');
      this.streamBroken = true;
      this.probe();
    });
    sub.on('debug', (msg: { message: string; error?: unknown }) => {
      // a pull stream ended (the client retries it with a backoff of up to a minute): check now
      if (msg.error !== undefined && grpcCode(msg.error) !== undefined) this.probe();
    });
    if (!sub.isOpen) sub.open();
    this.streamBroken = false;
  }

  private async stopStream(sub: Subscription): Promise<void> {
    sub.removeAllListeners('message');
    sub.removeAllListeners('debug');
    sub.removeAllListeners('error');
    sub.on('error', () => undefined); // late errors of a stream being closed
    let t: NodeJS.Timeout | undefined;
    await Promise.race([sub.close().catch(() => undefined), new Promise((r) => (t = setTimeout(r, this.s.timeoutMs)))]);
    clearTimeout(t);
  }

  private onMessage(m: Message): void {
    m.ack();
    const subject = m.attributes?.s;
    if (subject && this.hasInterest(subject)) this.deliver(subject, m.data);
  }

  /** Check Pub/Sub now (one probe at a time); see the file comment for what each outcome does. */
  private probe(): void {
    if (this.closed || this.probing) return;
    this.probing = this.runProbe().finally(() => (this.probing = undefined));
  }

  private async runProbe(): Promise<void> {
    const sub = this.sub ?? this.topic.subscription(this.subscriptionName);
    try {
      const [meta] = await sub.getMetadata(this.gax);
      if (meta.topic !== this.topic.name) throw Object.assign(new Error('the topic of this subscription was deleted'), { code: Grpc.NOT_FOUND });
      if (this.closed) return;
      if (this.streamBroken || this.status === 'down') {
        // the client's own stream retry may be waiting up to a minute: reopen now
        this.startStream(this.topic.subscription(this.subscriptionName));
      }
      this.setStatus('up');
    } catch (e) {
      if (this.closed) return;
      const code = grpcCode(e);
      this.setStatus('down');
      this.streamBroken = true;
      this.log?.warn({ err: (e as Error).message, code }, 'Pub/Sub health probe failed; bus down');
      if (code === Grpc.NOT_FOUND) {
        // the subscription or topic is gone (emulator restart, deleted, expired): make them again
        try {
          await this.ensure(false);
          if (!this.closed) this.setStatus('up');
          this.log?.warn({ subscription: this.subscriptionName }, 'Pub/Sub: subscription created again; bus up');
        } catch (err) {
          this.log?.warn({ err: (err as Error).message }, 'Pub/Sub: cannot create the subscription again yet');
        }
      }
    }
  }

  protected send(subject: string, data: Uint8Array): void {
    const h = peekEnvelope(data);
    const attributes: Record<string, string> = { s: subject };
    if (h) {
      attributes.k = h.kind;
      attributes.o = h.origin;
    }
    const orderingKey = `${this.node}.${subject}`;
    const p = this.topic
      .publishMessage({ data: Buffer.from(data.buffer, data.byteOffset, data.byteLength), attributes, orderingKey })
      .catch((err: unknown) => {
        // a failed publish pauses its ordering key until resumed; the message is lost to the bus (History fills it)
        this.topic.resumePublishing(orderingKey);
        const code = grpcCode(err);
        this.log?.warn({ err: (err as Error).message, code, subject }, 'Pub/Sub publish failed');
        if (code !== undefined && code !== Grpc.ALREADY_EXISTS) this.probe();
        throw err;
      })
      .finally(() => this.inflight.delete(p));
    this.inflight.add(p);
    p.catch(() => undefined);
  }

  // every node receives the whole topic: interest is local (SubjectBus only delivers subjects with handlers)
  protected listen(): void {}
  protected unlisten(): void {}

  /** Resolves once every earlier publish was accepted by Pub/Sub; bus_unavailable if one failed. */
  protected override async flushTransport(): Promise<void> {
    const pending = [...this.inflight];
    const results = await Promise.allSettled(pending);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw new ConfabError('bus_unavailable', `Pub/Sub publish failed: ${String((failed.reason as Error)?.message ?? failed.reason)}`, { cause: failed.reason });
  }

  /** Stop receiving, wait (bounded) for publishes in flight, delete this node's subscription, close the client. */
  protected async shutdown(): Promise<void> {
    clearInterval(this.timer);
    const sub = this.sub;
    if (sub) await this.stopStream(sub);
    let t: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled([...this.inflight]), new Promise((r) => (t = setTimeout(r, this.s.timeoutMs)))]);
    clearTimeout(t);
    if (this.sub || sub) {
      try {
        await this.topic.subscription(this.subscriptionName).delete(this.gax);
        this.log?.info({ subscription: this.subscriptionName }, 'Pub/Sub: subscription deleted');
      } catch (e) {
        if (grpcCode(e) !== Grpc.NOT_FOUND) this.log?.warn({ err: (e as Error).message, subscription: this.subscriptionName }, 'Pub/Sub: could not delete this node\'s subscription (confab pubsub gc or its expiration removes it)');
      }
    }
    await this.client.close().catch(() => undefined);
  }
}
