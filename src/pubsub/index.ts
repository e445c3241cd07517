/**
 * Google Cloud Pub/Sub adapter: a Bus (CONFAB_BUS=pubsub) beside a History on another store
 * (CONFAB_HISTORY; src/adapters.ts picks and gates readiness on both). Settings are read from the
 * environment here (src/pubsub/options.ts; documented in docs/pubsub.md).
 */
import type pino from 'pino';
import type { Bus } from '../bus/types.js';
import type { Config } from '../config/config.js';
import { PubSubBus } from './bus.js';
import { readPubSubSettings } from './options.js';

export { PubSubBus, pubsubClient } from './bus.js';
export { readPubSubSettings, subscriptionName, nodeOfSubscription, type PubSubSettings } from './options.js';

export interface PubSubAdapterExtras {
  /** Environment to read GOOGLE_* / PUBSUB_* / CONFAB_PUBSUB_* from (default process.env). */
  env?: Record<string, string | undefined>;
}

/**
 * The Pub/Sub bus: topic ensured, this node's subscription `ID_<node>` created. Rejects with ConfigError
 * (a bad setting, naming the variable) or ConfabError('bus_unavailable') when Pub/Sub cannot be reached.
 */
export async function createPubSubBus(config: Config, logger: pino.Logger, extras: PubSubAdapterExtras = {}): Promise<PubSubBus & Bus> {
  const settings = readPubSubSettings(config, extras.env ?? process.env);
  return PubSubBus.open(settings, config.node, logger.child({ component: 'pubsub', node: config.node }));
}
