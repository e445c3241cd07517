/**
 * Finding the subscriptions of gateways that are gone (`confab pubsub gc`). A gateway deletes its
 * `ID_<node>` subscription when it drains; one that crashed (kill -9, a lost VM) leaves it behind,
 * where it keeps collecting every message of the topic until Pub/Sub expires it
 * (CONFAB_PUBSUB_EXPIRATION_S of inactivity; Pub/Sub's own default would be 31 days).
 *
 * A node is alive when it is heard: every gateway publishes a presence heartbeat on the topic every
 * 2 s. gc lists the topic's subscriptions, opens a short-lived subscription of its own (`confab-gc-<random>`, filtered by Pub/Sub to
 * presence messages only), listens for a window (default 10 s: five heartbeats), reads the origin
 * node of each message from the envelope header (the body is never decoded), deletes its own
 * subscription, and reports every `ID_*` subscription of the topic whose node was not heard. Without
 * `dryRun` those are deleted. A live gateway whose subscription is deleted by mistake (e.g. it could
 * not reach Pub/Sub during the whole window) notices at its next health probe and creates it again,
 * so a wrong verdict costs a short bus outage on that node, never a lost subscription.
 */
import { randomBytes } from 'node:crypto';
import type { Message, PubSub } from '@google-cloud/pubsub';
import { peekEnvelope } from '../bus/envelope.js';
import { Grpc, grpcCode } from './bus.js';
import { nodeOfSubscription, subscriptionName } from './options.js';

export interface GcOptions {
  client: PubSub;
  topic: string;
  /** How long to listen for heartbeats (default 10 000 ms). */
  windowMs?: number;
  /** Report only; delete nothing. */
  dryRun?: boolean;
  timeoutMs?: number;
}

export interface GcEntry {
  subscription: string;
  node: string;
  /** heard: alive, kept; gone: no heartbeat in the window (deleted unless dry run). */
  state: 'heard' | 'gone';
  deleted: boolean;
  error?: string;
}

export interface GcResult {
  topic: string;
  windowMs: number;
  heard: string[];
  entries: GcEntry[];
}

export async function gcSubscriptions(o: GcOptions): Promise<GcResult> {
  const windowMs = o.windowMs ?? 10_000;
  // only a timeout: google-gax writes maxRetries into the client's shared retry settings, which then refuse every call that has a total timeout
  const gax = { timeout: o.timeoutMs ?? 10_000 };
  const topic = o.client.topic(o.topic);
  try {
    await topic.getMetadata(gax);
  } catch (e) {
    if (grpcCode(e) === Grpc.NOT_FOUND) return { topic: o.topic, windowMs, heard: [], entries: [] };
    throw e;
  }

  // listed before listening: a gateway that starts later is not judged (one listed now is heard within the window)
  const [subs] = await topic.getSubscriptions({ gaxOpts: gax });
  const heard = new Set<string>();
  const probeName = `confab-gc-${randomBytes(6).toString('hex')}`;
  const [probe] = await topic.createSubscription(probeName, {
    gaxOpts: gax,
    filter: 'attributes.k = "presence"',
    expirationPolicy: { ttl: { seconds: 86_400 } },
    messageRetentionDuration: { seconds: 600 },
  });
  try {
    probe.on('message', (m: Message) => {
      m.ack();
      const h = peekEnvelope(m.data);
      if (h?.kind === 'presence') heard.add(h.origin);
    });
    probe.on('error', () => undefined);
    await new Promise((r) => setTimeout(r, windowMs));
  } finally {
    probe.removeAllListeners('message');
    await probe.close().catch(() => undefined);
    await probe.delete(gax).catch(() => undefined);
  }
  const alive = new Set([...heard].map((n) => subscriptionName(n)));

  const entries: GcEntry[] = [];
  for (const s of subs) {
    const short = s.name.slice(s.name.lastIndexOf('/') + 1);
    const node = nodeOfSubscription(short);
    if (node === undefined) continue;
    if (alive.has(short)) {
      entries.push({ subscription: short, node, state: 'heard', deleted: false });
      continue;
    }
    const e: GcEntry = { subscription: short, node, state: 'gone', deleted: false };
    if (!o.dryRun) {
      try {
        await s.delete(gax);
        e.deleted = true;
      } catch (err) {
        if (grpcCode(err) === Grpc.NOT_FOUND) e.deleted = true; // gone meanwhile (drained, expired)
        else e.error = (err as Error).message;
      }
    }
    entries.push(e);
  }
  entries.sort((a, b) => a.subscription.localeCompare(b.subscription));
  return { topic: o.topic, windowMs, heard: [...heard].sort(), entries };
}
