/**
 * The test kit itself: ports come from the kernel (nats-server -1 ports read back
 * from its ports file, gateways on PORT=0), restarts keep them, a server that
 * cannot bind is seen in its own output and retried elsewhere (redis-server,
 * haproxy) instead of being waited on, a process that exits during start fails the
 * start at once with its log, a different server holding the port is never taken
 * for the one started, and a test process ended by SIGTERM (the runner's file
 * timeout) leaves no server behind.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { REPO_ROOT, spawnGateway } from '../../src/testkit/gateway.js';
import { HaproxyError, startHaproxy } from '../../src/procs/haproxy.js';
import { startNats, startNatsCluster, waitHealthy } from '../../src/procs/nats.js';
import { PortTakenError, withPortRetry } from '../../src/procs/ports.js';
import { startRedis } from '../../src/procs/redis.js';
import { waitFor } from '../../src/procs/wait.js';

/** A listener on a kernel port (stands for whoever took a port meanwhile); answers every line with `reply`. */
async function holdPort(reply = ''): Promise<{ port: number; server: Server }> {
  const server = createServer((sock) => {
    sock.on('data', () => sock.write(reply));
    sock.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as { port: number }).port, server };
}
const release = (s: Server) => new Promise<void>((r) => s.close(() => r()));

/** Gone or a zombie (exited, not yet reaped): the process no longer runs. */
function gone(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] === 'Z';
  } catch {
    return true;
  }
}

describe('test kit: nats-server', () => {
  it('a cluster on kernel ports: full-mesh explicit routes, its own cluster name, restarts on the same ports', async (t) => {
    const c = await startNatsCluster(3);
    t.after(() => c.stop());
    const ports = c.servers.map((s) => [s.port, s.monitorPort, s.clusterPort!]);
    assert.equal(new Set(ports.flat()).size, 9, 'nine distinct ports');
    const names = new Set<string>();
    for (const s of c.servers) {
      const varz = (await s.monitor('/varz')).body as { cluster: { name: string; urls: string[] } };
      names.add(varz.cluster.name);
      const others = c.servers.filter((o) => o !== s).map((o) => `127.0.0.1:${o.clusterPort}`);
      // n1 started with a placeholder route and was reloaded with the real ones; n2, n3 were started with a route to n1
      if (s === c.servers[0]) assert.deepEqual([...varz.cluster.urls].sort(), others.sort(), 'n1 routes explicitly to every other member (its placeholder is gone)');
      else assert.deepEqual(varz.cluster.urls, [`127.0.0.1:${c.servers[0]!.clusterPort}`]);
      assert.equal((await s.monitor('/routez')).body.num_routes, 2, `${s.name} has a route to each other member`);
    }
    assert.equal(names.size, 1);
    assert.match([...names][0]!, /^confab-test-[0-9a-f]{8}$/);
    const n2 = c.servers[1]!;
    await n2.stop('SIGKILL');
    await assert.rejects(waitHealthy(n2), /not running/, 'waiting on a stopped server fails at once');
    await n2.start();
    assert.deepEqual([n2.port, n2.monitorPort, n2.clusterPort], ports[1], 'same ports after a restart');
    const restarted = (await n2.monitor('/varz')).body as { cluster: { urls: string[] } };
    assert.deepEqual([...restarted.cluster.urls].sort(), [c.servers[0]!, c.servers[2]!].map((o) => `127.0.0.1:${o.clusterPort}`).sort(), 'a restart routes explicitly to every other member');
    await Promise.all(c.servers.map((s) => s.stop('SIGKILL')));
    await Promise.all(c.servers.map((s) => s.start({ wait: false })));
    await Promise.all(c.servers.map((s) => waitHealthy(s)));
    assert.deepEqual(c.servers.map((s) => [s.port, s.monitorPort, s.clusterPort]), ports, 'the whole cluster restarts on its ports');
  });

  it('a server that exits during start fails the start at once, with its log', async () => {
    const t0 = Date.now();
    await assert.rejects(startNatsCluster(3, { extraConfig: 'no_such_option_here: {{{' }), (e: Error) => /exited/.test(e.message) && /nats-server/.test(e.message));
    assert.ok(Date.now() - t0 < 10_000, `failed after ${Date.now() - t0} ms, not after the 30 s readiness timeout`);
  });

  it('a single server restarts on its ports', async (t) => {
    const s = await startNats();
    t.after(() => s.close());
    const before = [s.port, s.monitorPort];
    await s.stop();
    await s.start();
    assert.deepEqual([s.port, s.monitorPort], before);
  });
});

describe('test kit: redis-server and haproxy on ports that were free a moment ago', () => {
  it('withPortRetry tries another port only when the server says its port was taken, and gives up after a bound', async () => {
    const tried: number[] = [];
    const got = await withPortRetry(async (port) => {
      tried.push(port);
      if (tried.length < 3) throw new PortTakenError(port, 'taken');
      return port;
    });
    assert.equal(tried.length, 3);
    assert.equal(got, tried[2]);
    await assert.rejects(withPortRetry(async () => { throw new Error('config error'); }), /config error/, 'anything else is not retried');
    let n = 0;
    await assert.rejects(withPortRetry(async (port) => { n++; throw new PortTakenError(port, 'taken'); }, 4), /gave up after 4/);
    assert.equal(n, 4);
  });

  it('redis-server on a taken port: its bind failure is seen (PortTakenError), and an impostor answering PONG is not taken for it', async () => {
    const held = await holdPort('+PONG\r\n');
    try {
      const t0 = Date.now();
      await assert.rejects(startRedis({ port: held.port }), (e: unknown) => e instanceof PortTakenError && /Address already in use/i.test((e as Error).message));
      assert.ok(Date.now() - t0 < 5000, 'seen from its exit, not after the readiness timeout');
    } finally {
      await release(held.server);
    }
    const r = await startRedis();
    try {
      assert.equal(await r.command('PING'), 'PONG');
      await r.restart({ crash: true });
      assert.equal(await r.command('PING'), 'PONG', 'back on the same port');
    } finally {
      await r.close();
    }
  });

  it('haproxy on a taken port fails at once with its bind error; without a port it gets one', async () => {
    const held = await holdPort();
    try {
      await assert.rejects(startHaproxy({ backends: [], port: held.port, waitUp: false }), (e: unknown) => e instanceof HaproxyError && /cannot bind|in use/i.test((e as Error).message));
    } finally {
      await release(held.server);
    }
    const h = await startHaproxy({ backends: [], waitUp: false });
    try {
      assert.ok(h.port > 0);
      assert.deepEqual(await h.admin.servers(), []);
    } finally {
      await h.stop();
    }
  });
});

describe('test kit: processes', () => {
  it('spawnGateway listens on a kernel port and reports it', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'confab-kit-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const g = await spawnGateway({ CONFAB_DATA_DIR: dir }, { timeoutMs: 60_000 });
    t.after(() => g.kill());
    const u = new URL(g.url);
    assert.ok(Number(u.port) > 0);
    assert.equal((await fetch(`${g.url}/healthz`)).status, 200);
  });

  it('a test process ended by SIGTERM (the runner at a file timeout) kills the servers it started', async () => {
    const script = [
      `import { ManagedProcess } from ${JSON.stringify(join(REPO_ROOT, 'src/procs/process.ts'))};`,
      `const p = new ManagedProcess({ command: 'sleep', args: ['300'] });`,
      `await p.start();`,
      `console.log('pid', p.pid);`,
      `setInterval(() => {}, 1000);`,
    ].join('\n');
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d));
    child.stderr!.on('data', (d: Buffer) => (out += d));
    const exited = new Promise<NodeJS.Signals | null>((r) => child.once('exit', (_code, signal) => r(signal)));
    await waitFor(() => /pid \d+/.test(out), { timeoutMs: 30_000, what: `the child's server to start (${out})` });
    const pid = Number(/pid (\d+)/.exec(out)![1]);
    assert.equal(gone(pid), false);
    child.kill('SIGTERM');
    assert.equal(await exited, 'SIGTERM', 'the test process still ends by the signal');
    assert.ok(gone(pid), `server ${pid} was killed with its test process`);
  });
});
