/**
 * The bus hop: one confab gateway on the in-process bus against two gateways
 * joined by NATS (a real nats-server with JetStream), half of the room on
 * each, the publishers on the first, at the fixed 50k deliveries/s. Skipped,
 * with the reason, until the NATS adapter is built.
 */
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { startSystem, freePort, Loadgen, confabDist, type SystemProc } from './systems.js';
import { measuredStep, type BenchSizes, type Step } from './scenarios.js';

/** null when the bus hop can run, else why not. */
export function busHopAvailable(): string | null {
  if (!existsSync(path.join(confabDist(), 'nats', 'index.js'))) return 'no NATS adapter (dist/nats/index.js) yet';
  try {
    execFileSync('nats-server', ['--version'], { stdio: 'ignore' });
  } catch {
    return 'nats-server not installed';
  }
  return null;
}

async function startNats(): Promise<{ url: string; stop(): Promise<void> }> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), 'confab-bench-nats-'));
  const child = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`nats-server not ready: ${log.slice(-500)}`)), 15_000);
    const on = (d: Buffer) => {
      log += d.toString();
      if (log.includes('Server is ready')) {
        clearTimeout(t);
        resolve();
      }
    };
    child.stdout!.on('data', on);
    child.stderr!.on('data', on);
    child.once('exit', (c) => {
      clearTimeout(t);
      reject(new Error(`nats-server exited ${c}: ${log.slice(-500)}`));
    });
  });
  return {
    url: `nats://127.0.0.1:${port}`,
    async stop() {
      const done = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await done;
      clearTimeout(t);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function measure(servers: SystemProc[], n: number, s: BenchSizes): Promise<Step> {
  const lg = new Loadgen();
  try {
    const init = await lg.call<{ failed: number; reasons: Record<string, number> }>({
      cmd: 'init',
      system: 'confab',
      host: servers[0]!.host,
      port: servers[0]!.port,
      port2: servers[1]?.port,
      layout: { kind: 'room', n, pubs: 4 },
      concurrency: 256,
    });
    if (init.failed > 0) throw new Error(`${init.failed} clients failed to connect: ${JSON.stringify(init.reasons)}`);
    const rate = 50_000 / n;
    await lg.call({ cmd: 'step', rate, durationMs: 300, drainMs: s.drainMs, payloadBytes: 100 });
    return await measuredStep(servers, lg, { rate, durationMs: s.stepMs * 2, drainMs: s.drainMs, payloadBytes: 100 });
  } finally {
    await lg.stop();
  }
}

export async function busHop(s: BenchSizes): Promise<{ single: Step; pair: Step; n: number }> {
  const n = s.fanout[0]!.n;
  const single = await startSystem('confab');
  let one: Step;
  try {
    one = await measure([single], n, s);
  } finally {
    await single.stop();
  }
  const nats = await startNats();
  const secret = randomBytes(24).toString('hex');
  const env = { CONFAB_BUS: 'nats', NATS_URL: nats.url, CONFAB_SECRET: secret };
  const started: SystemProc[] = [];
  try {
    started.push(await startSystem('confab', { env: { ...env, CONFAB_NODE_ID: 'bench-a' } }));
    started.push(await startSystem('confab', { env: { ...env, CONFAB_NODE_ID: 'bench-b' } }));
    const two = await measure(started, n, s);
    return { single: one, pair: two, n };
  } finally {
    for (const x of started) await x.stop();
    await nats.stop();
  }
}
