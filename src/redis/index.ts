/**
 * Redis adapters: a pub/sub Bus (publisher + dedicated subscriber connection)
 * and a Streams History (its own command connection). Used when REDIS_URL is
 * set or CONFAB_BUS=redis. Settings beyond REDIS_URL are read from the
 * environment here (src/redis/options.ts; documented in docs/redis.md).
 */
import type pino from 'pino';
import type { Bus } from '../bus/types.js';
import type { Config } from '../config/config.js';
import type { History } from '../history/types.js';
import { RedisBus } from './bus.js';
import { RedisHistory } from './history.js';
import { readRedisSettings } from './options.js';

export { RedisBus } from './bus.js';
export { RedisHistory } from './history.js';
export { readRedisSettings, type RedisSettings, type EpochPolicy } from './options.js';

export interface RedisAdapterExtras {
  /** Environment to read CONFAB_REDIS_* from (default process.env). */
  env?: Record<string, string | undefined>;
}

/**
 * Validate the settings (ConfigError naming the variable), connect, and return the bus and history.
 * Rejects with ConfabError('bus_unavailable') when Redis cannot be reached within CONFAB_REDIS_CONNECT_TIMEOUT_MS.
 */
export async function createRedisAdapters(
  config: Config,
  logger: pino.Logger,
  extras: RedisAdapterExtras = {},
): Promise<{ bus: RedisBus & Bus; history: RedisHistory & History }> {
  const settings = readRedisSettings(config, extras.env ?? process.env);
  const log = logger.child({ component: 'redis', node: config.node });
  const bus = await RedisBus.open(settings, settings.prefix, log, config.node);
  try {
    const history = await RedisHistory.open(settings, log, config.node);
    return { bus, history };
  } catch (e) {
    await bus.close();
    throw e;
  }
}
