/**
 * Opens the Bus and the History the config chose (CONFAB_BUS, CONFAB_HISTORY; src/config/config.ts
 * refuses the pairs that cannot keep the guarantees). A bus and history on one broker share what
 * they can: NATS bus + JetStream history one connection, Redis bus + Streams history one server.
 * When the history's store is on another broker than the bus (or the bus is in-process), the gateway
 * sees one status for both (StoreGatedBus): a node that cannot reach its history is not ready either.
 */
import type { Logger } from 'pino';
import { MemoryBus } from './bus/memory.js';
import type { Bus, BusHandler, BusStatus, BusSubscription } from './bus/types.js';
import type { Config, Env } from './config/config.js';
import { LmdbHistory } from './history/lmdb.js';
import { MemoryHistory } from './history/memory.js';
import { retentionOf } from './history/retention.js';
import type { History } from './history/types.js';
import { ConfabError } from './protocol/codes.js';

export interface Adapters {
  bus: Bus;
  history: History;
}

export interface AdapterOptions {
  /** Environment for the adapters' own settings (NATS_*, CONFAB_STREAM_*, CONFAB_REDIS_*); default process.env. */
  env?: Env;
}

/** Whether a remote store can be reached now; a NatsLink, a RedisHistory and a PostgresHistory are ones. */
export interface Reachability {
  readonly status: BusStatus;
  onStatus(listener: (status: BusStatus) => void): () => void;
}

/**
 * A bus whose status is 'up' only while its broker and the history's store are both reachable.
 * While the store is unreachable the gateway behaves as during a bus outage: /readyz fails,
 * publishes are refused with bus_unavailable, presence holds, and when both are back every room
 * with members re-reads its history (catches up, notices a new epoch) before answering from memory.
 * Everything else is the inner bus's; closing it leaves the store alone (the History closes that).
 */
export class StoreGatedBus implements Bus {
  private readonly listeners = new Set<(status: BusStatus) => void>();
  private last: BusStatus;
  private readonly offs: (() => void)[];
  private closed = false;

  constructor(readonly inner: Bus, private readonly store: Reachability, private readonly log?: Logger) {
    this.last = this.status;
    this.offs = [inner.onStatus(() => this.update()), store.onStatus(() => this.update())];
  }

  get kind(): string {
    return this.inner.kind;
  }

  get status(): BusStatus {
    return !this.closed && this.inner.status === 'up' && this.store.status === 'up' ? 'up' : 'down';
  }

  onStatus(listener: (status: BusStatus) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  publish(subject: string, data: Uint8Array): void {
    if (this.store.status !== 'up') throw new ConfabError('bus_unavailable', 'the history store is unreachable');
    if (this.closed) throw new ConfabError('bus_unavailable', 'the bus is closed');
    this.inner.publish(subject, data);
  }

  subscribe(subject: string, handler: BusHandler): BusSubscription {
    return this.inner.subscribe(subject, handler);
  }

  flush(): Promise<void> {
    return this.inner.flush();
  }

  subscriptionCount(): number {
    return this.inner.subscriptionCount();
  }

  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      for (const off of this.offs) off();
    }
    await this.inner.close();
    this.update();
  }

  private update(): void {
    const now = this.status;
    if (now === this.last) return;
    this.last = now;
    this.log?.info({ status: now, bus: this.inner.status, history: this.store.status }, 'bus + history status');
    for (const l of [...this.listeners]) {
      try {
        l(now);
      } catch (err) {
        this.log?.warn({ err }, 'bus status listener threw');
      }
    }
  }
}

/** Open the history the config names, with how to tell whether it can be reached (undefined: in this process). */
async function openHistory(config: Config, log: Logger, env: Env): Promise<{ history: History; reach?: Reachability }> {
  switch (config.history) {
    case 'lmdb':
      return { history: new LmdbHistory({ dataDir: config.dataDir, limit: config.historyLimit, durability: config.durability, retention: retentionOf(config), sweepMs: config.historySweepMs }) };
    case 'memory':
      return { history: new MemoryHistory(retentionOf(config), config.historySweepMs) };
    case 'jetstream': {
      const { createJetStreamHistory } = await import('./nats/index.js');
      const { history, link } = await createJetStreamHistory(config, log, { env });
      return { history, reach: link };
    }
    case 'redis': {
      const { createRedisHistory } = await import('./redis/index.js');
      const history = await createRedisHistory(config, log, { env });
      return { history, reach: history };
    }
    case 'postgres': {
      const { createPostgresHistory } = await import('./postgres/index.js');
      const history = await createPostgresHistory(config, log, { env });
      return { history, reach: history };
    }
  }
}

async function openBus(config: Config, log: Logger, env: Env): Promise<Bus> {
  switch (config.bus) {
    case 'memory':
      return new MemoryBus();
    case 'nats': {
      const { createNatsBus } = await import('./nats/index.js');
      return createNatsBus(config, log, { env });
    }
    case 'redis': {
      const { createRedisBus } = await import('./redis/index.js');
      return createRedisBus(config, log, { env });
    }
    case 'pubsub': {
      const { createPubSubBus } = await import('./pubsub/index.js');
      return createPubSubBus(config, log, { env });
    }
  }
}

/**
 * Open the configured bus and history. Rejects with ConfigError (a bad adapter setting, naming the
 * variable) or ConfabError('bus_unavailable') when a broker cannot be reached; nothing stays open then.
 */
export async function createAdapters(config: Config, log: Logger, opts: AdapterOptions = {}): Promise<Adapters> {
  const env = opts.env ?? process.env;
  // one broker for both: as before the two were separate choices
  if (config.bus === 'nats' && config.history === 'jetstream') {
    const { createNatsAdapters } = await import('./nats/index.js');
    return createNatsAdapters(config, log, { env });
  }
  if (config.bus === 'redis' && config.history === 'redis') {
    const { createRedisAdapters } = await import('./redis/index.js');
    return createRedisAdapters(config, log, { env });
  }
  const { history, reach } = await openHistory(config, log, env);
  let bus: Bus;
  try {
    bus = await openBus(config, log, env);
  } catch (e) {
    await history.close().catch((err: unknown) => log.warn({ err }, 'closing the history after the bus failed to open'));
    throw e;
  }
  if (reach) log.info({ bus: config.bus, history: config.history }, 'bus and history on different brokers: readiness follows both');
  return { bus: reach ? new StoreGatedBus(bus, reach, log) : bus, history };
}
