/**
 * `confab cluster up` as a real child process (2 regions × 1 NATS node × 1
 * gateway, each region behind its own HAProxy): it prints the table, a client in
 * each region exchanges messages with the other through the two HAProxies
 * (across the NATS gateway connection), `cluster status` reports it healthy,
 * `cluster roll` replaces every gateway step by step and the users resume
 * without loss, and SIGTERM stops every process recorded in cluster.json.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pidsOf, readState, type ClusterState } from '../../src/cli/cluster-plan.js';
import { alive } from '../../src/procs/pid.js';
import { createSession, REPO_ROOT } from '../../src/testkit/gateway.js';
import { RawClient } from '../../src/testkit/raw-client.js';
import { waitFor } from '../../src/procs/wait.js';

const CLI = ['--import', 'tsx', join(REPO_ROOT, 'src/cli/confab.ts')];

function runCliAsync(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [...CLI, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout!.on('data', (d: Buffer) => (stdout += d));
    c.stderr!.on('data', (d: Buffer) => (stderr += d));
    const t = setTimeout(() => c.kill('SIGKILL'), 120_000);
    c.once('exit', (status) => (clearTimeout(t), resolve({ status, stdout, stderr })));
  });
}

describe('confab cluster up / status / roll / SIGTERM', () => {
  const dir = mkdtempSync(join(tmpdir(), 'confab-cl-'));
  let child: ChildProcess | undefined;
  let out = '';
  let state: ClusterState | undefined;
  const clients: RawClient[] = [];

  after(() => {
    for (const c of clients) c.ws.terminate();
    if (child && child.exitCode === null) child.kill('SIGKILL');
    // whatever the supervisor left behind (only on failure): by recorded PID
    try {
      for (const p of pidsOf(readState(dir))) if (alive(p.pid)) process.kill(p.pid, 'SIGKILL');
    } catch {
      // no state
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts two regions, carries messages across them through both HAProxies, rolls every gateway, and stops every process on SIGTERM', async () => {
    let exited: Promise<number | null> | undefined;
    // a base port in 20000-29999 (below the ephemeral range); another one if the preflight finds it busy
    for (let attempt = 0; attempt < 3 && !state; attempt++) {
      const base = 20_000 + 100 * Math.floor(Math.random() * 95);
      out = '';
      child = spawn(process.execPath, [...CLI, 'cluster', 'up', '--regions', '2', '--nats-per-region', '1', '--gateways-per-region', '1', '--base-port', String(base), '--dir', dir], {
        cwd: REPO_ROOT,
        env: { ...process.env, LOG_LEVEL: 'warn' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child.stdout!.on('data', (d: Buffer) => (out += d));
      child.stderr!.on('data', (d: Buffer) => (out += d));
      const c = child;
      exited = new Promise((r) => c.once('exit', (code) => r(code)));
      let code: number | null | undefined;
      void exited.then((x) => (code = x));
      await waitFor(() => code !== undefined || out.includes('cluster ready'), { timeoutMs: 90_000, intervalMs: 100, what: `cluster up (output so far:\n${out})` });
      if (code === 2 && out.includes('ports in use')) continue;
      assert.ok(out.includes('cluster ready'), `cluster up failed (exit ${code}):\n${out}`);
      state = readState(dir);
    }
    assert.ok(state, `no cluster started:\n${out}`);
    const [a, b] = state.regions;
    assert.equal(state.status, 'running');
    for (const r of state.regions) {
      assert.ok(out.includes(r.haproxy.url), `the table shows ${r.name}'s HAProxy URL`);
      assert.ok(out.includes(r.nats[0]!.url), `the table shows ${r.name}'s NATS URL`);
    }

    // every region's page knows every region's entry point (web client failover)
    const urls = state.regions.map((r) => `${r.haproxy.url.replace('http', 'ws')}/ws`);
    for (const r of state.regions) assert.deepEqual(((await (await fetch(`${r.haproxy.url}/api/config`)).json()) as { urls: string[] }).urls, urls);

    // one client per region, each through its region's HAProxy
    const alice = await createSession(a!.haproxy.url, 'alice');
    const bob = await createSession(b!.haproxy.url, 'bob');
    const ca = await RawClient.connect(a!.haproxy.url.replace('http', 'ws') + '/ws', alice.token);
    const cb = await RawClient.connect(b!.haproxy.url.replace('http', 'ws') + '/ws', bob.token);
    clients.push(ca, cb);
    assert.equal(ca.all('welcome')[0]!.region, a!.name);
    assert.equal(cb.all('welcome')[0]!.region, b!.name);
    ca.send({ t: 'join', room: 'world' });
    cb.send({ t: 'join', room: 'world' });
    await ca.next('joined');
    await cb.next('joined');
    ca.send({ t: 'pub', id: 'a1', room: 'world', text: `hello from ${a!.name}` });
    const atB = await cb.next('msg', (m) => m.id === 'a1', 15_000);
    assert.equal(atB.from.region, a!.name);
    assert.equal(atB.from.handle, 'alice');
    cb.send({ t: 'pub', id: 'b1', room: 'world', text: `hello from ${b!.name}` });
    const atA = await ca.next('msg', (m) => m.id === 'b1', 15_000);
    assert.equal(atA.from.region, b!.name);
    assert.equal(atA.offset, atB.offset + 1, 'one history (one stream) orders both regions');

    const st = await runCliAsync(['cluster', 'status', '--dir', dir]);
    assert.equal(st.status, 0, `status reports healthy:\n${st.stdout}${st.stderr}`);
    assert.match(st.stdout, /healthy/);

    // rolling restart through the CLI (control API of the running supervisor)
    const before = readState(dir);
    const roll = await runCliAsync(['cluster', 'roll', '--dir', dir]);
    assert.equal(roll.status, 0, `roll:\n${roll.stdout}${roll.stderr}`);
    const lines = roll.stdout.split('\n');
    for (const g of before.regions.flatMap((r) => r.gateways)) {
      const steps = ['set to DRAIN in HAProxy', 'SIGTERM sent', '/readyz failed', 'exited (drained)', 'replacement started', 'replacement /readyz 200', 'UP in HAProxy again'];
      const at = steps.map((st) => lines.findIndex((l) => l.startsWith(`${g.name}: ${st}`)));
      assert.ok(at.every((i, k) => i >= 0 && (k === 0 || i > at[k - 1]!)), `${g.name}: every roll step, in order:\n${roll.stdout}`);
    }
    assert.equal(lines.filter(Boolean).at(-1), 'roll done');
    const rolled = readState(dir);
    assert.equal(rolled.status, 'running');
    for (const [i, g] of rolled.regions.flatMap((r) => r.gateways).entries()) {
      const old = before.regions.flatMap((r) => r.gateways)[i]!;
      assert.notEqual(g.pid, old.pid, `${g.name} replaced`);
      assert.notEqual(g.node, old.node, `${g.name} has a new node id`);
      assert.equal(alive(old.pid!), false, `${g.name}'s old process is gone`);
    }
    assert.equal(await ca.closed(10_000), 4000, 'clients were moved with 4000 during the roll');
    assert.equal(await cb.closed(10_000), 4000);
    // the same users come back through their HAProxy and resume where they were
    const ca2 = await RawClient.connect(a!.haproxy.url.replace('http', 'ws') + '/ws', alice.token);
    const cb2 = await RawClient.connect(b!.haproxy.url.replace('http', 'ws') + '/ws', bob.token);
    clients.push(ca2, cb2);
    ca2.send({ t: 'join', room: 'world', since: { epoch: atA.epoch, offset: atA.offset } });
    cb2.send({ t: 'join', room: 'world', since: { epoch: atA.epoch, offset: atA.offset } });
    assert.equal((await ca2.next('joined')).recovered, true);
    assert.equal((await cb2.next('joined')).recovered, true);
    cb2.send({ t: 'pub', id: 'b2', room: 'world', text: 'after the roll' });
    const b2 = await ca2.next('msg', (m) => m.id === 'b2', 15_000);
    assert.equal(b2.offset, atA.offset + 1, 'no message lost or repeated across the roll');

    const pids = pidsOf(rolled);
    assert.equal(pids.length, 6, '2 NATS + 2 gateways + 2 HAProxy recorded');
    assert.ok(pids.every((p) => alive(p.pid)));
    child!.kill('SIGTERM');
    const code = await Promise.race([exited!, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 60_000).unref())]);
    assert.equal(code, 0, `supervisor exits cleanly after SIGTERM:\n${out}`);
    for (const p of pids) assert.equal(alive(p.pid), false, `${p.name} (pid ${p.pid}) is gone`);
    assert.equal(readState(dir).status, 'stopped');
    assert.ok(out.indexOf('stopping: draining gateways') < out.indexOf('stopping: nats'), 'gateways drained before NATS stops');
    assert.equal(await ca2.closed(5000), 4000, 'clients were moved with 4000, not cut');
    assert.equal(await cb2.closed(5000), 4000);
  });
});
