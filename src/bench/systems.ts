/**
 * Processes the bench starts and stops: the systems under test (raw `ws`,
 * Socket.IO 4, confab) and the load generator. Each runs in its own process,
 * under `bash -c 'ulimit -n …; exec node …'` (so the PID is node's), pinned
 * with `taskset` where it exists: servers on core 0, the load generator on core 1.
 *
 * Server CPU comes from /proc/PID/stat, RSS from /proc/PID/status, and heap
 * after a full GC from the V8 inspector (`--inspect=127.0.0.1:0` on every
 * server, so all three are measured the same way without code in them).
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { readFileSync, existsSync, mkdtempSync, rmSync, cpSync, mkdirSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import type { SystemKind } from './protocols.js';
import type { LoadgenRequest } from './loadgen.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** Repository root (dist/bench/.. /..). */
export const ROOT = path.resolve(here, '..', '..');

/**
 * Where confab's compiled code is taken from: dist/, or a snapshot of it made at the start of a bench
 * (other people rebuilding dist/ during a 15-minute run must not change what is measured).
 */
export function confabDist(): string {
  return process.env.CONFAB_BENCH_CONFAB_DIST ?? path.join(ROOT, 'dist');
}

/** Copy dist/ under node_modules/.cache (module resolution still finds node_modules) and use it for confab. */
export function snapshotConfab(): { dir: string; remove(): void } {
  const dir = path.join(ROOT, 'node_modules', '.cache', 'confab-bench', `dist-${process.pid}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(path.dirname(dir), { recursive: true });
  cpSync(path.join(ROOT, 'dist'), dir, { recursive: true });
  process.env.CONFAB_BENCH_CONFAB_DIST = dir;
  return {
    dir,
    remove() {
      delete process.env.CONFAB_BENCH_CONFAB_DIST;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

let tasksetOk: boolean | undefined;
export function hasTaskset(): boolean {
  if (tasksetOk === undefined) {
    try {
      execFileSync('taskset', ['-c', '0', 'true'], { stdio: 'ignore' });
      tasksetOk = cpus().length >= 2;
    } catch {
      tasksetOk = false;
    }
  }
  return tasksetOk;
}

export const SERVER_CORE = '0';
export const LOADGEN_CORE = '1';

/** Build argv: [taskset -c CORE] bash -c 'ulimit -n …; exec "$@"' bash node ARGS… */
function wrap(core: string, nodeArgs: string[]): { cmd: string; args: string[] } {
  const script = 'ulimit -n 20000 2>/dev/null || ulimit -Sn "$(ulimit -Hn)" 2>/dev/null; exec "$@"';
  const nice = Number(process.env.CONFAB_BENCH_NICE ?? 0);
  const prefix = nice ? ['nice', '-n', String(nice)] : [];
  const inner = ['-c', script, 'bash', ...prefix, process.execPath, ...nodeArgs];
  return hasTaskset() ? { cmd: 'taskset', args: ['-c', core, 'bash', ...inner] } : { cmd: 'bash', args: inner };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const p = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(p));
    });
  });
}

/** CPU seconds (user+system) used so far by a process. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // CLK_TCK is 100 on Linux
  } catch {
    return NaN;
  }
}

/** CPU seconds used by the whole machine so far (all cores, busy time only). */
export function machineBusySeconds(): number {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    return (total - f[3]! - f[4]!) / 100;
  } catch {
    return NaN;
  }
}

/** Resident set size in bytes. */
export function rssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

export interface Memory {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
}

/** A server process under test. */
export interface SystemProc {
  kind: SystemKind | 'confab-nats';
  pid: number;
  host: string;
  port: number;
  url: string;
  /** V8 inspector WebSocket URL (every server runs with --inspect=127.0.0.1:0). */
  inspectorUrl: string;
  cpu(): number;
  rss(): number;
  /** Full GC through the inspector, then process.memoryUsage(). */
  memory(): Promise<Memory>;
  stop(): Promise<void>;
}

function waitLine(child: ChildProcess, re: RegExp, stream: 'stdout' | 'stderr', timeoutMs: number, log: string[]): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const s = child[stream]!;
    const onData = (d: Buffer) => {
      buf += d.toString();
      const m = re.exec(buf);
      if (m) {
        cleanup();
        resolve(m);
      }
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`process exited (${code}) before printing ${re}: ${log.join('').slice(-2000)}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timeout waiting for ${re}: ${log.join('').slice(-2000)}`));
    }, timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      s.off('data', onData);
      child.off('exit', onExit);
    };
    s.on('data', onData);
    child.on('exit', onExit);
  });
}

/** A short-lived inspector session: `call` sends one CDP command and resolves with its result. */
async function inspector(wsUrl: string): Promise<{ call: (method: string, params?: unknown) => Promise<{ result?: Record<string, unknown> }>; close: () => void }> {
  const ws = new WebSocket(wsUrl, { perMessageDeflate: false, maxPayload: 1024 * 1024 * 1024 });
  await new Promise<void>((res, rej) => {
    ws.once('open', () => res());
    ws.once('error', rej);
  });
  let id = 0;
  const call = (method: string, params?: unknown) =>
    new Promise<{ result?: Record<string, unknown> }>((res, rej) => {
      const my = ++id;
      const t = setTimeout(() => rej(new Error(`inspector ${method} timed out`)), 60_000);
      const on = (d: WebSocket.RawData) => {
        const m = JSON.parse(d.toString()) as { id?: number };
        if (m.id === my) {
          clearTimeout(t);
          ws.off('message', on);
          res(m as never);
        }
      };
      ws.on('message', on);
      ws.send(JSON.stringify({ id: my, method, params }));
    });
  return { call, close: () => ws.close() };
}

/** Run `fn` while the V8 CPU profiler samples the server; returns fn's result and the profile (.cpuprofile JSON). */
export async function profileDuring<T>(sys: SystemProc, fn: () => Promise<T>): Promise<{ value: T; profile: unknown }> {
  const insp = await inspector(sys.inspectorUrl);
  try {
    await insp.call('Profiler.enable');
    await insp.call('Profiler.setSamplingInterval', { interval: 200 });
    await insp.call('Profiler.start');
    const value = await fn();
    const r = await insp.call('Profiler.stop');
    return { value, profile: r.result?.profile };
  } finally {
    insp.close();
  }
}

async function inspectorMemory(wsUrl: string): Promise<Memory> {
  const insp = await inspector(wsUrl);
  try {
    await insp.call('HeapProfiler.collectGarbage');
    await insp.call('HeapProfiler.collectGarbage');
    const r = await insp.call('Runtime.evaluate', { expression: 'JSON.stringify(process.memoryUsage())', returnByValue: true });
    const value = (r.result?.result as { value?: string } | undefined)?.value;
    return JSON.parse(value ?? '{}') as Memory;
  } finally {
    insp.close();
  }
}

export interface StartOptions {
  /** Socket.IO connection-state recovery (resume scenario). */
  recovery?: boolean;
  /** Extra env (confab). */
  env?: Record<string, string>;
  /** Extra node flags, e.g. --cpu-prof. */
  nodeFlags?: string[];
  core?: string;
}

/** Environment confab runs with in the bench: limits raised so only the load is measured. */
export function confabEnv(port: number, dataDir: string): Record<string, string> {
  return {
    PORT: String(port),
    HOST: '127.0.0.1',
    CONFAB_DATA_DIR: dataDir,
    LOG_LEVEL: 'warn',
    CONFAB_MAX_CONN_PER_IP: '100000',
    CONFAB_RATE_PER_SEC: '1000000',
    CONFAB_RATE_BURST: '1000000',
    CONFAB_FLOOD_CLOSE_AFTER: '1000000',
    CONFAB_SEND_BUFFER_BYTES: String(1024 * 1024),
    CONFAB_RECENT_ON_JOIN: '0',
    CONFAB_MAX_ROOMS: '100',
    CONFAB_MAX_TEXT_CHARS: '40000',
    CONFAB_MAX_FRAME_BYTES: String(64 * 1024),
    CONFAB_DRAIN_READY_DELAY_MS: '0',
    CONFAB_DRAIN_WINDOW_MS: '0',
    CONFAB_SHUTDOWN_TIMEOUT_MS: '3000',
    CONFAB_SECRET: randomBytes(24).toString('hex'),
    CONFAB_BUS: 'memory',
  };
}

export function confabAvailable(): boolean {
  return existsSync(path.join(confabDist(), 'cli', 'confab.js'));
}

export async function startSystem(kind: SystemKind, opts: StartOptions = {}): Promise<SystemProc> {
  const port = await freePort();
  const host = '127.0.0.1';
  const flags = ['--inspect=127.0.0.1:0', ...(opts.nodeFlags ?? [])];
  let nodeArgs: string[];
  let env: NodeJS.ProcessEnv = { ...process.env, PORT: String(port), HOST: host };
  let dataDir: string | undefined;
  if (kind === 'confab') {
    dataDir = mkdtempSync(path.join(tmpdir(), 'confab-bench-'));
    nodeArgs = [...flags, path.join(confabDist(), 'cli', 'confab.js'), 'start'];
    env = { ...env, ...confabEnv(port, dataDir), ...opts.env };
  } else {
    nodeArgs = [...flags, path.join(here, 'baselines.js'), kind, ...(opts.recovery ? ['--recovery'] : [])];
  }
  delete env.NODE_OPTIONS;
  const { cmd, args } = wrap(opts.core ?? SERVER_CORE, nodeArgs);
  const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT });
  const log: string[] = [];
  child.stdout!.on('data', (d: Buffer) => log.push(d.toString()));
  child.stderr!.on('data', (d: Buffer) => log.push(d.toString()));
  const insp = waitLine(child, /Debugger listening on (ws:\/\/\S+)/, 'stderr', 20_000, log);
  const listening = waitLine(child, /listening (?:on )?http:\/\/([\d.]+):(\d+)/, 'stdout', 30_000, log);
  const [im, lm] = await Promise.all([insp, listening]).catch(async (e: unknown) => {
    child.kill('SIGKILL');
    throw e;
  });
  const realPort = Number(lm[2]);
  const pid = child.pid!;
  let exited = false;
  child.on('exit', () => (exited = true));
  return {
    kind,
    pid,
    host,
    port: realPort,
    url: `http://${host}:${realPort}`,
    inspectorUrl: im[1]!,
    cpu: () => cpuSeconds(pid),
    rss: () => rssBytes(pid),
    memory: () => inspectorMemory(im[1]!),
    async stop() {
      if (!exited) {
        const done = new Promise<void>((r) => child.once('exit', () => r()));
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 8_000);
        await done;
        clearTimeout(t);
      }
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** IPC handle on a load generator process. */
export class Loadgen {
  private readonly child: ChildProcess;
  private seq = 0;
  private readonly pending = new Map<number, { res: (v: unknown) => void; rej: (e: Error) => void }>();
  private exitErr: Error | null = null;

  constructor() {
    const { cmd, args } = wrap(LOADGEN_CORE, ['--max-old-space-size=4096', path.join(here, 'loadgen.js')]);
    this.child = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], cwd: ROOT });
    this.child.on('message', (m: { id: number; ok: boolean; result?: unknown; error?: string }) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.ok) p.res(m.result);
      else p.rej(new Error(`loadgen: ${m.error}`));
    });
    this.child.on('exit', (code) => {
      this.exitErr = new Error(`load generator exited (${code})`);
      for (const p of this.pending.values()) p.rej(this.exitErr);
      this.pending.clear();
    });
  }

  call<T = Record<string, unknown>>(req: LoadgenRequest): Promise<T> {
    if (this.exitErr) return Promise.reject(this.exitErr);
    const id = ++this.seq;
    return new Promise<T>((res, rej) => {
      this.pending.set(id, { res: res as (v: unknown) => void, rej });
      this.child.send({ id, req });
    });
  }

  async stop(): Promise<void> {
    if (this.exitErr) return;
    const done = new Promise<void>((r) => this.child.once('exit', () => r()));
    try {
      await Promise.race([this.call({ cmd: 'shutdown' }), done]);
    } catch {
      /* exiting */
    }
    const t = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
    await done;
    clearTimeout(t);
  }
}
