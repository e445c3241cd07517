/**
 * NATS adapters: a core-NATS Bus and a JetStream History sharing one
 * connection. Used when NATS_URL or NATSAPPHOST is set (config.bus === 'nats').
 * Settings beyond NATS_URL/NATSAPPHOST are read from the environment here
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
import type { LookupAll } from './discovery.js';

export { NatsBus } from './bus.js';
export { JetStreamHistory } from './history.js';
export { NatsLink } from './link.js';
export { readNatsSettings, type NatsSettings, type StreamSettings } from './options.js';
export { resolveAppHost } from './discovery.js';
export { renderNatsConfig, writeNatsConfigAtomic } from './config-gen.js';

export interface NatsAdapterExtras {
  /** Environment to read NATS_* / CONFAB_STREAM_* from (default process.env). */
  env?: Record<string, string | undefined>;
  /** DNS lookup used for NATSAPPHOST (tests). */
  lookupAll?: LookupAll;
  replay?: ReplayMode | 'auto';
}

/** Connect to NATS, ensure the history stream, and return the bus and history (one shared connection). */
export async function createNatsAdapters(
  config: Config,
  logger: pino.Logger,
  extras: NatsAdapterExtras = {},
): Promise<{ bus: NatsBus & Bus; history: JetStreamHistory & History }> {
  const settings = readNatsSettings(config, extras.env ?? process.env);
  const log = logger.child({ component: 'nats', node: config.node });
  const link = await NatsLink.open(settings, config.node, log, extras.lookupAll);
  link.acquire();
  try {
    const bus = new NatsBus(link, settings.prefix, log);
    let history: JetStreamHistory;
    try {
      history = await JetStreamHistory.open(link, { node: config.node, replay: extras.replay ?? 'auto' }, log);
    } catch (e) {
      await bus.close();
      throw e;
    }
    return { bus, history };
  } finally {
    // the bus and history now hold the connection; drop the opener's reference
    await link.release();
  }
}
