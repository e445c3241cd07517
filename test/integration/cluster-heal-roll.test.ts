/**
 * The roll (`rollOne`, the code behind `confab cluster roll`) with a member that
 * is not in the state a roll expects, on real processes: two `confab start`
 * gateways (memory bus) behind a real HAProxy (runtime API).
 *   - crashed (kill -9) and known to be down (`isDown`): no drain step, started,
 *     waited for, re-enabled;
 *   - crashed, but the launcher cannot tell: HAProxy shows it DOWN (never DRAIN),
 *     the drain step accepts that instead of timing out, the roll goes on;
 *   - alive but put in MAINT by hand: drained, replaced, and back UP (ready).
 *   - a replacement that exits at once ends the target's roll early, `end(false)`.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { httpStatus, MARKERS, spawnGatewayProc, startGatewayProc, tail, waitFor, waitGatewayReady, waitGone, type GatewaySpawn, type Proc } from '../../src/procs/index.js';
import { RollError, rollOne, type RollEvent, type RollTarget } from '../../src/cli/cluster-roll.js';
import { TEST_SECRET } from '../../src/testkit/gateway.js';
import { startHaproxy, type HaproxyProcess } from '../../src/procs/haproxy.js';

interface Gw {
  name: string;
  port: number;
  url: string;
  log: string;
  proc: Proc;
  gen: number;
}

describe('cluster roll with a member that is down or in maintenance', () => {
  const dir = mkdtempSync(join(tmpdir(), 'confab-heal-roll-'));
  const gws: Gw[] = [];
  let hap: HaproxyProcess;

  /** Gateway `g`'s current generation (started on port 0 the first time, then on the port it got). */
  const gwSpec = (g: Pick<Gw, 'name' | 'gen' | 'log'>): Omit<GatewaySpawn, 'port'> => ({
    node: `${g.name}-v${g.gen}`,
    region: 'local',
    natsUrl: '', // memory bus
    secret: TEST_SECRET,
    dataDir: join(dir, `${g.name}-v${g.gen}`),
    logFile: g.log,
    streamReplicas: 1,
    env: { LOG_LEVEL: 'warn', CONFAB_DRAIN_READY_DELAY_MS: '300', CONFAB_DRAIN_WINDOW_MS: '300', CONFAB_SHUTDOWN_TIMEOUT_MS: '5000' },
  });
  const spawnGw = (g: Omit<Gw, 'proc'>) => spawnGatewayProc({ ...gwSpec(g), port: g.port });

  /** A roll target the way a launcher builds one; `knowsDown` adds `isDown` (as the supervisor does). */
  const target = (g: Gw, knowsDown: boolean, calls: string[]): RollTarget => ({
    name: g.name,
    url: g.url,
    admin: hap.admin,
    begin: () => void calls.push('begin'),
    end: (ok) => void calls.push(`end ${ok}`),
    ...(knowsDown ? { isDown: () => g.proc.hasExited() } : {}),
    terminate: () => {
      if (!g.proc.hasExited()) process.kill(g.proc.pid, 'SIGTERM');
    },
    waitExit: async (killAfterMs) => {
      await waitGone(g.proc.pid, [...MARKERS.gateway], killAfterMs);
    },
    restart: async () => {
      g.gen++;
      g.proc = await spawnGw(g);
    },
    diagnostics: () => tail(g.log, 10),
  });

  const killAndWaitDown = async (g: Gw) => {
    process.kill(g.proc.pid, 'SIGKILL');
    await g.proc.exited;
    await hap.admin.waitStatus(g.name, (s) => s.status.startsWith('DOWN'), 15_000, 'DOWN');
  };

  before(async () => {
    for (let i = 0; i < 2; i++) {
      const g = { name: `g${i + 1}`, log: join(dir, `g${i + 1}.log`), gen: 1 };
      const { proc, port, url } = await startGatewayProc(gwSpec(g));
      gws.push({ ...g, port, url, proc });
    }
    for (const g of gws) await waitGatewayReady(g.url, g.proc, g.log, 30_000);
    hap = await startHaproxy({ backends: gws.map((g) => ({ name: g.name, port: g.port })), checkIntervalMs: 200, dir, name: 'hap' });
  });

  after(async () => {
    await hap?.stop();
    await Promise.all(
      gws.map(async (g) => {
        if (!g.proc.hasExited()) process.kill(g.proc.pid, 'SIGKILL');
        await g.proc.exited;
      }),
    );
    rmSync(dir, { recursive: true, force: true });
  });

  it('a crashed gateway the launcher knows is down: no drain step; started, ready, UP again', async () => {
    const g = gws[0]!;
    await killAndWaitDown(g);
    const events: RollEvent[] = [];
    const calls: string[] = [];
    await rollOne(target(g, true, calls), { onEvent: (e) => events.push(e), exitTimeoutMs: 10_000, readyTimeoutMs: 30_000 });
    assert.deepEqual(events.map((e) => e.type), ['down', 'started', 'ready', 'up']);
    assert.deepEqual(calls, ['begin', 'end true']);
    assert.equal(g.gen, 2);
    assert.equal((await hap.admin.server(g.name)).status, 'UP');
    assert.equal(await httpStatus(`${g.url}/readyz`), 200);
  });

  it('a crashed gateway the launcher cannot tell apart: the drain step accepts DOWN (no timeout), the roll goes on', async () => {
    const g = gws[1]!;
    await killAndWaitDown(g);
    const events: RollEvent[] = [];
    const start = Date.now();
    await rollOne(target(g, false, []), { onEvent: (e) => events.push(e), exitTimeoutMs: 10_000, readyTimeoutMs: 30_000 });
    assert.deepEqual(events.map((e) => e.type), ['drain', 'sigterm', 'unready', 'exited', 'started', 'ready', 'up']);
    const drain = events[0] as Extract<RollEvent, { type: 'drain' }>;
    assert.match(drain.status, /^DOWN/, 'HAProxy showed it DOWN, not DRAIN');
    assert.ok(drain.at - start < 5000, `the drain step did not wait for a DRAIN that never comes (${drain.at - start} ms)`);
    assert.equal((await hap.admin.server(g.name)).status, 'UP');
  });

  it('a live gateway put in MAINT by hand: drained, replaced, and ready (UP) again', async () => {
    const g = gws[0]!;
    await hap.admin.setState(g.name, 'maint');
    await hap.admin.waitStatus(g.name, (s) => s.status === 'MAINT', 5000, 'MAINT');
    const old = g.proc;
    const events: RollEvent[] = [];
    await rollOne(target(g, true, []), { onEvent: (e) => events.push(e), exitTimeoutMs: 10_000, readyTimeoutMs: 30_000 });
    assert.deepEqual(events.map((e) => e.type), ['drain', 'sigterm', 'unready', 'exited', 'started', 'ready', 'up']);
    assert.ok(old.hasExited() && old.exitSignal() === null, 'the old process exited by itself after SIGTERM (drained)');
    await waitFor(async () => (await hap.admin.server(g.name)).status === 'UP', { what: `${g.name} UP`, timeoutMs: 5000, intervalMs: 100 });
  });

  it('a replacement that exits at once fails the roll of that target quickly, with end(false) and a RollError naming the step', async () => {
    const g = gws[1]!;
    await killAndWaitDown(g);
    const calls: string[] = [];
    const t: RollTarget = {
      ...target(g, true, calls),
      restart: async () => {
        // a configuration the gateway refuses (exit 2)
        g.proc = await spawnGatewayProc({ port: g.port, node: 'bad', region: 'not a region!', natsUrl: '', secret: TEST_SECRET, dataDir: join(dir, 'bad'), logFile: g.log, streamReplicas: 1 });
      },
    };
    const start = Date.now();
    await assert.rejects(
      rollOne(t, { exitTimeoutMs: 5000, readyTimeoutMs: 30_000 }),
      (e: unknown) => e instanceof RollError && e.step === 'replacement /readyz' && /the replacement exited/.test(e.message),
    );
    assert.ok(Date.now() - start < 15_000, 'not after the whole readiness timeout');
    assert.deepEqual(calls, ['begin', 'end false']);
  });
});
