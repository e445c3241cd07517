/**
 * The Bus contract: every adapter (memory, NATS, Redis) runs exactly these tests.
 * A fixture gives at least two buses (two "nodes") on one broker, and optionally
 * a way to take the broker down and bring it back.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Bus } from '../../src/bus/types.js';
import { ConfabError } from '../../src/protocol/codes.js';
import { waitFor } from '../../src/procs/wait.js';

export interface BusFixture {
  buses: Bus[];
  outage?: { down(): Promise<void>; up(): Promise<void> };
  close(): Promise<void>;
}

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
let n = 0;
const uniq = (p: string) => `${p}.${process.pid}x${Date.now().toString(36)}x${n++}`;

/** Publish probes until `sub` sees one, so interest has propagated (clusters route interest asynchronously). */
export async function awaitInterest(pub: Bus, subject: string, seen: () => boolean): Promise<void> {
  await waitFor(() => {
    if (seen()) return true;
    pub.publish(subject, enc('__probe__'));
    return false;
  }, { timeoutMs: 10_000, intervalMs: 25, what: `interest on ${subject}` });
}

export function busContract(name: string, make: () => Promise<BusFixture>): void {
  describe(`Bus contract: ${name}`, () => {
    const withFixture = (fn: (f: BusFixture) => Promise<void>) => async () => {
      const f = await make();
      try {
        await fn(f);
      } finally {
        await f.close();
      }
    };

    it('is up and delivers to subscribers on every node, publisher included, in publish order', withFixture(async ({ buses: [a, b] }) => {
      assert.equal(a!.status, 'up');
      const subject = uniq('room');
      const gotA: string[] = [];
      const gotB: string[] = [];
      let probesA = 0;
      let probesB = 0;
      a!.subscribe(subject, (d) => (dec(d) === '__probe__' ? probesA++ : gotA.push(dec(d))));
      b!.subscribe(subject, (d) => (dec(d) === '__probe__' ? probesB++ : gotB.push(dec(d))));
      await awaitInterest(a!, subject, () => probesA > 0 && probesB > 0);
      const sent = Array.from({ length: 200 }, (_, i) => `m${i}`);
      for (const s of sent) a!.publish(subject, enc(s));
      await waitFor(() => gotA.length >= 200 && gotB.length >= 200, { what: 'all deliveries' });
      assert.deepEqual(gotA, sent);
      assert.deepEqual(gotB, sent);
    }));

    it('carries arbitrary bytes unchanged', withFixture(async ({ buses: [a, b] }) => {
      const subject = uniq('bin');
      const payload = Uint8Array.from({ length: 256 }, (_, i) => i);
      let got: Uint8Array | undefined;
      let probes = 0;
      b!.subscribe(subject, (d) => (d.length === 9 && dec(d) === '__probe__' ? probes++ : (got = d)));
      await awaitInterest(a!, subject, () => probes > 0);
      a!.publish(subject, payload);
      await waitFor(() => got !== undefined, { what: 'binary delivery' });
      assert.deepEqual([...got!], [...payload]);
    }));

    it('stops delivering to an unsubscribed handler and counts subjects', withFixture(async ({ buses: [a, b] }) => {
      const subject = uniq('unsub');
      const gone: string[] = [];
      const kept: string[] = [];
      let probes = 0;
      const before = b!.subscriptionCount();
      const s1 = b!.subscribe(subject, (d) => gone.push(dec(d)));
      b!.subscribe(subject, (d) => (dec(d) === '__probe__' ? probes++ : kept.push(dec(d))));
      assert.equal(b!.subscriptionCount(), before + 1, 'two handlers on one subject count as one subject');
      await awaitInterest(a!, subject, () => probes > 0);
      s1.unsubscribe();
      s1.unsubscribe(); // idempotent
      a!.publish(subject, enc('after'));
      await waitFor(() => kept.includes('after'), { what: 'delivery to the remaining handler' });
      assert.ok(!gone.includes('after'), 'unsubscribed handler received a message');
    }));

    it('does not deliver a subject to a node without interest in it', withFixture(async ({ buses: [a, b] }) => {
      const subject = uniq('nointerest');
      const other = uniq('other');
      const onB: string[] = [];
      let probes = 0;
      b!.subscribe(other, (d) => (dec(d) === '__probe__' ? probes++ : onB.push(`other:${dec(d)}`)));
      await awaitInterest(a!, other, () => probes > 0);
      a!.publish(subject, enc('x'));
      a!.publish(other, enc('marker'));
      await waitFor(() => onB.includes('other:marker'), { what: 'marker' });
      assert.deepEqual(onB, ['other:marker']);
    }));

    it('close() releases every subscription, reports down and rejects publishes with bus_unavailable', withFixture(async ({ buses: [a] }) => {
      const statuses: string[] = [];
      a!.onStatus((s) => statuses.push(s));
      a!.subscribe(uniq('c'), () => {});
      await a!.close();
      await a!.close(); // idempotent
      assert.equal(a!.subscriptionCount(), 0);
      assert.equal(a!.status, 'down');
      assert.throws(() => a!.publish(uniq('c'), enc('x')), (e: unknown) => e instanceof ConfabError && e.code === 'bus_unavailable');
    }));

    it('during a broker outage reports down, rejects publishes with a typed error, and recovers subscriptions after', withFixture(async (f) => {
      if (!f.outage) return; // adapters that cannot simulate an outage run the process-level test instead
      const [a, b] = f.buses;
      const subject = uniq('outage');
      const got: string[] = [];
      let probes = 0;
      b!.subscribe(subject, (d) => (dec(d) === '__probe__' ? probes++ : got.push(dec(d))));
      await awaitInterest(a!, subject, () => probes > 0);
      const statuses: string[] = [];
      a!.onStatus((s) => statuses.push(s));
      await f.outage.down();
      await waitFor(() => a!.status === 'down', { what: 'status down', timeoutMs: 15_000 });
      assert.ok(statuses.includes('down'));
      assert.throws(() => a!.publish(subject, enc('lost?')), (e: unknown) => e instanceof ConfabError && e.code === 'bus_unavailable');
      await f.outage.up();
      await waitFor(() => a!.status === 'up' && b!.status === 'up', { what: 'status up again', timeoutMs: 20_000 });
      probes = 0;
      await awaitInterest(a!, subject, () => probes > 0);
      a!.publish(subject, enc('back'));
      await waitFor(() => got.includes('back'), { what: 'delivery after recovery' });
      assert.ok(!got.includes('lost?'));
    }));
  });
}
