/**
 * Gateway processes: `confab start` as a child (the same entry, compiled or
 * TypeScript source, as the running code), with a clean environment, output to a
 * log file. `PORT` 0 lets the kernel choose the port: the gateway prints
 * `confab listening on http://HOST:PORT` and `listeningUrl` reads it back from the
 * log, so a first start needs no free-port guess (a restart that must come back on
 * the same port, behind HAProxy, passes the port it got).
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tail } from './pid.js';
import { waitBeforeRebind } from './ports.js';
import { bindFailed, ManagedProcess, spawnLogged, type Proc } from './process.js';
import { httpStatus, waitFor } from './wait.js';

/** How to run `confab start` in a child: the same entry (compiled or TypeScript source) as the running code. */
export function gatewayCommand(): { cmd: string; args: string[]; cwd: string } {
  const here = dirname(fileURLToPath(import.meta.url));
  const ts = import.meta.url.endsWith('.ts');
  const entry = join(here, '..', 'cli', ts ? 'confab.ts' : 'confab.js');
  const root = resolve(here, '../..');
  const args = ts ? ['--import', 'tsx', entry, 'start'] : [entry, 'start'];
  return { cmd: process.execPath, args, cwd: root };
}

/** Variables a parent shell might have that must not leak into a cluster gateway. */
export const GATEWAY_ENV_SCRUB = ['NATS_URL', 'NATSAPPHOST', 'REDIS_URL', 'CONFAB_BUS', 'FLY_ALLOC_ID', 'FLY_REGION', 'FLY_APP_NAME', 'CONFAB_NODE_ID', 'CONFAB_REGION', 'PORT', 'HOST', 'CONFAB_DATA_DIR', 'CONFAB_SECRET', 'CONFAB_STREAM_REPLICAS'];

/**
 * Defaults for a gateway behind a local HAProxy: it forwards the client address (X-Forwarded-For) from
 * 127.0.0.1, and every local client is 127.0.0.1 too, hence the high per-address limit; drain gives
 * HAProxy time to notice.
 */
export const LOCAL_GATEWAY_DEFAULTS: Readonly<Record<string, string>> = {
  CONFAB_TRUSTED_PROXIES: '127.0.0.1',
  CONFAB_MAX_CONN_PER_IP: '10000',
  CONFAB_DRAIN_READY_DELAY_MS: '1500',
  CONFAB_DRAIN_WINDOW_MS: '3000',
  CONFAB_SHUTDOWN_TIMEOUT_MS: '15000',
  LOG_LEVEL: 'info',
};

export interface GatewaySpawn {
  /** 0: the kernel chooses (`startGatewayProc` reads it back). */
  port: number;
  node: string;
  region: string;
  natsUrl: string;
  secret: string;
  dataDir: string;
  logFile: string;
  streamReplicas: number;
  /** Extra variables (win over the defaults below, lose to the fixed ones above). */
  env?: Record<string, string>;
}

/** Start one gateway process (`confab start`) on 127.0.0.1:port; resolves once spawned (wait for /readyz separately). */
export async function spawnGatewayProc(g: GatewaySpawn): Promise<Proc> {
  const base: Record<string, string | undefined> = { ...process.env };
  for (const k of GATEWAY_ENV_SCRUB) delete base[k];
  const env = {
    ...LOCAL_GATEWAY_DEFAULTS,
    ...base,
    ...g.env,
    HOST: '127.0.0.1',
    PORT: String(g.port),
    FLY_ALLOC_ID: g.node,
    FLY_REGION: g.region,
    NATS_URL: g.natsUrl,
    CONFAB_SECRET: g.secret,
    CONFAB_DATA_DIR: g.dataDir,
    CONFAB_STREAM_REPLICAS: String(g.streamReplicas),
  };
  const { cmd, args, cwd } = gatewayCommand();
  return spawnLogged(cmd, args, env, g.logFile, cwd);
}

/** The URL a gateway printed it listens on (`confab listening on http://…`), the last one in `log`; undefined before. */
export function listeningUrl(log: string): string | undefined {
  const all = [...log.matchAll(/confab listening on (http:\/\/[^\s]+)/g)];
  return all.at(-1)?.[1];
}

/**
 * Start a gateway process (port 0 unless given) and wait until it prints the URL it listens on;
 * resolves with the process and that URL and port (only the log written by this run is read).
 */
export async function startGatewayProc(g: Omit<GatewaySpawn, 'port'> & { port?: number }, timeoutMs = 30_000): Promise<{ proc: Proc; url: string; port: number }> {
  const offset = existsSync(g.logFile) ? statSync(g.logFile).size : 0;
  const proc = await spawnGatewayProc({ ...g, port: g.port ?? 0 });
  const ownLog = () => {
    try {
      return readFileSync(g.logFile).subarray(offset).toString('utf8');
    } catch {
      return '';
    }
  };
  let url: string | undefined;
  await waitFor(() => (url = listeningUrl(ownLog())) !== undefined, {
    timeoutMs,
    intervalMs: 50,
    what: `gateway pid ${proc.pid} to listen`,
    abort: () => (proc.hasExited() ? `process exited; log:\n${tail(g.logFile)}` : undefined),
  });
  return { proc, url: url!, port: Number(new URL(url!).port) };
}

/** Wait for a gateway's /readyz 200, failing early (with its log tail) if the process exits. */
export async function waitGatewayReady(url: string, proc: Proc | undefined, logFile: string, timeoutMs = 30_000): Promise<void> {
  await waitFor(async () => (await httpStatus(`${url}/readyz`)) === 200, {
    what: `gateway ${url} /readyz`,
    timeoutMs,
    intervalMs: 100,
    abort: () => (proc?.hasExited() ? `process exited; log:\n${tail(logFile)}` : undefined),
  });
}

/** A gateway process whose output is kept in memory (`runGateway`). */
export interface GatewayProcess {
  /** The child process of this run (for its exit events). */
  child: ChildProcess;
  /** http://127.0.0.1:PORT it listens on (read from its output). */
  url: string;
  pid: number;
  /** Its output so far (stdout and stderr). */
  output: () => string;
  /** SIGKILL and wait for exit. */
  kill(): Promise<void>;
  /** SIGTERM (SIGKILL after `killAfterMs`) and wait for exit; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** A gateway process exited before it listened (`portTaken`: its output says the port was in use). */
export class GatewayExitedError extends Error {
  constructor(message: string, readonly portTaken: boolean) {
    super(message);
    this.name = 'GatewayExitedError';
  }
}

/**
 * Start `confab start` with `env` over this process's environment, output kept in memory. Without
 * PORT (or with PORT=0) it listens on a port from the kernel and the URL is read from its "confab
 * listening on URL" line; with a fixed PORT (a restart on the port an earlier process had), a start
 * whose output says the port is still taken is tried again, bounded. SIGKILLed when this process
 * exits or is ended by SIGTERM/SIGINT.
 */
export async function runGateway(env: Record<string, string>, opts: RunGatewayOptions = {}): Promise<GatewayProcess> {
  const attempts = env.PORT !== undefined && env.PORT !== '0' ? 3 : 1;
  for (let attempt = 1; ; attempt++) {
    try {
      return await runGatewayOnce(env, opts);
    } catch (e) {
      if (!(e instanceof GatewayExitedError && e.portTaken) || attempt >= attempts) throw e;
      await waitBeforeRebind(attempt);
    }
  }
}

export interface RunGatewayOptions {
  timeoutMs?: number;
  killAfterMs?: number;
  /** Run under this open-files limit, soft and hard (`prlimit --nofile`, which execs: the pid is the gateway's). */
  nofile?: number;
}

async function runGatewayOnce(env: Record<string, string>, opts: RunGatewayOptions): Promise<GatewayProcess> {
  const g = gatewayCommand();
  const [cmd, ...args] = opts.nofile === undefined ? [g.cmd, ...g.args] : ['prlimit', `--nofile=${opts.nofile}:${opts.nofile}`, '--', g.cmd, ...g.args];
  const cwd = g.cwd;
  const proc = new ManagedProcess({
    command: cmd!,
    args,
    cwd,
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', ...env },
    logLimit: 4_000_000,
    killAfterMs: opts.killAfterMs ?? 60_000,
  });
  proc.spawn();
  const child = proc.childProcess!;
  try {
    await proc.until(() => listeningUrl(proc.log) !== undefined, { timeoutMs: opts.timeoutMs ?? 20_000, what: 'gateway process to listen' }, (log) =>
      new GatewayExitedError(`gateway process exited early (${child.exitCode ?? child.signalCode}):\n${log}`, bindFailed(log)),
    );
  } catch (e) {
    await proc.kill();
    throw e instanceof GatewayExitedError ? e : new Error(`${(e as Error).message}\n${proc.log}`, { cause: e });
  }
  return {
    child,
    url: listeningUrl(proc.log)!,
    pid: child.pid!,
    output: () => proc.log,
    kill: () => proc.kill(),
    stop: async () => {
      await proc.stop('SIGTERM');
      return proc.exitCode ?? null;
    },
  };
}
