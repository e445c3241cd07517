/**
 * The readiness probe's policy, driven by a fake clock, fake timers, a scripted fetch and a fixed
 * random: when it probes, how often (bounded, jittered, slower as an outage lasts), and when a
 * 200 may end a reconnect wait.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_BACKOFF, DEFAULT_PROBE, ReadinessProbe, probeUrl, type FetchLike, type ProbeTimers } from '../../src/client/index.js';

/** Timers on a fake clock: advance(ms) runs what falls due, in order, letting probe promises settle. */
class FakeTimers implements ProbeTimers {
  t = 0;
  #seq = 0;
  #due = new Map<number, { at: number; fn: () => void }>();
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.#seq;
    this.#due.set(id, { at: this.t + ms, fn });
    return id;
  }
  clearTimeout(h: unknown): void {
    this.#due.delete(h as number);
  }
  get pending(): number {
    return this.#due.size;
  }
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (let guard = 0; guard < 100_000; guard++) {
      await settle();
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.#due) if (e[1].at <= end && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.#due.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = end;
    await settle();
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
}

type Answer = number | 'refused' | 'hang';

/** A fetch that answers from a script (a function of the fake time) and records each call's time and URL. */
function scriptedFetch(timers: FakeTimers, answer: (t: number) => Answer): { fetch: FetchLike; calls: { t: number; url: string }[] } {
  const calls: { t: number; url: string }[] = [];
  const fetch: FetchLike = (url, init) => {
    calls.push({ t: timers.now(), url });
    const a = answer(timers.now());
    if (a === 'refused') return Promise.reject(new TypeError('fetch failed: ECONNREFUSED'));
    if (a === 'hang') return new Promise((_, reject) => init.signal.addEventListener('abort', () => reject(new Error('aborted'))));
    return Promise.resolve({ status: a, body: null });
  };
  return { fetch, calls };
}

test('probeUrl: the http(s) origin of a ws(s) or http(s) URL, plus /readyz', () => {
  assert.equal(probeUrl('ws://127.0.0.1:8080/ws'), 'http://127.0.0.1:8080/readyz');
  assert.equal(probeUrl('wss://ord.example.com/custom/path'), 'https://ord.example.com/readyz');
  assert.equal(probeUrl('http://h:1'), 'http://h:1/readyz');
  assert.equal(probeUrl('https://h/', 'health'), 'https://h/health');
  assert.throws(() => probeUrl('ftp://h'), TypeError);
});

test('defaults: probe every 2 s on average (1–3 s), slowing to 8 s; reconnect backoff 0.5–10 s', () => {
  assert.deepEqual(DEFAULT_PROBE, { intervalMs: 2000, maxIntervalMs: 8000, timeoutMs: 2000, path: '/readyz' });
  assert.deepEqual(DEFAULT_BACKOFF, { minMs: 500, maxMs: 10_000 });
  assert.throws(() => new ReadinessProbe({ intervalMs: 10 }), RangeError, 'a probe rate above 20/s per client is refused');
  assert.throws(() => new ReadinessProbe({ intervalMs: 5000, maxIntervalMs: 1000 }), RangeError);
});

test('schedule: gaps are uniform in [0.5, 1.5] × mean; the mean grows to a tenth of the outage, capped', () => {
  const timers = new FakeTimers();
  let r = 0;
  const p = new ReadinessProbe({}, { fetch: () => Promise.reject(new Error('x')), timers, random: () => r });
  assert.equal(p.meanInterval(), 2000, 'no outage yet');
  p.noteDown(false, false);
  r = 0;
  assert.equal(p.nextDelay(), 1000);
  r = 1;
  assert.equal(p.nextDelay(), 3000);
  timers.t = 40_000; // 40 s into the outage: mean 4 s
  assert.equal(p.meanInterval(), 4000);
  r = 0.5;
  assert.equal(p.nextDelay(), 4000);
  timers.t = 3_600_000; // an hour: capped at 8 s
  assert.equal(p.meanInterval(), 8000);
  r = 0;
  assert.equal(p.nextDelay(), 4000);
  r = 1;
  assert.equal(p.nextDelay(), 12_000);
  p.noteUp();
  assert.equal(p.meanInterval(), 2000, 'a new outage starts over');
});

test('a dead server is probed at a bounded, jittered rate: ≤ 1 probe per intervalMs/2, one at a time', async () => {
  const timers = new FakeTimers();
  const { fetch, calls } = scriptedFetch(timers, () => 'refused');
  let seed = 1;
  const random = (): number => ((seed = (seed * 16807) % 2147483647) / 2147483647);
  const p = new ReadinessProbe({}, { fetch, timers, random });
  p.noteDown(false, false);
  let ready = 0;
  p.start('ws://gw:1/ws', () => ready++);
  await timers.advance(20_000);
  assert.equal(ready, 0);
  assert.ok(calls.length >= 7 && calls.length <= 20, `${calls.length} probes in 20 s (mean gap 2 s, each 1–3 s)`);
  for (let i = 1; i < calls.length; i++) assert.ok(calls[i]!.t - calls[i - 1]!.t >= 1000, `gap ${i}: ${calls[i]!.t - calls[i - 1]!.t} ms`);
  const gaps = new Set(calls.slice(1).map((c, i) => c.t - calls[i]!.t));
  assert.ok(gaps.size > 3, 'jittered, not a fixed period');
  assert.ok(calls.every((c) => c.url === 'http://gw:1/readyz'));
  // an hour later the gaps are 4–12 s
  const before = calls.length;
  await timers.advance(3_600_000);
  const perMinute = ((calls.length - before) / 3_600_000) * 60_000;
  assert.ok(perMinute <= 15.1 && perMinute >= 4, `${perMinute.toFixed(1)} probes/min in a long outage`);
  p.stop();
  assert.equal(timers.pending, 0, 'stop() leaves no timer behind');
});

test('a server seen down and then ready ends the wait at once; one that was never seen down does not', async () => {
  const timers = new FakeTimers();
  const backAt = 20_000;
  const { fetch } = scriptedFetch(timers, (t) => (t < backAt ? 'refused' : 200));
  const p = new ReadinessProbe({}, { fetch, timers, random: () => 0.5 });
  p.noteDown(false, false);
  let readyAt: number | undefined;
  p.start('http://gw:1', () => (readyAt = timers.now()));
  await timers.advance(30_000);
  assert.ok(readyAt !== undefined && readyAt >= backAt && readyAt <= backAt + 3000, `ready at ${readyAt}`);
  assert.equal(p.running, false, 'probing stops with the call');

  // Always 200 and no failed attempt: the server is up but dropped us (or refuses the socket): keep the backoff.
  const t2 = new FakeTimers();
  const up = scriptedFetch(t2, () => 200);
  const q = new ReadinessProbe({}, { fetch: up.fetch, timers: t2, random: () => 0.5 });
  q.noteDown(false, false);
  let fired = 0;
  q.start('http://gw:1', () => fired++);
  await t2.advance(30_000);
  assert.equal(fired, 0);
  assert.ok(up.calls.length >= 10, 'it kept probing');
  q.stop();
});

test('a failed timer attempt gives one shortcut; a failed attempt started by a probe gives none (no probe-paced hammering)', async () => {
  const timers = new FakeTimers();
  const { fetch } = scriptedFetch(timers, () => 200); // /readyz says ready, yet the socket is refused (e.g. 429 at upgrade)
  const p = new ReadinessProbe({}, { fetch, timers, random: () => 0.5 });
  let fired = 0;
  p.noteDown(true, false); // the backoff timer's attempt failed
  p.start('http://gw:1', () => fired++);
  await timers.advance(2500);
  assert.equal(fired, 1, 'first 200 after a failed attempt: reconnect now');
  p.noteDown(true, true); // that probe-started attempt failed too
  p.start('http://gw:1', () => fired++);
  await timers.advance(30_000);
  assert.equal(fired, 1, 'no second shortcut without new evidence: the backoff timer decides');
  p.stop();
  p.noteDown(true, false); // the timer's next attempt failed: one more shortcut allowed
  p.start('http://gw:1', () => fired++);
  await timers.advance(p.meanInterval() * 1.5);
  assert.equal(fired, 2);
});

test('a probe that hangs counts as down after timeoutMs; an answer after stop() is ignored', async () => {
  const timers = new FakeTimers();
  let mode: Answer = 'hang';
  const { fetch, calls } = scriptedFetch(timers, () => mode);
  const p = new ReadinessProbe({ timeoutMs: 500 }, { fetch, timers, random: () => 0.5 });
  p.noteDown(false, false);
  let fired = 0;
  p.start('http://gw:1', () => fired++);
  await timers.advance(2000); // first probe at 2000
  assert.equal(calls.length, 1);
  await timers.advance(500); // aborted by the timeout: counted down, next one scheduled
  mode = 200;
  await timers.advance(2000);
  assert.equal(fired, 1, 'down (timeout) then 200: ready');

  // stop() while a probe is in flight: its answer does nothing
  const t2 = new FakeTimers();
  let release: ((v: { status: number }) => void) | undefined;
  const slow: FetchLike = () => new Promise((r) => (release = r));
  const q = new ReadinessProbe({ timeoutMs: 60_000 }, { fetch: slow, timers: t2, random: () => 0.5 });
  q.noteDown(true, false);
  let qFired = 0;
  q.start('http://gw:1', () => qFired++);
  await t2.advance(2000);
  assert.ok(release, 'a probe is in flight');
  q.stop();
  release({ status: 200 });
  await t2.advance(10_000);
  assert.equal(qFired, 0);
});

test('probe: false or no fetch turns probing off', async () => {
  const timers = new FakeTimers();
  const off = new ReadinessProbe(false, { timers });
  assert.equal(off.enabled, false);
  off.start('http://gw:1', () => assert.fail('no probe'));
  assert.equal(timers.pending, 0);
  const on = new ReadinessProbe({}, { fetch: () => Promise.resolve({ status: 200 }), timers });
  assert.equal(on.enabled, true);
});
