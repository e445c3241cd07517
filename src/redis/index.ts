import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import type { Bus } from '../bus/types.js';
import type { History } from '../history/types.js';
import { ConfigError } from '../config/config.js';

/** Placeholder until the Redis adapter lands. */
export async function createRedisAdapters(_config: Config, _log: Logger): Promise<{ bus: Bus; history: History }> {
  throw new ConfigError('REDIS_URL', 'the Redis adapter is not available in this build');
}
