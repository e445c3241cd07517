/**
 * Processes of a local cluster: nats-server, confab gateways and HAProxy as
 * child processes in their own process groups (a Ctrl-C in the terminal reaches
 * only the supervisor, which stops them in order), output appended to log
 * files, health polled over HTTP with bounded timeouts, stopped by PID only
 * after checking the PID still runs the command we started. If the process that
 * started them exits without stopping them (a crash), they are SIGKILLed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A child process we started. */
export interface Proc {
  readonly pid: number;
  readonly child: ChildProcess;
  /** Resolves with the exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;
  hasExited(): boolean;
  /** The signal that ended it (after `exited`), else null. */
  exitSignal(): NodeJS.Signals | null;
}

const live = new Set<number>();
let exitHook = false;
/** Children never outlive the process that started them: whatever still runs at exit (a crash) is SIGKILLed. */
function killOnExit(pid: number, exited: Promise<unknown>): void {
  live.add(pid);
  void exited.then(() => live.delete(pid));
  if (exitHook) return;
  exitHook = true;
  process.once('exit', () => {
    for (const p of live) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // gone
      }
    }
  });
}

/** Start `cmd args` detached (own process group), stdout+stderr appended to `logFile`. Rejects when it cannot be started. */
export async function spawnLogged(cmd: string, args: string[], env: NodeJS.ProcessEnv, logFile: string, cwd?: string): Promise<Proc> {
  const fd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(cmd, args, { env, cwd, stdio: ['ignore', fd, fd], detached: true });
  } finally {
    closeSync(fd);
  }
  let done = false;
  let signal: NodeJS.Signals | null = null;
  const exited = new Promise<number | null>((res) => {
    child.once('exit', (code, sig) => ((done = true), (signal = sig), res(code)));
    child.once('error', () => ((done = true), res(-1)));
  });
  await new Promise<void>((res, rej) => {
    child.once('spawn', () => res());
    child.once('error', (e) => rej(new Error(`cannot start ${cmd}: ${e.message}`, { cause: e })));
  });
  killOnExit(child.pid!, exited);
  return { pid: child.pid!, child, exited, hasExited: () => done, exitSignal: () => signal };
}

/** GET a URL with a short timeout; status 0 when nothing answers. */
export async function httpStatus(url: string, timeoutMs = 1000): Promise<number> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

/** Poll until `cond` holds; throws naming `what` after `timeoutMs`, or at once when `abort()` returns an error text. */
export async function until(cond: () => Promise<boolean> | boolean, what: string, timeoutMs: number, intervalMs = 100, abort?: () => string | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    const why = abort?.();
    if (why) throw new Error(`${what}: ${why}`);
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * Restart policy of the supervisor: exponential backoff with full jitter. The
 * `attempt`-th consecutive restart (0-based) waits a uniformly random time in
 * [0, min(capMs, baseMs·2^attempt)]: 0.5 s, 1 s, 2 s, 4 s, 8 s, then 10 s ceilings.
 * A part that stayed up `stableMs` before it exited starts again at attempt 0.
 */
export const RESTART_POLICY = { baseMs: 500, capMs: 10_000, stableMs: 30_000 } as const;

export function restartDelayMs(attempt: number, policy: { baseMs: number; capMs: number } = RESTART_POLICY, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

/** The last lines of a log file (for error messages). */
export function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** Whether a PID is alive (signal 0). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Command line of a PID from /proc, '' when unknown. */
export function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

/**
 * Send `signal` to `pid` only if its command line contains every `marker`
 * (guards against a PID reused by an unrelated process). Returns whether it was sent.
 */
export function signalIfOurs(pid: number, markers: string[], signal: NodeJS.Signals): boolean {
  if (!alive(pid)) return false;
  const cl = cmdline(pid);
  if (cl !== '' && !markers.every((m) => cl.includes(m))) return false;
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Wait until `pid` is gone (bounded); SIGKILL it (if still ours) when `killAfterMs` passes. */
export async function waitGone(pid: number, markers: string[], killAfterMs: number, timeoutMs = killAfterMs + 5000): Promise<boolean> {
  const start = Date.now();
  let killed = false;
  while (Date.now() - start < timeoutMs) {
    if (!alive(pid) || isZombie(pid)) return true;
    if (!killed && Date.now() - start > killAfterMs) {
      killed = true;
      signalIfOurs(pid, markers, 'SIGKILL');
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return !alive(pid);
}

function isZombie(pid: number): boolean {
  try {
    return /^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** How to run `confab start` in a child: the same entry (compiled or TypeScript source) as the running CLI. */
export function gatewayCommand(): { cmd: string; args: string[]; cwd: string } {
  const here = dirname(fileURLToPath(import.meta.url));
  const ts = import.meta.url.endsWith('.ts');
  const entry = join(here, ts ? 'confab.ts' : 'confab.js');
  const root = resolve(here, '../..');
  const args = ts ? ['--import', 'tsx', entry, 'start'] : [entry, 'start'];
  return { cmd: process.execPath, args, cwd: root };
}

/** Markers that identify each kind of process in /proc/PID/cmdline. */
export const MARKERS = {
  gateway: ['confab', 'start'],
  haproxy: ['haproxy'],
  nats: ['nats-server'],
} as const;

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

/** Wait for a gateway's /readyz 200, failing early (with its log tail) if the process exits. */
export async function waitGatewayReady(url: string, proc: Proc | undefined, logFile: string, timeoutMs = 30_000): Promise<void> {
  await until(async () => (await httpStatus(`${url}/readyz`)) === 200, `gateway ${url} /readyz`, timeoutMs, 100, () =>
    proc?.hasExited() ? `process exited; log:\n${tail(logFile)}` : undefined,
  );
}

export function fileExists(p: string): boolean {
  return existsSync(p);
}
