/**
 * Test kit: start gateways in this process (over a shared in-process broker or
 * any adapters) or as child processes (for kill -9), on loopback ports the
 * kernel assigns (PORT=0, the real port read back), and always stop them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { MemoryBroker, MemoryBus } from '../bus/memory.js';
import type { Bus } from '../bus/types.js';
import { loadConfig, type Config } from '../config/config.js';
import { startGateway, type Gateway } from '../gateway/index.js';
import { MemoryHistory } from '../history/memory.js';
import type { History } from '../history/types.js';
import { SUBPROTOCOL } from '../protocol/frames.js';
import { waitFor } from './wait.js';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const TEST_SECRET = 'test-secret-0123456789abcdef';

export interface TestGateway {
  gw: Gateway;
  url: string;
  wsUrl: string;
  config: Config;
  close(): Promise<void>;
}

export interface TestGatewayOptions {
  env?: Record<string, string>;
  config?: Partial<Config>;
  bus?: Bus;
  history?: History;
  /** Shared broker for several gateways in one process (ignored when `bus` is given). */
  broker?: MemoryBroker;
}

/** A gateway on 127.0.0.1:<kernel-assigned port>, in-process bus and in-memory history unless given. */
export async function startTestGateway(opts: TestGatewayOptions = {}): Promise<TestGateway> {
  const dataDir = mkdtempSync(join(tmpdir(), 'confab-gw-'));
  const config = loadConfig(
    { HOST: '127.0.0.1', PORT: '0', CONFAB_DATA_DIR: dataDir, LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent', CONFAB_SECRET: TEST_SECRET, CONFAB_DRAIN_READY_DELAY_MS: '0', CONFAB_DRAIN_WINDOW_MS: '200', ...opts.env },
    opts.config,
  );
  const bus = opts.bus ?? new MemoryBus(opts.broker ?? new MemoryBroker());
  const history = opts.history ?? new MemoryHistory(config.historyLimit);
  const gw = await startGateway({ config, bus, history, logger: pino({ level: config.logLevel }) });
  const url = gw.url;
  return {
    gw,
    url,
    wsUrl: url.replace(/^http/, 'ws') + '/ws',
    config,
    close: async () => {
      await gw.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** POST /api/session and return the token and user. */
export async function createSession(url: string, handle: string, token?: string): Promise<{ token: string; user: { id: string; handle: string } }> {
  const res = await fetch(`${url}/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(token ? { handle, token } : { handle }) });
  const body = (await res.json()) as { token: string; user: { id: string; handle: string }; code?: string; message?: string };
  if (res.status !== 200) throw new Error(`session for ${handle}: ${res.status} ${body.code}: ${body.message}`);
  return body;
}

export interface GatewayProcess {
  child: ChildProcess;
  url: string;
  pid: number;
  output: () => string;
  /** SIGKILL and wait for exit. */
  kill(): Promise<void>;
  /** SIGTERM and wait for exit; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/**
 * Start `confab start` (the TypeScript source through tsx) as a child process. Without a PORT in `env` it
 * listens on a port from the kernel (PORT=0) and the URL is read from its "confab listening on URL" line.
 * With a fixed PORT (a restart on the port an earlier process had), a start whose output says the port is
 * still taken (EADDRINUSE) is tried again, bounded.
 */
export async function spawnGateway(env: Record<string, string>, opts: { timeoutMs?: number } = {}): Promise<GatewayProcess> {
  const attempts = env.PORT !== undefined && env.PORT !== '0' ? 3 : 1;
  for (let attempt = 1; ; attempt++) {
    try {
      return await spawnGatewayOnce(env, opts);
    } catch (e) {
      if (!(e instanceof GatewayExitedError && e.portTaken) || attempt >= attempts) throw e;
      await new Promise((r) => setTimeout(r, 250 * attempt)); // back off before binding the same port again
    }
  }
}

class GatewayExitedError extends Error {
  constructor(message: string, readonly portTaken: boolean) {
    super(message);
    this.name = 'GatewayExitedError';
  }
}

async function spawnGatewayOnce(env: Record<string, string>, opts: { timeoutMs?: number }): Promise<GatewayProcess> {
  const args = ['--import', 'tsx', join(REPO_ROOT, 'src/cli/confab.ts'), 'start'];
  const child = spawn(process.execPath, args, {
    cwd: REPO_ROOT,
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'warn', CONFAB_SECRET: TEST_SECRET, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  let exited = false;
  let exitCode: number | null = null;
  // 'close': the process has exited and all its output is read (the reason it exited is in `out`)
  const exit = new Promise<void>((r) => child.once('close', (code) => ((exited = true), (exitCode = code), r())));
  const listening = () => /confab listening on (http:\/\/\S+)/.exec(out)?.[1];
  try {
    await waitFor(() => exited || listening() !== undefined, { timeoutMs: opts.timeoutMs ?? 20_000, what: 'gateway process to listen' });
  } catch (e) {
    child.kill('SIGKILL');
    await exit;
    throw new Error(`${(e as Error).message}\n${out}`, { cause: e });
  }
  const url = listening();
  if (exited || url === undefined) throw new GatewayExitedError(`gateway process exited early (${exitCode}):\n${out}`, /EADDRINUSE/.test(out));
  return {
    child,
    url,
    pid: child.pid!,
    output: () => out,
    kill: async () => {
      if (!exited) child.kill('SIGKILL');
      await exit;
    },
    stop: async () => {
      if (!exited) child.kill('SIGTERM');
      await exit;
      return exitCode;
    },
  };
}

export const WS_PROTOCOL = SUBPROTOCOL;
