import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryBroker, MemoryBus } from '../../src/bus/memory.js';
import { LmdbHistory } from '../../src/history/lmdb.js';
import { MemoryHistory } from '../../src/history/memory.js';
import { busContract } from './bus.contract.js';
import { historyContract } from './history.contract.js';

busContract('memory', async () => {
  const broker = new MemoryBroker();
  const buses = [new MemoryBus(broker), new MemoryBus(broker)];
  return {
    buses,
    outage: { down: async () => broker.setDown(true), up: async () => broker.setDown(false) },
    close: async () => {
      for (const b of buses) await b.close();
    },
  };
});

historyContract('memory', async ({ limit }) => {
  const history = new MemoryHistory(limit);
  return { history, close: () => history.close() };
});

historyContract('lmdb', async ({ limit }) => {
  const dir = mkdtempSync(join(tmpdir(), 'confab-lmdb-'));
  let history = new LmdbHistory({ dataDir: dir, limit });
  const fx = {
    history,
    reopen: async () => {
      await history.close();
      history = new LmdbHistory({ dataDir: dir, limit });
      return history;
    },
    close: async () => {
      await history.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return fx;
});
