/**
 * Redis adapters: a pub/sub Bus (publisher + dedicated subscriber connection)
 * and a Streams History (its own command connection). Each can be opened alone
 * (CONFAB_BUS=redis with another history, CONFAB_HISTORY=redis with another bus;
 * src/adapters.ts picks) or both together. Settings beyond REDIS_URL are read
 * from the environment here (src/redis/options.ts; documented in docs/redis.md).
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
 * The Redis pub/sub bus alone. Validates the settings (ConfigError naming the variable); rejects with
 * ConfabError('bus_unavailable') when Redis cannot be reached within CONFAB_REDIS_CONNECT_TIMEOUT_MS.
 */
export async function createRedisBus(config: Config, logger: pino.Logger, extras: RedisAdapterExtras = {}): Promise<RedisBus & Bus> {
  const settings = readRedisSettings(config, extras.env ?? process.env);
  return RedisBus.open(settings, settings.prefix, logger.child({ component: 'redis', node: config.node }), config.node);
}

/** The Redis Streams history alone (its `status` follows its connection); errors as createRedisBus. */
export async function createRedisHistory(config: Config, logger: pino.Logger, extras: RedisAdapterExtras = {}): Promise<RedisHistory & History> {
  const settings = readRedisSettings(config, extras.env ?? process.env);
  return RedisHistory.open(settings, logger.child({ component: 'redis', node: config.node }), config.node);
}

/** Bus and history on one Redis (CONFAB_BUS=redis, CONFAB_HISTORY=redis): errors as createRedisBus. */
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
