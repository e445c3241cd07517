/**
 * G10 / R5 / R11 on NATS: every kind of broker fault, and the gateway processes stay up.
 *
 * Single node: two `confab start` processes on one nats-server, gateway nA through a
 * fault proxy (src/testkit/faults.ts), nB directly. Faults: the server frozen (SIGSTOP
 * 15 s), killed (-9) and restarted, nA partitioned from it (connections cut, or a black
 * hole), and the server slow for nA (every chunk it sends delayed 2 s).
 * The 3-node cluster faults are in broker-faults-nats-cluster.test.ts (each file must
 * finish within the runner's 180 s per-file timeout).
 *
 * Per fault, writer clients on both gateways publish every second throughout; the
 * properties (a)–(f) asserted are listed in broker-faults-kit.ts. Gateway logs are written
 * to $TMPDIR/confab-broker-faults/.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startFaultProxy, type FaultProxy } from '../../src/testkit/faults.js';
import { startNats, type NatsServer } from '../../src/procs/nats.js';
import { assertFault, falseLeaves, GatewaySet, runFault, type Gw } from './broker-faults-kit.js';

const freeze = (pid: number | undefined) => pid !== undefined && process.kill(pid, 'SIGSTOP');
const thaw = (pid: number | undefined) => {
  try {
    if (pid !== undefined) process.kill(pid, 'SIGCONT');
  } catch {
    // already gone
  }
};

describe('NATS single node: every fault, the gateways stay up (G10, R5, R11)', () => {
  let nats: NatsServer & { close(): Promise<void> };
  let proxy: FaultProxy;
  const set = new GatewaySet('nats1');
  let a: Gw;
  let b: Gw;
  before(async () => {
    nats = await startNats();
    proxy = await startFaultProxy(nats.port);
    a = await set.spawn('nA', { NATS_URL: proxy.url('nats') });
    b = await set.spawn('nB', { NATS_URL: nats.url });
  });
  after(async () => {
    set.closeWriters();
    await set.stopAll();
    await proxy?.close();
    await nats?.close();
  });

  it('nats-server frozen (SIGSTOP) for 15 s, then SIGCONT', async (t) => {
    let pid: number | undefined;
    const r = await runFault(set, a, b, {
      tag: 'n-stop',
      holdMs: 15_000,
      inject: () => void freeze((pid = nats.pid)),
      heal: () => thaw(pid),
      cleanup: () => thaw(pid),
      ready: [[a, '503'], [b, '503']],
    });
    await assertFault(t, set, r);
  });

  it('nats-server killed (-9), restarted after 6 s', async (t) => {
    const r = await runFault(set, a, b, {
      tag: 'n-kill',
      holdMs: 6_000,
      inject: () => nats.stop('SIGKILL'),
      heal: () => nats.start(),
      cleanup: () => nats.start(),
      ready: [[a, '503'], [b, '503']],
    });
    await assertFault(t, set, r);
  });

  it('gateway nA partitioned from NATS (connections cut, new ones refused) for 14 s', async (t) => {
    const r = await runFault(set, a, b, {
      tag: 'n-cut',
      holdMs: 14_000,
      inject: () => proxy.cut(),
      heal: () => proxy.restore(),
      cleanup: () => proxy.restore(),
      ready: [[a, '503'], [b, '200']],
    });
    await assertFault(t, set, r);
  });

  it('gateway nA black-holed from NATS (nothing forwarded, new connections hang) for 15 s', async (t) => {
    const r = await runFault(set, a, b, {
      tag: 'n-hole',
      holdMs: 15_000,
      inject: () => proxy.blackhole(),
      heal: () => proxy.restore(),
      cleanup: () => proxy.restore(),
      ready: [[a, '503'], [b, '200']],
    });
    await assertFault(t, set, r);
  });

  // A slow broker is not a down broker: every round trip (2 s) stays inside the client's
  // timeouts (ping 5 s × 2, request 5 s), so the right behaviour is to stay ready and
  // acknowledge every message, only later — failing readiness would take gateways out of
  // rotation that can still serve, and refusing would turn latency into errors.
  it('NATS slow for nA (every chunk from the server delayed 2 s) for 10 s while nB\'s writer also publishes: stays ready, acknowledges everything', async (t) => {
    const r = await runFault(set, a, b, {
      tag: 'n-slow',
      holdMs: 10_000,
      inject: () => proxy.delay(2000, 'down'),
      heal: () => proxy.restore(),
      cleanup: () => proxy.restore(),
      ready: [[a, '200'], [b, '200']],
      noErrors: true,
      // nB's writer at 4 messages/s: a room busy on another gateway must not starve the slow one
      pubEveryMsB: 250,
    });
    await assertFault(t, set, r);
  });

  // The same slow link with only nA's writer publishing: tells a slow store apart from
  // appends losing the expected-last-sequence race to a writer on another gateway.
  it('NATS slow for nA (2 s per chunk) for 10 s, only nA publishing: stays ready, acknowledges everything', async (t) => {
    const r = await runFault(set, a, b, {
      tag: 'n-slow1',
      holdMs: 10_000,
      inject: () => proxy.delay(2000, 'down'),
      heal: () => proxy.restore(),
      cleanup: () => proxy.restore(),
      ready: [[a, '200'], [b, '200']],
      noErrors: true,
      pubFrom: ['a'],
    });
    await assertFault(t, set, r);
  });

  it('no presence leave for a user who never left, over the whole run', () => {
    assert.deepEqual(falseLeaves(set), []);
  });
});
