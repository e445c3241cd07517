/**
 * The one Backoff (src/shared/backoff.ts) every retry loop uses: the SDK's reconnects, Redis
 * reconnects, JetStream appends and stream creation, the cluster supervisor's restarts, a room's
 * catch-up, PostgreSQL's down-probe, port rebinds. Bounds, jitter, reset, stateless delays.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Backoff, DEFAULT_BACKOFF, sleep } from '../../src/shared/backoff.js';

test('backoff: every delay stays within [minMs, maxMs] and the cap grows then saturates', () => {
  const b = new Backoff({ minMs: 500, maxMs: 20_000 });
  const caps: number[] = [];
  for (let i = 0; i < 200; i++) {
    const cap = b.capFor(b.attempt);
    caps.push(cap);
    const d = b.next();
    assert.ok(d >= 500 && d <= cap, `attempt ${i}: ${d} not in [500, ${cap}]`);
    assert.ok(d <= 20_000);
  }
  assert.equal(caps[0], 1000);
  assert.equal(caps[1], 2000);
  assert.equal(caps[5], 20_000);
  assert.equal(caps.at(-1), 20_000);
});

test('backoff: full jitter spans the whole range (random 0 gives min, random 1 gives the cap)', () => {
  const lo = new Backoff({ minMs: 500, maxMs: 20_000 }, () => 0);
  const hi = new Backoff({ minMs: 500, maxMs: 20_000 }, () => 1);
  for (let i = 0; i < 10; i++) {
    assert.equal(lo.next(), 500);
    assert.equal(hi.next(), Math.min(20_000, 500 * 2 ** (i + 1)));
  }
  // a random source out of [0, 1] is clamped, never a delay out of bounds
  assert.equal(new Backoff({ minMs: 10, maxMs: 100 }, () => -3).next(), 10);
  assert.equal(new Backoff({ minMs: 10, maxMs: 100 }, () => 7).next(), 20);
});

test('backoff: delays are spread, not lock-step', () => {
  const seen = new Set<number>();
  for (let i = 0; i < 50; i++) {
    const b = new Backoff();
    for (let k = 0; k < 6; k++) b.next();
    seen.add(b.next());
  }
  assert.ok(seen.size > 20, `only ${seen.size} distinct delays out of 50`);
  // and spread over the range: some in the lower half of the saturated cap, some in the upper
  const b = new Backoff({ minMs: 0, maxMs: 1000 });
  const ds = Array.from({ length: 200 }, () => b.delay(20));
  assert.ok(ds.some((d) => d < 500) && ds.some((d) => d >= 500), 'delays cover both halves of [0, 1000]');
});

test('backoff: reset starts over; bad bounds throw at construction', () => {
  const b = new Backoff({ minMs: 100, maxMs: 1000 }, () => 1);
  b.next();
  b.next();
  assert.equal(b.attempt, 2);
  b.reset();
  assert.equal(b.attempt, 0);
  assert.equal(b.next(), 200);
  assert.throws(() => new Backoff({ minMs: -1 }), RangeError);
  assert.throws(() => new Backoff({ minMs: 1000, maxMs: 10 }), RangeError);
  assert.throws(() => new Backoff({ minMs: Number.NaN }), RangeError);
  assert.throws(() => new Backoff({ maxMs: Number.POSITIVE_INFINITY }), RangeError);
});

test('backoff: delay(attempt) is stateless (for libraries that count attempts, e.g. ioredis), first() is step 0', () => {
  const b = new Backoff({ minMs: 50, maxMs: 2000 }, () => 1);
  assert.equal(b.delay(0), 100);
  assert.equal(b.delay(3), 800);
  assert.equal(b.delay(1000), 2000, 'huge attempt counts saturate at maxMs (no overflow to Infinity/NaN)');
  assert.equal(b.delay(-5), 100, 'a negative attempt counts as the first');
  assert.equal(b.first(), 100);
  assert.equal(b.attempt, 0, 'neither advanced the counter');
  assert.deepEqual(DEFAULT_BACKOFF, { minMs: 500, maxMs: 10_000 });
});

test('backoff: wait() sleeps the next delay and advances', async () => {
  const b = new Backoff({ minMs: 20, maxMs: 40 }, () => 0);
  const t0 = performance.now();
  await b.wait();
  assert.ok(performance.now() - t0 >= 19, 'waited at least minMs');
  assert.equal(b.attempt, 1);
  const t1 = performance.now();
  await sleep(0);
  assert.ok(performance.now() - t1 < 1000);
});
