/**
 * NATS bus + Redis Streams history (CONFAB_BUS=nats, CONFAB_HISTORY=redis):
 * two `confab start` processes, the scenario of mixed-kit.ts. The history's
 * Redis runs without persistence and is killed (-9): it comes back empty, so
 * members of a room nobody wrote to meanwhile must be told `reset` under a new
 * epoch by themselves (the gateways re-read every room when the history is back),
 * never keep answering from the old epoch.
 */
import assert from 'node:assert/strict';
import { mixedGatewaySuite } from './mixed-kit.js';

mixedGatewaySuite({
  title: 'gateway processes on a NATS bus with Redis Streams history',
  bus: 'nats',
  history: 'redis',
  startLine: /confab listening on \S+ \(node nats[AB], region local, bus nats, history redis\)/,
  storeDown: (b) => b.redis.kill(),
  storeUp: (b) => b.redis.start(),
  afterStoreBack: async (quiet, room, epoch) => {
    for (const c of quiet) {
      const j = await c.next('joined', (f) => f.room === room && f.reset === true, 15_000);
      assert.notEqual(j.epoch, epoch, 'Redis lost everything: a new epoch');
      assert.equal(j.last, 0);
    }
  },
});
