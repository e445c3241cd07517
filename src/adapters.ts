/** Picks the Bus and History adapters the config asks for. */
import type { Logger } from 'pino';
import { MemoryBus } from './bus/memory.js';
import type { Bus } from './bus/types.js';
import type { Config } from './config/config.js';
import { LmdbHistory } from './history/lmdb.js';
import type { History } from './history/types.js';

export interface Adapters {
  bus: Bus;
  history: History;
}

export async function createAdapters(config: Config, log: Logger): Promise<Adapters> {
  switch (config.bus) {
    case 'memory':
      return { bus: new MemoryBus(), history: new LmdbHistory({ dataDir: config.dataDir, limit: config.historyLimit, durability: config.durability }) };
    case 'nats': {
      const { createNatsAdapters } = await import('./nats/index.js');
      return createNatsAdapters(config, log);
    }
    case 'redis': {
      const { createRedisAdapters } = await import('./redis/index.js');
      return createRedisAdapters(config, log);
    }
  }
}
