/**
 * Test kit: real `nats-server` processes on free loopback ports with temp store
 * dirs. `startNats()` starts one server, `startNatsCluster(n)` an n-node
 * JetStream cluster with full-mesh routes. Every server can be stopped (SIGTERM
 * or SIGKILL, by PID) and restarted on the same ports and store dir, and every
 * process started here is killed when the test process exits, so a failing test
 * never leaves one behind. Tests still call `stop()` in `after()`.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';
import { ManagedProcess } from './process.js';
import { waitFor } from './wait.js';

export const NATS_SERVER_BIN = process.env.NATS_SERVER_BIN ?? 'nats-server';

/** One nats-server process (restartable). */
export interface NatsServer {
  readonly name: string;
  /** Client URL, e.g. nats://127.0.0.1:41234 */
  readonly url: string;
  readonly port: number;
  readonly monitorPort: number;
  readonly clusterPort?: number;
  readonly storeDir: string;
  /** PID of the running process, undefined while stopped. */
  readonly pid: number | undefined;
  readonly running: boolean;
  /** Stop by PID with SIGTERM (graceful, default) or SIGKILL; resolves when the process has exited. */
  stop(signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  /** Start again on the same ports and store dir; resolves when /healthz answers 200 (unless wait=false). */
  start(opts?: { wait?: boolean }): Promise<void>;
  /** GET a monitoring endpoint (e.g. '/healthz', '/jsz') and parse JSON. */
  monitor(path: string): Promise<{ status: number; body: any }>;
}

export interface NatsCluster {
  readonly servers: NatsServer[];
  /** Every client URL, comma-separated (the NATS_URL form). */
  readonly urls: string;
  stop(): Promise<void>;
}

export interface StartNatsOptions {
  jetstream?: boolean;
  /** Extra config text appended to the generated config. */
  extraConfig?: string;
  /** Milliseconds to wait for /healthz. */
  readyTimeoutMs?: number;
}

/** A free TCP port on 127.0.0.1 (re-exported from ports.ts for existing importers). */
export { freePort } from './ports.js';

interface ServerSpec {
  name: string;
  port: number;
  monitorPort: number;
  clusterPort?: number;
  routes?: number[];
  clusterName?: string;
  jetstream: boolean;
  storeDir: string;
  extraConfig?: string;
  readyTimeoutMs: number;
}

function renderConfig(s: ServerSpec): string {
  const lines = [
    `server_name: ${JSON.stringify(s.name)}`,
    `listen: "127.0.0.1:${s.port}"`,
    `http: "127.0.0.1:${s.monitorPort}"`,
    // keep write deadlines and pings short so failures are noticed quickly in tests
    `ping_interval: "2s"`,
    `ping_max: 3`,
  ];
  if (s.jetstream) lines.push(`jetstream { store_dir: ${JSON.stringify(s.storeDir)}, max_mem_store: 256MB, max_file_store: 1GB }`);
  if (s.clusterPort !== undefined) {
    const routes = (s.routes ?? []).map((p) => `"nats-route://127.0.0.1:${p}"`).join(', ');
    lines.push(`cluster { name: ${JSON.stringify(s.clusterName ?? 'confab-test')}, listen: "127.0.0.1:${s.clusterPort}", routes: [${routes}] }`);
  }
  if (s.extraConfig) lines.push(s.extraConfig);
  return lines.join('\n') + '\n';
}

class ServerProc implements NatsServer {
  private readonly proc: ManagedProcess;

  constructor(private readonly spec: ServerSpec, dir: string) {
    const confPath = join(dir, `${spec.name}.conf`);
    writeFileSync(confPath, renderConfig(spec));
    this.proc = new ManagedProcess({
      command: NATS_SERVER_BIN,
      args: ['-c', confPath],
      clearLogOnStart: true,
      ready: {
        check: () => healthy(this),
        timeoutMs: spec.readyTimeoutMs,
        intervalMs: 25,
        what: `nats-server ${spec.name} /healthz`,
        exitedError: (log) => new Error(`nats-server ${spec.name} exited during start:\n${log}`),
      },
    });
  }

  get name() { return this.spec.name; }
  get url() { return `nats://127.0.0.1:${this.spec.port}`; }
  get port() { return this.spec.port; }
  get monitorPort() { return this.spec.monitorPort; }
  get clusterPort() { return this.spec.clusterPort; }
  get storeDir() { return this.spec.storeDir; }
  get pid() { return this.proc.pid; }
  get running() { return this.proc.running; }

  async start(opts: { wait?: boolean } = {}): Promise<void> {
    try {
      await this.proc.start(opts);
    } catch (e) {
      throw this.proc.withLog(e);
    }
  }

  stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    return this.proc.stop(signal);
  }

  async monitor(path: string): Promise<{ status: number; body: any }> {
    const res = await fetch(`http://127.0.0.1:${this.spec.monitorPort}${path}`, { signal: AbortSignal.timeout(2000) });
    const text = await res.text();
    let body: any = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON
    }
    return { status: res.status, body };
  }

  /** Recent server log output (for diagnostics). */
  recentLog(): string {
    return this.proc.log;
  }
}

/** Start one nats-server (JetStream on by default) on free loopback ports. */
export async function startNats(opts: StartNatsOptions = {}): Promise<NatsServer & { close(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'confab-nats-'));
  const spec: ServerSpec = {
    name: 'n1',
    port: await freePort(),
    monitorPort: await freePort(),
    jetstream: opts.jetstream ?? true,
    storeDir: join(dir, 'store'),
    extraConfig: opts.extraConfig,
    readyTimeoutMs: opts.readyTimeoutMs ?? 15_000,
  };
  const s = new ServerProc(spec, dir);
  const close = async () => {
    await s.stop('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await s.start();
  } catch (e) {
    await close();
    throw e;
  }
  return Object.assign(s, { close });
}

/** Start an n-node (default 3) JetStream cluster with full-mesh routes; resolves when every node is healthy. */
export async function startNatsCluster(n = 3, opts: StartNatsOptions = {}): Promise<NatsCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'confab-natsc-'));
  const ports = await Promise.all(Array.from({ length: n }, async () => ({ port: await freePort(), monitorPort: await freePort(), clusterPort: await freePort() })));
  const servers = ports.map((p, i) =>
    new ServerProc({
      name: `n${i + 1}`,
      ...p,
      routes: ports.filter((_, j) => j !== i).map((q) => q.clusterPort),
      clusterName: 'confab-test',
      jetstream: opts.jetstream ?? true,
      storeDir: join(dir, `store-${i + 1}`),
      extraConfig: opts.extraConfig,
      readyTimeoutMs: opts.readyTimeoutMs ?? 30_000,
    }, dir),
  );
  const stop = async () => {
    await Promise.all(servers.map((s) => s.stop('SIGKILL')));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    // start all without waiting (each needs the others for a JetStream meta leader), then wait for each
    await Promise.all(servers.map((s) => s.start({ wait: false })));
    await Promise.all(servers.map((s) => waitHealthy(s, opts.readyTimeoutMs ?? 30_000)));
  } catch (e) {
    await stop();
    throw e;
  }
  return { servers, urls: servers.map((s) => s.url).join(','), stop };
}

async function healthy(s: Pick<NatsServer, 'monitor'>): Promise<boolean> {
  return (await s.monitor('/healthz').catch(() => ({ status: 0 }))).status === 200;
}

/** Wait until a server's /healthz answers 200. */
export async function waitHealthy(s: NatsServer, timeoutMs = 30_000): Promise<void> {
  await waitFor(() => healthy(s), {
    timeoutMs,
    intervalMs: 25,
    what: `nats-server ${s.name} /healthz`,
  });
}
