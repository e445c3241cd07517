/**
 * G10 / R5 / R11 on a 3-node NATS cluster (stream R3): two `confab start` processes,
 * cA on node 1 and cB on node 2. Node 1 is frozen (SIGSTOP 20 s) or killed (-9) and
 * restarted, or the stream's leader (wherever it is) is frozen 20 s: both gateways stay up, cA fails over to another node while node 1 is still
 * gone (its /readyz is 200 again before the fault ends), cB stays ready throughout, and
 * the properties (a)–(f) of broker-faults-kit.ts hold. Logs: $TMPDIR/confab-broker-faults/.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startNatsCluster, type NatsCluster } from '../../src/procs/nats.js';
import { assertFault, falseLeaves, GatewaySet, runFault, type Gw } from './broker-faults-kit.js';

const freeze = (pid: number | undefined) => pid !== undefined && process.kill(pid, 'SIGSTOP');
const thaw = (pid: number | undefined) => {
  try {
    if (pid !== undefined) process.kill(pid, 'SIGCONT');
  } catch {
    // already gone
  }
};

/** Server name of the CONFAB stream's leader, asked of every node's monitoring endpoint until one knows. */
async function streamLeader(c: NatsCluster): Promise<string> {
  for (const s of c.servers) {
    const res = await s.monitor('/jsz?streams=true').catch(() => undefined);
    const streams = ((res?.body as { account_details?: { stream_detail?: { name: string; cluster?: { leader?: string } }[] }[] } | undefined)?.account_details ?? []).flatMap((d) => d.stream_detail ?? []);
    const leader = streams.find((x) => x.name === 'CONFAB')?.cluster?.leader;
    if (leader) return leader;
  }
  throw new Error('no node names a leader for stream CONFAB');
}

describe('NATS 3-node cluster (R3): a node frozen or killed, the gateways stay up and fail over', () => {
  let cluster: NatsCluster;
  const set = new GatewaySet('nats3');
  let a: Gw;
  let b: Gw;
  before(async () => {
    cluster = await startNatsCluster(3);
    const env = { CONFAB_STREAM_REPLICAS: '3' };
    a = await set.spawn('cA', { ...env, NATS_URL: cluster.servers[0]!.url });
    b = await set.spawn('cB', { ...env, NATS_URL: cluster.servers[1]!.url });
  });
  after(async () => {
    set.closeWriters();
    await set.stopAll();
    await cluster?.stop();
  });

  it("cA's NATS node frozen (SIGSTOP) for 20 s: cA fails over to another node", async (t) => {
    let pid: number | undefined;
    const r = await runFault(set, a, b, {
      tag: 'c-stop',
      holdMs: 20_000,
      inject: () => void freeze((pid = cluster.servers[0]!.pid)),
      heal: () => thaw(pid),
      cleanup: () => thaw(pid),
      ready: [[a, 'failover'], [b, '200']],
    });
    await assertFault(t, set, r);
  });

  // The stream leader frozen: a leader election under both writers' pipelines, and — when the
  // frozen leader wakes — a deposed leader that still holds proposals (ghost writes, dedupe).
  it('the R3 stream leader frozen (SIGSTOP) for 20 s: a new leader is elected, nothing acknowledged is lost or stored twice', async (t) => {
    const leader = await streamLeader(cluster);
    const node = cluster.servers.find((s) => s.name === leader);
    assert.ok(node, `stream leader ${leader} is one of the cluster's servers`);
    const on = (g: Gw, i: number) => (cluster.servers[i] === node ? 'failover' : '200') as 'failover' | '200';
    t.diagnostic(`stream leader: ${leader}`);
    let pid: number | undefined;
    const r = await runFault(set, a, b, {
      tag: 'c-lead',
      holdMs: 20_000,
      inject: () => void freeze((pid = node.pid)),
      heal: () => thaw(pid),
      cleanup: () => thaw(pid),
      ready: [[a, on(a, 0)], [b, on(b, 1)]],
    });
    await assertFault(t, set, r);
  });

  it("cA's NATS node killed (-9), restarted after 8 s: cA fails over to another node", async (t) => {
    const n1 = cluster.servers[0]!;
    const r = await runFault(set, a, b, {
      tag: 'c-kill',
      holdMs: 8_000,
      inject: () => n1.stop('SIGKILL'),
      heal: () => n1.start(),
      cleanup: () => n1.start(),
      ready: [[a, 'failover'], [b, '200']],
    });
    await assertFault(t, set, r);
  });

  it('no presence leave for a user who never left, over the whole run', () => {
    assert.deepEqual(falseLeaves(set), []);
  });
});
