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

historyContract('memory', async (r) => {
  const history = new MemoryHistory(r);
  return { history, sweep: () => history.sweep(), close: () => history.close() };
});

historyContract('lmdb', async (r) => {
  const dir = mkdtempSync(join(tmpdir(), 'confab-lmdb-'));
  let history = new LmdbHistory({ dataDir: dir, limit: r.limit, retention: r });
  const fx = {
    history,
    sweep: () => history.sweep(),
    reopen: async () => {
      await history.close();
      history = new LmdbHistory({ dataDir: dir, limit: r.limit, retention: r });
      return history;
    },
    close: async () => {
      await history.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return fx;
});
