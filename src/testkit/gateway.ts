/**
 * Test kit: start gateways in this process (over a shared in-process broker or
 * any adapters) or as child processes (for kill -9), on loopback ports the
 * kernel assigns (PORT=0, the real port read back), and always stop them.
 */
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
import { runGateway, type GatewayProcess } from '../procs/gateway.js';
import { waitFor } from '../procs/wait.js';

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

export type { GatewayProcess } from '../procs/gateway.js';

/**
 * Start `confab start` (the TypeScript source through tsx) as a child process with the test secret and
 * LOG_LEVEL=warn unless `env` says otherwise; see `runGateway` (src/procs): port 0 unless PORT is given.
 */
export function spawnGateway(env: Record<string, string>, opts: { timeoutMs?: number; nofile?: number } = {}): Promise<GatewayProcess> {
  return runGateway({ LOG_LEVEL: 'warn', CONFAB_SECRET: TEST_SECRET, ...env }, opts);
}

export const WS_PROTOCOL = SUBPROTOCOL;
