import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Backoff, retryHint, socketUrl } from '../../src/client/index.js';

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
});

test('backoff: delays are spread, not lock-step', () => {
  const seen = new Set<number>();
  for (let i = 0; i < 50; i++) {
    const b = new Backoff();
    for (let k = 0; k < 6; k++) b.next();
    seen.add(b.next());
  }
  assert.ok(seen.size > 20, `only ${seen.size} distinct delays out of 50`);
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
});

test('retryHint: reads retryMs from a draining close reason, ignores anything else', () => {
  assert.equal(retryHint('{"code":"draining","retryMs":1234}'), 1234);
  assert.equal(retryHint('{"code":"draining"}'), undefined);
  assert.equal(retryHint('{"retryMs":-5}'), undefined);
  assert.equal(retryHint('not json'), undefined);
  assert.equal(retryHint(''), undefined);
  assert.equal(retryHint('{"retryMs":99999999}'), 120_000);
});

test('socketUrl: http base becomes ws://host/ws with the token', () => {
  assert.equal(socketUrl('http://127.0.0.1:8080', 'a.b'), 'ws://127.0.0.1:8080/ws?token=a.b');
  assert.equal(socketUrl('https://x.example/', 't'), 'wss://x.example/ws?token=t');
  assert.equal(socketUrl('ws://h:1/custom', 't t'), 'ws://h:1/custom?token=t+t');
  assert.throws(() => socketUrl('ftp://h', 't'), TypeError);
});
