/**
 * NATS adapters: a core-NATS Bus and a JetStream History. Together
 * (CONFAB_BUS=nats with CONFAB_HISTORY=jetstream, the default with NATS_URL or
 * NATSAPPHOST) they share one connection; either can also be opened alone
 * beside an adapter on another broker (src/adapters.ts picks). Settings beyond
 * NATS_URL/NATSAPPHOST are read from the environment here
 * (src/nats/options.ts; documented in docs/nats.md).
 */
import type pino from 'pino';
import type { Bus } from '../bus/types.js';
import type { Config } from '../config/config.js';
import type { History } from '../history/types.js';
import { NatsBus } from './bus.js';
import { JetStreamHistory, type ReplayMode } from './history.js';
import { NatsLink } from './link.js';
import { readNatsSettings } from './options.js';
import { isSharded, ShardedHistory } from './shards.js';
import type { HistoryInspect } from '../history/types.js';
import type { LookupAll } from './discovery.js';

export { NatsBus } from './bus.js';
export { JetStreamHistory } from './history.js';
export { NatsLink } from './link.js';
export { readNatsSettings, readShardSettings, type NatsSettings, type StreamSettings } from './options.js';
export { ShardedHistory, homeRegion, streamOf, type ShardSettings } from './shards.js';

/** The JetStream history: the one stream, or one stream per home region and shard (src/nats/shards.ts). */
export type NatsHistory = (JetStreamHistory | ShardedHistory) & History & HistoryInspect;

async function openHistory(link: NatsLink, config: Config, extras: NatsAdapterExtras, log: pino.Logger): Promise<NatsHistory> {
  const opts = { node: config.node, replay: extras.replay ?? 'auto', roomMaxBytes: config.historyMaxBytes };
  const shards = link.settings.shards;
  return isSharded(shards) ? ShardedHistory.open(link, shards, { ...opts, region: config.region }, log) : JetStreamHistory.open(link, opts, log);
}
export { resolveAppHost } from './discovery.js';
export { renderNatsConfig, writeNatsConfigAtomic } from './config-gen.js';

export interface NatsAdapterExtras {
  /** Environment to read NATS_* / CONFAB_STREAM_* from (default process.env). */
  env?: Record<string, string | undefined>;
  /** DNS lookup used for NATSAPPHOST (tests). */
  lookupAll?: LookupAll;
  replay?: ReplayMode | 'auto';
}

/** Connect once and let `build` make the parts that hold the connection; the opener's reference is dropped after. */
async function withLink<T>(config: Config, logger: pino.Logger, extras: NatsAdapterExtras, build: (link: NatsLink, log: pino.Logger) => Promise<T>): Promise<T> {
  const settings = readNatsSettings(config, extras.env ?? process.env);
  const log = logger.child({ component: 'nats', node: config.node });
  const link = await NatsLink.open(settings, config.node, log, extras.lookupAll);
  link.acquire();
  try {
    return await build(link, log);
  } finally {
    // the parts built now hold the connection (or, when building failed, nobody does and it closes)
    await link.release();
  }
}

/** The core-NATS bus alone, on its own connection. Rejects with ConfabError('bus_unavailable') when no server answers. */
export async function createNatsBus(config: Config, logger: pino.Logger, extras: NatsAdapterExtras = {}): Promise<NatsBus & Bus> {
  return withLink(config, logger, extras, async (link, log) => new NatsBus(link, link.settings.prefix, log));
}

/**
 * The JetStream history alone, on its own connection (the stream is ensured first). `link` is that
 * connection: its status says whether the history can be reached (a gateway whose bus is elsewhere follows it).
 */
export async function createJetStreamHistory(
  config: Config,
  logger: pino.Logger,
  extras: NatsAdapterExtras = {},
): Promise<{ history: NatsHistory; link: NatsLink }> {
  return withLink(config, logger, extras, async (link, log) => ({ history: await openHistory(link, config, extras, log), link }));
}

/** Connect to NATS, ensure the history stream, and return the bus and history (one shared connection). */
export async function createNatsAdapters(
  config: Config,
  logger: pino.Logger,
  extras: NatsAdapterExtras = {},
): Promise<{ bus: NatsBus & Bus; history: NatsHistory }> {
  return withLink(config, logger, extras, async (link, log) => {
    const bus = new NatsBus(link, link.settings.prefix, log);
    let history: NatsHistory;
    try {
      history = await openHistory(link, config, extras, log);
    } catch (e) {
      await bus.close();
      throw e;
    }
    return { bus, history };
  });
}
