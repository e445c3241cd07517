/**
 * src/procs, the process supervision `confab cluster` and the tests share: the supervisor keeps
 * output (memory or log file), reports exit code and signal, fails a start of a missing command,
 * stops by PID with SIGTERM then SIGKILL; bounded waits end early when told to; a gateway process
 * started on port 0 reports the port the kernel gave it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { alive, httpStatus, ManagedProcess, signalIfOurs, spawnLogged, startGatewayProc, waitFor, waitGone, waitHttp, WaitTimeoutError } from '../../src/procs/index.js';

const dir = mkdtempSync(join(tmpdir(), 'confab-procs-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const node = (code: string) => ({ command: process.execPath, args: ['-e', code] });

describe('ManagedProcess', () => {
  it('keeps the output in memory and reports the exit code', async () => {
    const p = new ManagedProcess(node("process.stdout.write('hello '); process.stderr.write('world'); process.exit(3)"));
    p.spawn();
    await p.spawned;
    await p.exited;
    await waitFor(() => p.log.includes('world'), { timeoutMs: 2000, what: 'the output' });
    assert.equal(p.log, 'hello world');
    assert.equal(p.exitCode, 3);
    assert.equal(p.exitSignal, null);
    assert.equal(p.running, false);
  });

  it('appends the output to a log file when given one, across restarts', async () => {
    const logFile = join(dir, 'child.log');
    const p = new ManagedProcess({ ...node("console.log('run')"), logFile });
    for (let i = 0; i < 2; i++) {
      p.spawn();
      await p.exited;
    }
    assert.equal(readFileSync(logFile, 'utf8'), 'run\nrun\n');
    assert.equal(p.log, 'run\nrun\n');
  });

  it('rejects `spawned` for a command that does not exist, and counts as exited', async () => {
    const p = new ManagedProcess({ command: join(dir, 'no-such-binary'), args: [] });
    p.spawn();
    await assert.rejects(p.spawned, /cannot start .*no-such-binary/);
    await p.exited;
    assert.equal(p.running, false);
    assert.equal(p.exitCode, -1);
  });

  it('stop() sends SIGTERM, then SIGKILL to a process that ignores it', async () => {
    const p = new ManagedProcess({ ...node("process.on('SIGTERM', () => {}); console.log('up'); setInterval(() => {}, 1000)"), killAfterMs: 300 });
    await p.start();
    await waitFor(() => p.log.includes('up'), { timeoutMs: 5000, what: 'the child to install its handler' });
    const t0 = Date.now();
    await p.stop();
    assert.equal(p.exitSignal, 'SIGKILL');
    assert.ok(Date.now() - t0 >= 250, 'SIGKILL came only after killAfterMs');
  });

  it('a readiness wait fails at once when the process exits', async () => {
    const p = new ManagedProcess({ ...node("console.error('boom'); process.exit(1)"), ready: { check: async () => false, timeoutMs: 10_000, intervalMs: 20, what: 'never' } });
    const t0 = Date.now();
    await assert.rejects(p.start(), (e: Error & { log?: string }) => /exited \(code 1\) while waiting for never/.test(e.message) && e.log?.includes('boom') === true);
    assert.ok(Date.now() - t0 < 5000);
  });
});

describe('spawnLogged and PID helpers', () => {
  it('runs detached with its output in a file; signalIfOurs checks the command line first', async () => {
    const logFile = join(dir, 'detached.log');
    const p = await spawnLogged(process.execPath, ['-e', "console.log('detached up'); setInterval(() => {}, 1000)"], process.env, logFile);
    assert.ok(alive(p.pid));
    await waitFor(() => readFileSync(logFile, 'utf8').includes('detached up'), { timeoutMs: 5000, what: 'its log line' });
    assert.equal(signalIfOurs(p.pid, ['definitely-not-this-command'], 'SIGTERM'), false, 'another command line is left alone');
    assert.ok(alive(p.pid));
    assert.equal(signalIfOurs(p.pid, [process.execPath], 'SIGTERM'), true);
    assert.equal(await p.exited, null);
    assert.equal(p.exitSignal(), 'SIGTERM');
    assert.equal(p.hasExited(), true);
    assert.equal(await waitGone(p.pid, [process.execPath], 1000), true);
  });
});

describe('waitFor', () => {
  it('times out with a WaitTimeoutError naming what it waited for', async () => {
    await assert.rejects(waitFor(() => false, { timeoutMs: 50, what: 'Godot' }), (e: Error) => e instanceof WaitTimeoutError && /timed out after 50 ms waiting for Godot/.test(e.message));
  });

  it('ends at once when abort gives a reason', async () => {
    const t0 = Date.now();
    await assert.rejects(waitFor(() => false, { timeoutMs: 10_000, what: 'x', abort: () => 'gone' }), /^Error: x: gone$/);
    assert.ok(Date.now() - t0 < 1000);
  });
});

describe('gateway processes', () => {
  it('a gateway started on port 0 reports the port the kernel gave it, and serves there', async () => {
    const logFile = join(dir, 'gw.log');
    const { proc, url, port } = await startGatewayProc({ node: 'procs-1', region: 'local', natsUrl: '', secret: 'procs-test-secret-0123456789', dataDir: join(dir, 'gw'), logFile, streamReplicas: 1, env: { CONFAB_BUS: 'memory' } });
    try {
      assert.ok(port > 0, `port ${port}`);
      assert.equal(url, `http://127.0.0.1:${port}`);
      await waitHttp(`${url}/readyz`, { timeoutMs: 30_000 });
      assert.equal(await httpStatus(`${url}/healthz`), 200);
    } finally {
      process.kill(proc.pid, 'SIGTERM');
      await proc.exited;
    }
  });
});
