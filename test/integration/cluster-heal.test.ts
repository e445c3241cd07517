/**
 * `confab cluster up` heals itself (1 region × 3 NATS × 2 gateways + HAProxy, a
 * real child process): a gateway, a nats-server and HAProxy killed with
 * `kill -9` each come back by themselves on the same ports with the same config
 * (the gateway UP in HAProxy again, the nats-server routed to its peers with its
 * JetStream store, HAProxy with both servers UP), each counted once in
 * cluster.json and in `cluster status`; a gateway killed right before `cluster
 * roll` does not break the roll; what the roll and the stop end on purpose is
 * not restarted.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { partsOf, pidsOf, readState, type ClusterState, type GatewayState, type PartStatus } from '../../src/cli/cluster-plan.js';
import { alive, httpStatus, waitFor, type WaitOptions } from '../../src/procs/index.js';

/** Poll until `cond` holds, bounded by `timeoutMs`. */
const until = (cond: () => boolean | Promise<boolean>, what: string, timeoutMs: number, intervalMs = 100): Promise<void> => waitFor(cond, { what, timeoutMs, intervalMs } satisfies WaitOptions);
import { createSession, REPO_ROOT } from '../../src/testkit/gateway.js';
import { HaproxyAdmin } from '../../src/procs/haproxy.js';
import { RawClient } from '../../src/testkit/raw-client.js';

const CLI = ['--import', 'tsx', join(REPO_ROOT, 'src/cli/confab.ts')];

function runCli(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
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

async function getJson<T>(url: string): Promise<T | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    return res.status === 200 ? ((await res.json()) as T) : undefined;
  } catch {
    return undefined;
  }
}

describe('confab cluster up restarts what dies', () => {
  const dir = mkdtempSync(join(tmpdir(), 'confab-heal-'));
  let child: ChildProcess | undefined;
  let exited: Promise<number | null> | undefined;
  let out = '';
  let state: ClusterState;
  const clients: RawClient[] = [];

  /** The record of one part in the current cluster.json. */
  const rec = (name: string): PartStatus & { pid?: number } => {
    const p = partsOf(readState(dir)).find((x) => x.name === name);
    assert.ok(p, `part ${name} in cluster.json`);
    return p.rec;
  };

  /** kill -9 a part, then wait until the supervisor has restarted it and it is healthy; returns the new record. */
  const killAndWaitBack = async (name: string, restartsBefore: number) => {
    const old = rec(name);
    assert.ok(old.pid && alive(old.pid), `${name} runs before the kill`);
    process.kill(old.pid, 'SIGKILL');
    await until(
      () => {
        const r = rec(name);
        return r.restarts === restartsBefore + 1 && r.state === 'up' && r.pid !== undefined && r.pid !== old.pid;
      },
      `${name} restarted and healthy (cluster.json: ${JSON.stringify(rec(name))})`,
      60_000,
      100,
    );
    const now = rec(name);
    assert.equal(alive(old.pid), false, `${name}'s killed process is gone`);
    assert.ok(alive(now.pid!), `${name}'s new process runs`);
    assert.equal(now.lastExit?.pid, old.pid, 'the unexpected exit is recorded');
    assert.equal(now.lastExit?.signal, 'SIGKILL');
    assert.match(out, new RegExp(`! ${name} \\(pid ${old.pid}\\) exited unexpectedly \\(signal SIGKILL\\); restart #${restartsBefore + 1} in \\d+ ms`), 'the supervisor logs the exit and the restart');
    return now;
  };

  before(async () => {
    let code: number | null | undefined;
    // a base port in 30000-31999 (below the ephemeral range); another one if the preflight finds it busy
    for (let attempt = 0; attempt < 3; attempt++) {
      const base = 30_000 + 100 * Math.floor(Math.random() * 19);
      out = '';
      code = undefined;
      child = spawn(process.execPath, [...CLI, 'cluster', 'up', '--regions', '1', '--nats-per-region', '3', '--gateways-per-region', '2', '--base-port', String(base), '--dir', dir], {
        cwd: REPO_ROOT,
        env: { ...process.env, LOG_LEVEL: 'warn' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child.stdout!.on('data', (d: Buffer) => (out += d));
      child.stderr!.on('data', (d: Buffer) => (out += d));
      const c = child;
      exited = new Promise((r) => c.once('exit', (x) => r(x)));
      void exited.then((x) => (code = x));
      await until(() => code !== undefined || out.includes('cluster ready'), 'cluster up', 120_000, 100);
      if (code === 2 && out.includes('ports in use')) continue;
      break;
    }
    assert.ok(out.includes('cluster ready'), `cluster up failed (exit ${code}):\n${out}`);
    state = readState(dir);
    assert.equal(state.status, 'running');
    for (const p of partsOf(state)) {
      assert.equal(p.rec.state, 'up', `${p.name} up`);
      assert.equal(p.rec.restarts ?? 0, 0);
    }
  });

  after(() => {
    for (const c of clients) c.ws.terminate();
    if (child && child.exitCode === null) child.kill('SIGKILL');
    try {
      for (const p of pidsOf(readState(dir))) if (alive(p.pid)) process.kill(p.pid, 'SIGKILL');
    } catch {
      // no state
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('a gateway killed with kill -9 comes back on its port, UP in HAProxy, counted as 1 restart in cluster status', async () => {
    const r = state.regions[0]!;
    const g = r.gateways[0]!;
    const oldNode = rec(g.name) as GatewayState;
    await killAndWaitBack(g.name, 0);
    assert.equal(await httpStatus(`${g.url}/readyz`), 200, 'ready on the same port');
    assert.notEqual((rec(g.name) as GatewayState).node, oldNode.node, 'a new node id, like a new machine');
    const admin = new HaproxyAdmin(r.haproxy.socket);
    await until(async () => (await admin.server(g.name).catch(() => undefined))?.status === 'UP', `${g.name} UP in HAProxy`, 30_000, 100);
    const st = await runCli(['cluster', 'status', '--dir', dir]);
    assert.equal(st.status, 0, `status reports healthy:\n${st.stdout}${st.stderr}`);
    assert.match(st.stdout, new RegExp(`^${g.name}\\s+gateway\\s+${rec(g.name).pid}\\s+up\\s+1\\s+ready, HAProxy UP\\s+\\d\\d:\\d\\d:\\d\\d pid \\d+ SIGKILL$`, 'm'), st.stdout);
    assert.match(st.stdout, new RegExp(`^${r.gateways[1]!.name}\\s+gateway\\s+\\d+\\s+up\\s+0\\s`, 'm'), 'the other gateway was not restarted');
  });

  it('a nats-server killed with kill -9 comes back, routed to its peers, with its JetStream store', async () => {
    const r = state.regions[0]!;
    const n = r.nats[1]!;
    await killAndWaitBack(n.name, 0);
    // healthz 200 (JetStream current) was the supervisor's condition; its routes and the stream replica are back too
    await until(async () => (await getJson<{ num_routes: number }>(`${n.monitorUrl}/routez`))?.num_routes === r.nats.length - 1, `${n.name} routed to its ${r.nats.length - 1} peers`, 30_000, 200);
    await until(async () => ((await getJson<{ streams: number }>(`${n.monitorUrl}/jsz`))?.streams ?? 0) >= 1, `${n.name} holds its replica of the history stream`, 30_000, 200);
    const jsz = await getJson<{ meta_cluster?: { cluster_size?: number; leader?: string } }>(`${n.monitorUrl}/jsz`);
    assert.equal(jsz?.meta_cluster?.cluster_size, r.nats.length, 'back in the JetStream meta group');
    assert.ok(jsz?.meta_cluster?.leader, 'it knows the meta leader');
  });

  it('HAProxy killed with kill -9 comes back on its port with every gateway UP, and chat works through it', async () => {
    const r = state.regions[0]!;
    await killAndWaitBack(`haproxy-${r.name}`, 0);
    const admin = new HaproxyAdmin(r.haproxy.socket);
    await until(async () => (await admin.servers().catch(() => [])).filter((s) => s.status === 'UP').length === r.gateways.length, 'every gateway UP in the new HAProxy', 30_000, 100);
    await until(async () => (await httpStatus(`${r.haproxy.url}/readyz`)) === 200, 'the frontend answers on the same port', 30_000, 100);
    const s = await createSession(r.haproxy.url, 'carol');
    const c = await RawClient.connect(r.haproxy.url.replace('http', 'ws') + '/ws', s.token);
    clients.push(c);
    c.send({ t: 'join', room: 'heal' });
    await c.next('joined', undefined, 15_000);
    c.send({ t: 'pub', id: 'h1', room: 'heal', text: 'after three kills' });
    const ack = await c.next('ack', (a) => a.id === 'h1', 15_000);
    assert.ok(ack.offset >= 1, 'stored in the history stream (2 of 3 replicas needed)');
    c.ws.terminate();
  });

  it('a gateway killed right before `cluster roll` does not break the roll; rolled gateways are not counted as restarts', async (t) => {
    const r = state.regions[0]!;
    const [g1, g2] = r.gateways;
    const restarts1 = rec(g1!.name).restarts ?? 0;
    process.kill(rec(g1!.name).pid!, 'SIGKILL'); // g1 is the roll's first target
    const roll = await runCli(['cluster', 'roll', '--dir', dir]);
    assert.equal(roll.status, 0, `roll:\n${roll.stdout}${roll.stderr}\nsupervisor:\n${out}`);
    const lines = roll.stdout.split('\n').filter(Boolean);
    assert.equal(lines.at(-1), 'roll done');
    const first = lines.find((l) => l.startsWith(`${g1!.name}: `))!;
    t.diagnostic(`roll found ${g1!.name}: ${first}`);
    assert.match(first, /^\S+: (was down \(not running\): nothing to drain, starting it|set to DRAIN in HAProxy)/, roll.stdout);
    for (const g of [g1!, g2!]) assert.ok(lines.includes(`${g.name}: UP in HAProxy again`), `${g.name} back in HAProxy:\n${roll.stdout}`);
    const s = readState(dir);
    assert.equal(s.status, 'running');
    // g1 may have been restarted by the supervisor before the roll reached it (at most once), never twice
    assert.ok([restarts1, restarts1 + 1].includes(rec(g1!.name).restarts ?? 0), `g1 restarts: ${rec(g1!.name).restarts}`);
    assert.equal(rec(g2!.name).restarts ?? 0, 0, "the roll's own SIGTERM is not a crash: not restarted by the supervisor");
    for (const g of [g1!, g2!]) {
      assert.equal(rec(g.name).state, 'up');
      assert.ok(alive(rec(g.name).pid!));
    }
    const st = await runCli(['cluster', 'status', '--dir', dir]);
    assert.equal(st.status, 0, `status after the roll:\n${st.stdout}${st.stderr}`);
    // the gateway port is served by the recorded process only (no second one started beside it)
    assert.equal(await httpStatus(`${g1!.url}/readyz`), 200);
  });

  it('SIGTERM stops every part and nothing is restarted', async () => {
    const pids = pidsOf(readState(dir));
    assert.equal(pids.length, 3 + 2 + 1);
    child!.kill('SIGTERM');
    const code = await Promise.race([exited!, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 60_000).unref())]);
    assert.equal(code, 0, `supervisor exits cleanly:\n${out}`);
    for (const p of pids) assert.equal(alive(p.pid), false, `${p.name} (pid ${p.pid}) is gone`);
    const s = readState(dir);
    assert.equal(s.status, 'stopped');
    for (const p of partsOf(s)) assert.equal(p.rec.state, 'stopped', `${p.name} stopped`);
    assert.deepEqual(pidsOf(s).map((p) => p.pid).sort(), pids.map((p) => p.pid).sort(), 'no process started during the stop');
  });
});
