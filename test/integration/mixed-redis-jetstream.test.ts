/**
 * Redis pub/sub bus + JetStream history (CONFAB_BUS=redis, CONFAB_HISTORY=jetstream):
 * two `confab start` processes, the scenario of mixed-kit.ts. The history's
 * nats-server (file storage) is killed (-9) and started again: the stream and
 * its epoch survive, so a room nobody wrote to meanwhile continues its chain
 * with no reset.
 */
import assert from 'node:assert/strict';
import { mixedGatewaySuite } from './mixed-kit.js';

mixedGatewaySuite({
  title: 'gateway processes on a Redis bus with JetStream history',
  bus: 'redis',
  history: 'jetstream',
  startLine: /confab listening on \S+ \(node redis[AB], region local, bus redis, history nats\)/,
  storeDown: (b) => b.nats.stop('SIGKILL'),
  storeUp: (b) => b.nats.start(),
  afterStoreBack: async (quiet, room, epoch, seen) => {
    quiet[1]!.send({ t: 'pub', id: 'q1', room, text: 'after' });
    for (const c of quiet) {
      const m = await c.next('msg', (f) => f.id === 'q1', 15_000);
      assert.equal(m.epoch, epoch, 'the stream survived: same epoch');
      assert.equal(m.prev, seen, 'the chain continues from the message before the outage');
      assert.equal(c.all('joined').filter((j) => j.room === room && j.reset).length, 0, 'no reset');
    }
  },
});
