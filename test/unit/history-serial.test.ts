/** serial(): the one per-room append chain (PostgreSQL and JetStream histories, a connection's publishes). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serial } from '../../src/history/common.js';

test('serial: one room runs in call order, also past a failure; other rooms run side by side; idle rooms are forgotten', async () => {
  const tails = new Map<string, Promise<unknown>>();
  const log: string[] = [];
  let releaseA!: () => void;
  const gateA = new Promise<void>((r) => (releaseA = r));
  const a1 = serial(tails, 'a', async () => {
    await gateA;
    log.push('a1');
    throw new Error('a1 failed');
  });
  const a2 = serial(tails, 'a', () => {
    log.push('a2');
    return Promise.resolve(2);
  });
  const b1 = serial(tails, 'b', () => {
    log.push('b1');
    return Promise.resolve('b');
  });
  assert.equal(await b1, 'b', 'room b does not wait for room a');
  assert.deepEqual(log, ['b1']);
  releaseA();
  await assert.rejects(a1, /a1 failed/);
  assert.equal(await a2, 2, 'the next append of a runs after a failure');
  assert.deepEqual(log, ['b1', 'a1', 'a2']);
  await Promise.allSettled([...tails.values()]);
  await new Promise((r) => setImmediate(r));
  assert.equal(tails.size, 0, 'idle chains are removed');
});
