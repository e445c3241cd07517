/** Throttle: at most one warning per interval (Redis connection errors, PostgreSQL idle-client errors), with the count held back. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Throttle } from '../../src/shared/throttle.js';

test('throttle: the first passes, the rest of the interval is held back and counted in the next that passes', () => {
  const t = new Throttle(1000);
  assert.deepEqual(t.pass(0), { held: 0 });
  assert.equal(t.pass(1), undefined);
  assert.equal(t.pass(999), undefined);
  assert.deepEqual(t.pass(1000), { held: 2 });
  assert.equal(t.pass(1500), undefined);
  assert.deepEqual(t.pass(5000), { held: 1 });
  assert.deepEqual(t.pass(6000), { held: 0 });
});
