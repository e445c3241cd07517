/**
 * Launcher of real `nats-server` processes on loopback with temp store dirs.
 * `startNats()` starts one server, `startNatsCluster(n)` an n-node JetStream
 * cluster with full-mesh routes. Ports come from the kernel: a server's first
 * start listens on port -1 (client, monitoring and cluster) and the launcher reads the
 * ports it got from the ports file nats-server writes (`ports_file_dir`); from then
 * on its config names those ports, so a restart comes back on the same ones (and
 * is tried again, bounded, if its own log says one was taken meanwhile). Every
 * server can be stopped (SIGTERM or SIGKILL, by PID) and restarted on the same
 * ports and store dir, and every process started here is killed when the test
 * process exits, so a failing test never leaves one behind. Tests still call
 * `stop()` in `after()`.
 *
 * A JetStream cluster needs its routes at start (nats-server refuses to start
 * JetStream clustered without a configured route), but with kernel ports nobody
 * knows a cluster port before its server bound it. So n1 starts alone with a
 * placeholder route (127.0.0.1:0: refused at once, never anyone's server), n2…nN
 * start with a route to n1's cluster port, then n1's config gets the real routes
 * and is reloaded (SIGHUP); a restart of any node renders its bound ports and
 * explicit routes to all others. The cluster is ready when
 * every node routes to every other one and answers /healthz (JetStream meta
 * leader known and current). Each cluster has its own name, so no other cluster
 * on the machine (another suite's, an orphan) can ever route into it.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readNatsPorts, waitBeforeRebind } from './ports.js';
import { bindFailed, ManagedProcess } from './process.js';
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
  /** Start again on the same ports and store dir; resolves when it listens and /healthz answers 200 (only listens with wait=false). */
  start(opts?: { wait?: boolean }): Promise<void>;
  /** GET a monitoring endpoint (e.g. '/healthz', '/jsz') and parse JSON. */
  monitor(path: string): Promise<{ status: number; body: any }>;
  /** Recent server log output (diagnostics). */
  recentLog(): string;
}

export interface NatsCluster {
  readonly servers: NatsServer[];
  /** Every client URL, comma-separated (the NATS_URL form). */
  readonly urls: string;
  stop(): Promise<void>;
}

export interface StartNatsOptions {
  jetstream?: boolean;
  /** Extra config text appended to the generated config (a function: per cluster member, by index). */
  extraConfig?: string | ((index: number) => string);
  /** Milliseconds to wait for /healthz (and, for a cluster, for the routes). */
  readyTimeoutMs?: number;
  /** Cluster name (default: random, so nothing else can route in); a region of a super-cluster passes its region. */
  clusterName?: string;
  /** Server names are `<namePrefix>n1`, `<namePrefix>n2`, …: unique across a super-cluster. */
  namePrefix?: string;
  /** false: resolve once the routes are up, before /healthz (a super-cluster's regions turn healthy only together). */
  waitHealthy?: boolean;
}

/** A free TCP port on 127.0.0.1 (re-exported from ports.ts for existing importers; not for servers a launcher here starts). */
export { freePort } from './ports.js';

interface ServerSpec {
  name: string;
  /** Set for a cluster member. */
  clusterName?: string;
  jetstream: boolean;
  storeDir: string;
  extraConfig?: string;
  readyTimeoutMs: number;
}

interface BoundPorts {
  client: number;
  monitor: number;
  cluster?: number;
}

/** Starts on a port that was just taken by someone else (its log says so) are tried again this many times. */
const RESTART_ATTEMPTS = 3;

class ServerProc implements NatsServer {
  private readonly proc: ManagedProcess;
  private readonly confPath: string;
  private readonly portsDir: string;
  /** Known after the first start; every later start binds these. */
  private bound: BoundPorts | undefined;
  /** Cluster ports of the other members (empty: the placeholder route). */
  routes: number[] = [];

  constructor(private readonly spec: ServerSpec, dir: string) {
    this.confPath = join(dir, `${spec.name}.conf`);
    this.portsDir = join(dir, `${spec.name}.ports.d`);
    mkdirSync(this.portsDir, { recursive: true });
    this.proc = new ManagedProcess({
      command: NATS_SERVER_BIN,
      args: ['-c', this.confPath],
      clearLogOnStart: true,
      logLimit: 32_000,
    });
  }

  get name() { return this.spec.name; }
  get url() { return `nats://127.0.0.1:${this.ports.client}`; }
  get port() { return this.ports.client; }
  get monitorPort() { return this.ports.monitor; }
  get clusterPort() { return this.bound?.cluster; }
  get storeDir() { return this.spec.storeDir; }
  get pid() { return this.proc.pid; }
  get running() { return this.proc.running; }

  private get ports(): BoundPorts {
    if (!this.bound) throw new Error(`nats-server ${this.spec.name} has not been started yet: its ports come from the kernel at the first start`);
    return this.bound;
  }

  /** The config: kernel ports (-1) until the first start bound some, then those (`frozen`). */
  render(frozen: boolean): string {
    const s = this.spec;
    const p = frozen ? this.bound : undefined;
    const lines = [
      `server_name: ${JSON.stringify(s.name)}`,
      `listen: "127.0.0.1:${p?.client ?? -1}"`,
      `http: "127.0.0.1:${p?.monitor ?? -1}"`,
      `ports_file_dir: ${JSON.stringify(this.portsDir)}`,
      // keep write deadlines and pings short so failures are noticed quickly in tests
      `ping_interval: "2s"`,
      `ping_max: 3`,
    ];
    if (s.jetstream) lines.push(`jetstream { store_dir: ${JSON.stringify(s.storeDir)}, max_mem_store: 256MB, max_file_store: 1GB }`);
    if (s.clusterName !== undefined) {
      // 127.0.0.1:0 is refused at once: the first member's placeholder until its peers' ports are known
      const routes = (this.routes.length > 0 ? this.routes : [0]).map((port) => `"nats-route://127.0.0.1:${port}"`).join(', ');
      lines.push(`cluster { name: ${JSON.stringify(s.clusterName)}, listen: "127.0.0.1:${p?.cluster ?? -1}", routes: [${routes}] }`);
    }
    if (s.extraConfig) lines.push(s.extraConfig);
    return lines.join('\n') + '\n';
  }

  async start(opts: { wait?: boolean } = {}): Promise<void> {
    if (this.proc.running) return;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.launch();
        break;
      } catch (e) {
        // a restart on our own ports found one taken meanwhile (the server's log says so): bounded retries
        const retry = this.bound !== undefined && !this.proc.running && bindFailed(this.proc.log) && attempt < RESTART_ATTEMPTS;
        if (!retry) throw this.proc.withLog(e);
        await waitBeforeRebind(attempt);
      }
    }
    if (opts.wait !== false) await this.waitHealthy(this.spec.readyTimeoutMs);
  }

  /** Spawn and wait until this process has bound its ports (it writes the ports file once every listener is up). */
  private async launch(): Promise<void> {
    for (const f of readdirSync(this.portsDir)) rmSync(join(this.portsDir, f), { force: true });
    writeFileSync(this.confPath, this.render(this.bound !== undefined));
    this.proc.spawn();
    const pid = this.proc.pid!;
    let got: ReturnType<typeof readNatsPorts>;
    await this.proc.until(() => (got = readNatsPorts(this.portsDir, pid)) !== undefined, {
      timeoutMs: this.spec.readyTimeoutMs,
      what: `nats-server ${this.spec.name} to bind its ports (ports file)`,
    });
    const now = got!;
    if (now.monitor === undefined) throw new Error(`nats-server ${this.spec.name}: no monitoring port in its ports file`);
    if (this.spec.clusterName !== undefined && now.cluster === undefined) throw new Error(`nats-server ${this.spec.name}: no cluster port in its ports file`);
    const b = this.bound;
    if (b && (b.client !== now.client || b.monitor !== now.monitor || b.cluster !== now.cluster)) {
      throw new Error(`nats-server ${this.spec.name} bound ${JSON.stringify(now)} instead of its ports ${JSON.stringify(b)}`);
    }
    this.bound ??= { client: now.client, monitor: now.monitor, cluster: now.cluster };
  }

  /** Reload the config with the current routes (SIGHUP), ports still as started; resolves once the server reports the new routes. */
  async reloadRoutes(timeoutMs: number): Promise<void> {
    writeFileSync(this.confPath, this.render(false));
    const want = this.routes.map((p) => `127.0.0.1:${p}`).sort();
    this.proc.signal('SIGHUP');
    await this.proc.until(
      async () => {
        if (/Failed to reload server configuration/.test(this.proc.log)) throw new Error(`nats-server ${this.spec.name} refused its config reload`);
        const varz = await this.monitor('/varz').catch(() => undefined);
        const urls = ((varz?.body as { cluster?: { urls?: string[] } } | undefined)?.cluster?.urls ?? []).map((u) => u.replace(/^nats-route:\/\//, '')).sort();
        return JSON.stringify(urls) === JSON.stringify(want);
      },
      { timeoutMs, what: `nats-server ${this.spec.name} to reload its routes` },
    );
  }

  /** Until /healthz answers 200; rejects at once if the process exits. */
  async waitHealthy(timeoutMs: number): Promise<void> {
    let last = 'no answer';
    const check = async () => {
      const r = await this.monitor('/healthz').catch((e: unknown) => ({ status: 0, body: String(e) }));
      last = `${r.status} ${typeof r.body === 'string' ? r.body : JSON.stringify(r.body)}`;
      return r.status === 200;
    };
    try {
      await this.proc.until(check, { timeoutMs, what: `nats-server ${this.spec.name} /healthz` });
    } catch (e) {
      throw this.proc.withLog(new Error(`${(e as Error).message} (last answer: ${last.slice(0, 300)})`, { cause: e }));
    }
  }

  /** Until this server has a route to every other member (by server id). */
  async waitRoutes(members: ServerProc[], timeoutMs: number): Promise<void> {
    const others = members.filter((m) => m !== this);
    const ids = new Map<string, string>(); // member name -> server id (fixed while it runs)
    let missing: string[] = [];
    try {
      await this.proc.until(
        async () => {
          for (const m of others) {
            if (ids.has(m.name)) continue;
            const id = (await m.monitor('/varz').catch(() => undefined))?.body?.server_id as string | undefined;
            if (id) ids.set(m.name, id);
          }
          const routez = await this.monitor('/routez').catch(() => undefined);
          const remotes = new Set(((routez?.body as { routes?: { remote_id: string }[] } | undefined)?.routes ?? []).map((r) => r.remote_id));
          missing = others.filter((m) => !remotes.has(ids.get(m.name) ?? '')).map((m) => m.name);
          return missing.length === 0;
        },
        { timeoutMs, intervalMs: 50, what: `nats-server ${this.spec.name} routes to every member` },
      );
    } catch (e) {
      throw this.proc.withLog(new Error(`${(e as Error).message} (no route to ${missing.join(', ')})`, { cause: e }));
    }
  }

  stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    return this.proc.stop(signal);
  }

  monitor(path: string): Promise<{ status: number; body: any }> {
    return fetchMonitor(this.ports.monitor, path);
  }

  recentLog(): string {
    return this.proc.log;
  }
}

/** Start one nats-server (JetStream on by default) on kernel-assigned loopback ports. */
export async function startNats(opts: StartNatsOptions = {}): Promise<NatsServer & { close(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'confab-nats-'));
  const s = new ServerProc({
    name: 'n1',
    jetstream: opts.jetstream ?? true,
    storeDir: join(dir, 'store'),
    extraConfig: typeof opts.extraConfig === 'function' ? opts.extraConfig(0) : opts.extraConfig,
    readyTimeoutMs: opts.readyTimeoutMs ?? 15_000,
  }, dir);
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

/** Start an n-node (default 3) JetStream cluster with full-mesh routes; resolves when every node routes to every other one and is healthy. */
export async function startNatsCluster(n = 3, opts: StartNatsOptions = {}): Promise<NatsCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'confab-natsc-'));
  const timeoutMs = opts.readyTimeoutMs ?? 30_000;
  const clusterName = opts.clusterName ?? `confab-test-${randomBytes(4).toString('hex')}`;
  const servers = Array.from({ length: n }, (_, i) =>
    new ServerProc({
      name: `${opts.namePrefix ?? ''}n${i + 1}`,
      clusterName,
      jetstream: opts.jetstream ?? true,
      storeDir: join(dir, `store-${i + 1}`),
      extraConfig: typeof opts.extraConfig === 'function' ? opts.extraConfig(i) : opts.extraConfig,
      readyTimeoutMs: timeoutMs,
    }, dir),
  );
  const stop = async () => {
    await Promise.all(servers.map((s) => s.stop('SIGKILL')));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const [first, ...rest] = servers as [ServerProc, ...ServerProc[]];
    await first.start({ wait: false });
    for (const s of rest) s.routes = [first.clusterPort!];
    await Promise.all(rest.map((s) => s.start({ wait: false })));
    // every cluster port is known now: explicit full-mesh routes for every restart, and in n1's running config (no placeholder left)
    for (const s of servers) s.routes = servers.filter((o) => o !== s).map((o) => o.clusterPort!);
    // a one-node region of a super-cluster: a route to itself (ignored by the server) instead of the placeholder,
    // which would keep JetStream "waiting for routing" forever
    if (rest.length === 0 && opts.clusterName !== undefined) first.routes = [first.clusterPort!];
    if (first.routes.length > 0) await first.reloadRoutes(timeoutMs);
    await Promise.all(servers.map((s) => s.waitRoutes(servers, timeoutMs)));
    if (opts.waitHealthy !== false) await Promise.all(servers.map((s) => s.waitHealthy(timeoutMs)));
  } catch (e) {
    const state = servers.map((s) => `${s.name}: ${s.running ? `running (pid ${s.pid})` : 'not running'}`).join('; ');
    await stop();
    throw new Error(`${n}-node NATS cluster did not start (${state}): ${(e as Error).message}`, { cause: e });
  }
  return { servers, urls: servers.map((s) => s.url).join(','), stop };
}

/** GET a monitoring endpoint on 127.0.0.1:port and parse JSON (bounded by 2 s). */
async function fetchMonitor(port: number, path: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(2000) });
  const text = await res.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, body };
}

async function healthy(s: Pick<NatsServer, 'monitor'>): Promise<boolean> {
  return (await s.monitor('/healthz').catch(() => ({ status: 0 }))).status === 200;
}

/** Wait until a server's /healthz answers 200; rejects at once if it is not running (or stops meanwhile). */
export async function waitHealthy(s: NatsServer, timeoutMs = 30_000): Promise<void> {
  if (s instanceof ServerProc) return s.waitHealthy(timeoutMs);
  await waitFor(
    async () => {
      if (!s.running) throw new Error(`nats-server ${s.name} is not running:\n${s.recentLog()}`);
      return healthy(s);
    },
    { timeoutMs, intervalMs: 25, what: `nats-server ${s.name} /healthz` },
  );
}

/** A nats-server running a config file made elsewhere (e.g. by the config generator). */
export interface NatsOnConfig {
  readonly port: number;
  readonly monitorPort: number;
  readonly pid: number | undefined;
  monitor(path: string): Promise<{ status: number; body: any }>;
  /** Until /healthz answers 200; rejects at once if the process exits. */
  waitHealthy(timeoutMs?: number): Promise<void>;
  recentLog(): string;
  /** SIGKILL by PID, wait for the exit, delete the ports dir. */
  close(): Promise<void>;
}

/**
 * Run `nats-server -c <configPath>` with its client and monitoring ports taken from the kernel
 * (`-p -1 -m -1` override the file's ports) and read back from its ports file; resolves once it
 * listens. The config file itself is used as it is.
 */
export async function runNatsOnConfig(configPath: string, opts: { readyTimeoutMs?: number } = {}): Promise<NatsOnConfig> {
  const portsDir = mkdtempSync(join(tmpdir(), 'confab-natsports-'));
  const timeoutMs = opts.readyTimeoutMs ?? 15_000;
  const proc = new ManagedProcess({ command: NATS_SERVER_BIN, args: ['-c', configPath, '-p', '-1', '-m', '-1', '--ports_file_dir', portsDir], logLimit: 32_000 });
  const close = async () => {
    await proc.kill();
    rmSync(portsDir, { recursive: true, force: true });
  };
  proc.spawn();
  const pid = proc.pid!;
  let got: ReturnType<typeof readNatsPorts>;
  try {
    await proc.until(() => (got = readNatsPorts(portsDir, pid)) !== undefined && got.monitor !== undefined, { timeoutMs, what: `nats-server on ${configPath} to bind its ports` });
  } catch (e) {
    await close();
    throw proc.withLog(e);
  }
  const { client, monitor: monitorPort } = got! as { client: number; monitor: number };
  const monitor = (path: string) => fetchMonitor(monitorPort, path);
  return {
    port: client,
    monitorPort,
    get pid() {
      return proc.pid;
    },
    monitor,
    waitHealthy: async (ms = timeoutMs) => {
      try {
        await proc.until(async () => (await monitor('/healthz').catch(() => ({ status: 0 }))).status === 200, { timeoutMs: ms, what: `nats-server on ${configPath} /healthz` });
      } catch (e) {
        throw proc.withLog(e);
      }
    },
    recentLog: () => proc.log,
    close,
  };
}
