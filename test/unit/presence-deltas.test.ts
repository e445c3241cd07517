/**
 * Issue 15 item 4: presence crosses the bus as numbered delta batches; tables travel only on
 * request, to the asker's own subject; a missed delta or a bus outage is healed by the heartbeat
 * (sequence + count) and a `want`. In-process bus (the reference adapter); the NATS figures are
 * in test/integration/presence-bus-budget.test.ts.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { MemoryBroker, MemoryBus } from '../../src/bus/memory.js';
import { openEnvelope } from '../../src/bus/envelope.js';
import type { Bus, BusHandler } from '../../src/bus/types.js';
import { ONLINE, Presence, presenceSubjectOf } from '../../src/gateway/presence.js';
import { waitFor } from '../../src/procs/wait.js';

/** A bus that records what it receives (kind per subject) and can drop chosen deliveries. */
class TapBus extends MemoryBus {
  readonly got: { subject: string; k: string }[] = [];
  drop?: (subject: string, k: string) => boolean;
  override subscribe(subject: string, handler: BusHandler) {
    return super.subscribe(subject, (d) => {
      const env = openEnvelope(d);
      const k = env ? ((JSON.parse(env.body) as { k: string }).k ?? '') : '';
      if (this.drop?.(subject, k)) return;
      this.got.push({ subject, k });
      handler(d);
    });
  }
}

const HB = 100;
const user = (i: number) => ({ id: `user-${i}`, handle: `h${i}` });

describe('presence deltas', () => {
  const stops: (() => void)[] = [];
  after(() => {
    for (const s of stops) s();
  });
  function node(name: string, bus: Bus) {
    const joins: string[] = [];
    const p = new Presence({ node: name, bus, graceMs: 0, heartbeatMs: HB, onJoin: (r, u) => joins.push(`${r}:${u.id}`), onLeave: () => {} });
    p.start();
    stops.push(() => p.stop());
    return { p, joins };
  }

  it('a burst of changes crosses as one delta message, and idle nodes send only heartbeats', async () => {
    const broker = new MemoryBroker();
    const ba = new TapBus(broker);
    const bb = new TapBus(broker);
    const a = node('a1', ba);
    const b = node('b1', bb);
    for (let i = 0; i < 300; i++) a.p.add('lobby', user(i));
    await waitFor(() => b.p.size('lobby') === 300, { timeoutMs: 2000, what: 'b sees 300 members' });
    assert.equal(bb.got.filter((g) => g.k === 'd').length, 1, 'one delta batch for 300 joins');
    const mark = bb.got.length;
    await new Promise((r) => setTimeout(r, HB * 4)); // an idle spell of four heartbeats
    const idle = bb.got.slice(mark);
    assert.ok(idle.length > 0);
    assert.deepEqual([...new Set(idle.map((g) => g.k))], ['hb'], 'nothing but heartbeats while idle');
    assert.equal(b.joins.length, 300);
  });

  it('a newcomer gets each table on its own subject; the others do not receive it', async () => {
    const broker = new MemoryBroker();
    const [ba, bb, bc] = [new TapBus(broker), new TapBus(broker), new TapBus(broker)];
    const a = node('a2', ba);
    const b = node('b2', bb);
    for (let i = 0; i < 50; i++) a.p.add('r', user(i));
    for (let i = 50; i < 80; i++) b.p.add('r', user(i));
    await waitFor(() => a.p.size('r') === 80 && b.p.size('r') === 80, { timeoutMs: 2000, what: 'a and b agree' });
    const markA = ba.got.length;
    const c = node('c2', bc);
    await waitFor(() => c.p.size('r') === 80, { timeoutMs: 2000, what: 'the newcomer sees 80' });
    assert.ok(bc.got.some((g) => g.k === 'state' && g.subject === presenceSubjectOf('c2')));
    assert.equal(ba.got.slice(markA).filter((g) => g.k === 'state').length, 0, 'a received no table');
  });

  it('a lost delta is noticed at the next heartbeat and healed by asking for the table', async () => {
    const broker = new MemoryBroker();
    const ba = new TapBus(broker);
    const bb = new TapBus(broker);
    const a = node('a3', ba);
    const b = node('b3', bb);
    a.p.add(ONLINE, user(1));
    await waitFor(() => b.p.size(ONLINE) === 1, { timeoutMs: 2000, what: 'b in sync' });
    let dropped = 0;
    bb.drop = (_s, k) => k === 'd' && dropped++ === 0;
    a.p.add('quiet', user(2)); // this batch is lost on its way to b
    await waitFor(() => dropped > 0, { timeoutMs: 2000, what: 'the delta was dropped' });
    assert.equal(b.p.size('quiet'), 0);
    await waitFor(() => b.p.size('quiet') === 1, { timeoutMs: 3000, what: 'b heals from the table it asked for' });
    assert.ok(ba.got.some((g) => g.k === 'want'), 'b asked a for its table');
    assert.deepEqual(b.joins.filter((j) => j.startsWith('quiet:')), ['quiet:user-2']);
  });

  it('changes made while the bus was down reach the peers after it returns', async () => {
    const broker = new MemoryBroker();
    const a = node('a4', new TapBus(broker));
    const b = node('b4', new TapBus(broker));
    a.p.add('r', user(1));
    await waitFor(() => b.p.size('r') === 1, { timeoutMs: 2000, what: 'b in sync' });
    broker.setDown(true);
    a.p.add('r', user(2));
    a.p.remove('r', user(1), true);
    await new Promise((r) => setTimeout(r, HB * 2));
    broker.setDown(false);
    await waitFor(() => b.p.size('r') === 1 && b.p.members('r')[0]?.id === 'user-2', { timeoutMs: 5000, what: `b sees only user-2 (has ${JSON.stringify(b.p.members('r'))})` });
  });
});
