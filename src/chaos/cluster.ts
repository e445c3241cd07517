/**
 * The system under test for the chaos suite: real processes on 127.0.0.1, each
 * one known by name and PID so a scenario can hurt exactly one of them.
 *
 * - `nats`: per region a NATS JetStream cluster (configs rendered by the same
 *   generator as `confab cluster up`, `natsConfigFor`), regions joined by NATS
 *   gateways, the history stream with 3 replicas when a region has 3 nodes;
 * - `redis`: one redis-server (bus and Streams history);
 * - confab gateways (`confab start`, the same entry `confab cluster` runs) and
 *   one HAProxy per region in front of them (the `confab cluster` HAProxy config).
 *
 * Ports are free loopback ports (not the fixed plan of `confab cluster up`), so
 * the suite can run beside anything else. Every fault is a signal to a PID this
 * class started. A process that exits without the harness having asked for it
 * is recorded as a crash (with its log tail) and is NOT restarted: whether the
 * system returns to healthy by itself is what is measured. Processes the
 * harness killed on purpose are restarted by the scenario (a process supervisor
 * would), with `restart()`.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { natsConfigFor, type ClusterState, type GatewayState, type NatsNodeState, type RegionState } from '../cli/cluster-plan.js';
import { rollGateways, type RollEvent, type RollTarget } from '../cli/cluster-roll.js';
import { writeNatsConfigAtomic } from '../nats/config-gen.js';
import { gatewayCommand, GATEWAY_ENV_SCRUB, LOCAL_GATEWAY_DEFAULTS } from '../procs/gateway.js';
import { HAPROXY_BIN, HaproxyAdmin, renderHaproxyConfig } from '../procs/haproxy.js';
import { NATS_SERVER_BIN } from '../procs/nats.js';
import { alive, tail } from '../procs/pid.js';
import { spawnLogged, type Proc } from '../procs/process.js';
import { REDIS_SERVER_BIN, redisCommand } from '../procs/redis.js';
import { httpStatus, waitFor } from '../procs/wait.js';
import { chaosPort } from './ports.js';

export const STREAM_NAME = 'CONFAB';

export type PartKind = 'nats' | 'redis' | 'gateway' | 'haproxy';

export interface TopologyOptions {
  bus: 'nats' | 'redis';
  /** NATS only: regions (default 1), names ord, syd, … */
  regions?: number;
  /** NATS only: servers per region (default 3). */
  natsPerRegion?: number;
  gatewaysPerRegion?: number;
  /** Extra gateway environment (wins over the chaos defaults). */
  gatewayEnv?: Record<string, string>;
  /** Keep the state directory (logs) after stop(). Default false. */
  keepDir?: boolean;
  /** Progress lines. */
  log?: (line: string) => void;
  /** Bound for each start-up wait. Default 90 s. */
  startTimeoutMs?: number;
}

/** A process exit nobody asked for. */
export interface Crash {
  name: string;
  kind: PartKind;
  pid: number;
  /** ms since the cluster started (performance.now() based). */
  at: number;
  code: number | null;
  signal: string | null;
  /** Last lines of its log. */
  logTail: string;
}

export interface Part {
  readonly kind: PartKind;
  readonly name: string;
  readonly region: string;
  readonly log: string;
  /** The running process (undefined while stopped or after a crash). */
  proc?: Proc;
  /** Frozen with SIGSTOP and not continued yet. */
  frozen: boolean;
  /** The harness expects this process to exit (it signalled it). */
  expectExit: boolean;
  /** Gateways: the node id of the current process. */
  node?: string;
  /** http(s) base URL (gateway, HAProxy) or nats/redis URL. */
  readonly url: string;
}

interface PartImpl extends Part {
  spawn(): Promise<Proc>;
  ready(): Promise<boolean>;
}

/** Health of every part and why not, when not. */
export interface HealthReport {
  ok: boolean;
  problems: string[];
}

/** `confab cluster`'s gateway defaults, with the rate raised: the suite measures reliability, not limits
 * (an outbox flushed after a 15 s outage must not be throttled into a 4003). */
const CHAOS_GATEWAY_DEFAULTS: Record<string, string> = { ...LOCAL_GATEWAY_DEFAULTS, CONFAB_RATE_PER_SEC: '50', CONFAB_RATE_BURST: '200' };
/** Inherited variables that must not reach a chaos gateway. */
const SCRUB = [...GATEWAY_ENV_SCRUB, 'CONFAB_STREAM_NAME'];

const REGION_NAMES = ['ord', 'syd', 'cdg', 'ams'];

export class ChaosCluster {
  readonly dir: string;
  readonly bus: 'nats' | 'redis';
  readonly regions: string[];
  readonly parts = new Map<string, PartImpl>();
  readonly crashes: Crash[] = [];
  readonly secret = randomBytes(24).toString('hex');
  readonly t0 = performance.now();
  /** The ClusterState shape natsConfigFor renders from (NATS only). */
  #plan: ClusterState | undefined;
  #stopped = false;
  readonly #log: (l: string) => void;
  readonly #startTimeoutMs: number;

  private constructor(readonly opts: TopologyOptions, dir: string) {
    this.dir = dir;
    this.bus = opts.bus;
    const n = opts.bus === 'nats' ? (opts.regions ?? 1) : 1;
    this.regions = REGION_NAMES.slice(0, n);
    this.#log = opts.log ?? (() => {});
    this.#startTimeoutMs = opts.startTimeoutMs ?? 90_000;
  }

  /** Start everything and wait until every part is healthy. On failure everything started is stopped. */
  static async start(opts: TopologyOptions): Promise<ChaosCluster> {
    // a port taken by someone else between the check and the bind fails the start: once more on new ports
    for (let attempt = 1; ; attempt++) {
      const dir = mkdtempSync(join(tmpdir(), 'confab-chaos-'));
      mkdirSync(join(dir, 'logs'));
      const c = new ChaosCluster(opts, dir);
      try {
        await c.#layout();
        await c.#startAll();
        return c;
      } catch (e) {
        await c.stop();
        const taken = /address already in use|EADDRINUSE/i.test((e as Error).message);
        if (!taken || attempt >= 3) throw e;
        c.#log(`start failed on a taken port, again on other ports: ${(e as Error).message.split('\n').find((l) => /in use/i.test(l)) ?? ''}`);
      }
    }
  }

  // ---- plan ------------------------------------------------------------------

  async #layout(): Promise<void> {
    const gwPerRegion = this.opts.gatewaysPerRegion ?? 3;
    const regionStates: RegionState[] = [];
    for (const region of this.regions) {
      const nats: NatsNodeState[] = [];
      if (this.bus === 'nats') {
        for (let i = 0; i < (this.opts.natsPerRegion ?? 3); i++) {
          const name = `${region}-n${i + 1}`;
          const [port, monitorPort, clusterPort, gatewayPort] = [await chaosPort(), await chaosPort(), await chaosPort(), await chaosPort()];
          nats.push({
            name,
            port,
            monitorPort,
            clusterPort,
            gatewayPort,
            url: `nats://127.0.0.1:${port}`,
            monitorUrl: `http://127.0.0.1:${monitorPort}`,
            config: join(this.dir, `${name}.conf`),
            storeDir: join(this.dir, 'nats', name),
            log: join(this.dir, 'logs', `${name}.log`),
          });
        }
      }
      const gateways: GatewayState[] = [];
      for (let j = 0; j < gwPerRegion; j++) {
        const port = await chaosPort();
        gateways.push({ name: `${region}-g${j + 1}`, node: '', port, url: `http://127.0.0.1:${port}`, log: join(this.dir, 'logs', `${region}-g${j + 1}.log`) });
      }
      const hport = await chaosPort();
      regionStates.push({
        name: region,
        haproxy: { port: hport, url: `http://127.0.0.1:${hport}`, socket: join(this.dir, `hap-${region}.sock`), config: join(this.dir, `haproxy-${region}.cfg`), log: join(this.dir, 'logs', `haproxy-${region}.log`) },
        nats,
        gateways,
      });
    }
    const replicas = this.bus === 'nats' && (this.opts.natsPerRegion ?? 3) >= 3 ? 3 : 1;
    this.#plan = { version: 1, dir: this.dir, supervisorPid: process.pid, controlPort: 0, controlToken: '', startedAt: new Date().toISOString(), streamReplicas: replicas, streamRegion: this.regions[0]!, status: 'starting', regions: regionStates };

    let redisUrl = '';
    if (this.bus === 'redis') {
      const port = await chaosPort();
      const rdir = join(this.dir, 'redis');
      mkdirSync(rdir);
      redisUrl = `redis://127.0.0.1:${port}`;
      const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', rdir, '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--protected-mode', 'yes', '--logfile', ''];
      this.#add({ kind: 'redis', name: 'redis', region: this.regions[0]!, url: redisUrl, log: join(this.dir, 'logs', 'redis.log'), spawn: () => spawnLogged(REDIS_SERVER_BIN, args, process.env, join(this.dir, 'logs', 'redis.log')), ready: async () => (await redisCommand(port, 'PING', 1000).catch(() => '')) === 'PONG' });
    }
    for (const r of regionStates) {
      for (const n of r.nats) {
        mkdirSync(n.storeDir, { recursive: true });
        writeNatsConfigAtomic(n.config, natsConfigFor(this.#plan, r, n));
        this.#add({ kind: 'nats', name: n.name, region: r.name, url: n.url, log: n.log, spawn: () => spawnLogged(NATS_SERVER_BIN, ['-c', n.config], process.env, n.log), ready: async () => (await httpStatus(`${n.monitorUrl}/healthz`)) === 200 });
      }
      for (const g of r.gateways) {
        const busEnv: Record<string, string> = this.bus === 'nats' ? { NATS_URL: r.nats.map((n) => n.url).join(','), CONFAB_STREAM_REPLICAS: String(replicas) } : { REDIS_URL: redisUrl, CONFAB_BUS: 'redis' };
        const dataDir = join(this.dir, 'gw', g.name);
        mkdirSync(dataDir, { recursive: true });
        const part: PartImpl = {
          kind: 'gateway',
          name: g.name,
          region: r.name,
          url: g.url,
          log: g.log,
          frozen: false,
          expectExit: false,
          spawn: () => {
            part.node = `${g.name}-${randomBytes(3).toString('hex')}`;
            return this.#spawnGateway(g, r.name, part.node, dataDir, busEnv);
          },
          ready: async () => (await httpStatus(`${g.url}/readyz`)) === 200,
        };
        this.parts.set(g.name, part);
      }
      const h = r.haproxy;
      writeFileSync(h.config, renderHaproxyConfig({ port: h.port, socketPath: h.socket, backends: r.gateways.map((g) => ({ name: g.name, port: g.port })), checkIntervalMs: 500 }));
      const admin = new HaproxyAdmin(h.socket);
      this.#add({
        kind: 'haproxy',
        name: `haproxy-${r.name}`,
        region: r.name,
        url: h.url,
        log: h.log,
        spawn: () => spawnLogged(HAPROXY_BIN, ['-db', '-f', h.config], process.env, h.log),
        ready: async () => {
          const servers = await admin.servers().catch(() => undefined);
          return servers !== undefined && servers.length === r.gateways.length && servers.every((s) => s.status === 'UP');
        },
      });
    }
  }

  #add(p: Omit<PartImpl, 'frozen' | 'expectExit'>): void {
    this.parts.set(p.name, { ...p, frozen: false, expectExit: false });
  }

  #spawnGateway(g: GatewayState, region: string, node: string, dataDir: string, busEnv: Record<string, string>): Promise<Proc> {
    const base: Record<string, string | undefined> = { ...process.env };
    for (const k of SCRUB) delete base[k];
    const env = {
      ...CHAOS_GATEWAY_DEFAULTS,
      ...base,
      ...this.opts.gatewayEnv,
      HOST: '127.0.0.1',
      PORT: String(g.port),
      FLY_ALLOC_ID: node,
      FLY_REGION: region,
      CONFAB_SECRET: this.secret,
      CONFAB_DATA_DIR: dataDir,
      ...busEnv,
    };
    const { cmd, args, cwd } = gatewayCommand();
    return spawnLogged(cmd, args, env, g.log, cwd);
  }

  // ---- lifecycle -------------------------------------------------------------

  async #startAll(): Promise<void> {
    const t = performance.now();
    const of = (kind: PartKind, region?: string) => [...this.parts.values()].filter((p) => p.kind === kind && (region === undefined || p.region === region));
    // brokers first: every NATS node needs its peers for a JetStream meta leader, so start all, then wait for each
    for (const p of [...of('redis'), ...of('nats')]) await this.#spawn(p);
    for (const p of [...of('redis'), ...of('nats')]) await this.#waitReady(p);
    // the stream is created by the first gateway and placed in its NATS cluster: the first region's gateways first
    for (const region of this.regions) {
      const gws = of('gateway', region);
      for (const p of gws) await this.#spawn(p);
      for (const p of gws) await this.#waitReady(p);
    }
    for (const p of of('haproxy')) await this.#spawn(p);
    for (const p of of('haproxy')) await this.#waitReady(p);
    this.#log(`cluster up in ${Math.round(performance.now() - t)} ms: ${[...this.parts.values()].map((p) => `${p.name}(${p.proc?.pid})`).join(' ')}`);
  }

  async #spawn(p: PartImpl): Promise<void> {
    if (this.#stopped) throw new Error('cluster stopped');
    const proc = await p.spawn();
    p.proc = proc;
    p.expectExit = false;
    p.frozen = false;
    void proc.exited.then((code) => {
      if (p.proc === proc) p.proc = undefined;
      if (p.expectExit || this.#stopped) return;
      const crash: Crash = { name: p.name, kind: p.kind, pid: proc.pid, at: Math.round(performance.now() - this.t0), code, signal: proc.child.signalCode, logTail: tail(p.log, 40) };
      this.crashes.push(crash);
      this.#log(`! ${p.name} (pid ${proc.pid}) exited by itself: code ${code}, signal ${proc.child.signalCode}`);
    });
  }

  async #waitReady(p: PartImpl, timeoutMs = this.#startTimeoutMs): Promise<void> {
    const proc = p.proc;
    await waitFor(() => p.ready(), { what: `${p.name} ready`, timeoutMs, intervalMs: 100, abort: () => (proc === undefined || proc.hasExited() ? `${p.name} exited; log:\n${tail(p.log)}` : undefined) });
  }

  part(name: string): Part {
    const p = this.parts.get(name);
    if (!p) throw new Error(`no part ${name} (have ${[...this.parts.keys()].join(', ')})`);
    return p;
  }

  list(kind: PartKind, region?: string): Part[] {
    return [...this.parts.values()].filter((p) => p.kind === kind && (region === undefined || p.region === region));
  }

  /** Client-facing URLs: each region's HAProxy. */
  haproxyUrls(): string[] {
    return this.list('haproxy').map((p) => p.url);
  }

  gatewayUrls(region?: string): string[] {
    return this.list('gateway', region).map((p) => p.url);
  }

  /** ms since the cluster object was made (the time base of crashes). */
  now(): number {
    return Math.round(performance.now() - this.t0);
  }

  // ---- faults ------------------------------------------------------------------

  #impl(name: string): PartImpl {
    const p = this.parts.get(name);
    if (!p) throw new Error(`no part ${name}`);
    return p;
  }

  /** Send `signal` to the part's PID (it must be running). Returns the PID. */
  signal(name: string, signal: NodeJS.Signals): number {
    const p = this.#impl(name);
    const pid = p.proc?.pid;
    if (pid === undefined || !alive(pid)) throw new Error(`${name} is not running`);
    if (signal === 'SIGKILL' || signal === 'SIGTERM' || signal === 'SIGINT') p.expectExit = true;
    process.kill(pid, signal);
    if (signal === 'SIGSTOP') p.frozen = true;
    if (signal === 'SIGCONT') p.frozen = false;
    return pid;
  }

  /** kill -9 and wait for the exit (bounded). */
  async kill(name: string): Promise<number> {
    const p = this.#impl(name);
    const proc = p.proc;
    const pid = this.signal(name, 'SIGKILL');
    await boundedExit(proc!, 10_000);
    return pid;
  }

  /** SIGTERM (a graceful stop), SIGKILL after `killAfterMs`; resolves when it exited. */
  async terminate(name: string, killAfterMs = 20_000): Promise<number> {
    const p = this.#impl(name);
    const proc = p.proc;
    if (p.frozen) this.signal(name, 'SIGCONT');
    const pid = this.signal(name, 'SIGTERM');
    if (!(await boundedExit(proc!, killAfterMs))) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
      await boundedExit(proc!, 5000);
    }
    return pid;
  }

  freeze(name: string): number {
    return this.signal(name, 'SIGSTOP');
  }

  thaw(name: string): number {
    return this.signal(name, 'SIGCONT');
  }

  /** Start a stopped part again (same ports, config, store) and wait until it is ready. Returns the new PID. */
  async restart(name: string, opts: { wait?: boolean } = {}): Promise<number> {
    const p = this.#impl(name);
    if (p.proc && !p.proc.hasExited()) throw new Error(`${name} is still running (pid ${p.proc.pid})`);
    await this.#spawn(p);
    if (opts.wait !== false) await this.#waitReady(p, 60_000);
    return p.proc!.pid;
  }

  async waitReady(name: string, timeoutMs = 60_000): Promise<void> {
    await this.#waitReady(this.#impl(name), timeoutMs);
  }

  /** The NATS server that leads the history stream, from each server's monitoring `/jsz` (undefined when no server names one). */
  async streamLeader(): Promise<string | undefined> {
    const votes = new Map<string, number>();
    for (const n of this.#plan!.regions.flatMap((r) => r.nats)) {
      const p = this.parts.get(n.name);
      if (!p?.proc || p.frozen) continue;
      const jsz = await getJson(`${n.monitorUrl}/jsz?accounts=true&streams=true`).catch(() => undefined);
      for (const acc of (jsz?.account_details ?? []) as { stream_detail?: { name: string; cluster?: { leader?: string } }[] }[]) {
        for (const s of acc.stream_detail ?? []) {
          const leader = s.name === STREAM_NAME ? s.cluster?.leader : undefined;
          if (leader) votes.set(leader, (votes.get(leader) ?? 0) + 1);
        }
      }
    }
    return [...votes.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
  }

  /** Which NATS server each gateway's connection goes to is not visible from outside; this gives the servers' client counts. */
  async natsConnections(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const n of this.#plan?.regions.flatMap((r) => r.nats) ?? []) {
      const p = this.parts.get(n.name);
      if (!p?.proc || p.frozen) continue;
      const v = await getJson(`${n.monitorUrl}/varz`).catch(() => undefined);
      if (v) out[n.name] = Number(v.connections ?? 0);
    }
    return out;
  }

  /** Rolling restart of every gateway (the `confab cluster roll` procedure), region by region, one at a time. */
  async roll(onEvent?: (e: RollEvent) => void): Promise<void> {
    const targets: RollTarget[] = this.#plan!.regions.flatMap((r) => {
      const admin = new HaproxyAdmin(r.haproxy.socket);
      return r.gateways.map((g): RollTarget => {
        const p = this.#impl(g.name);
        let exiting: Proc | undefined;
        return {
          name: g.name,
          url: g.url,
          admin,
          terminate: () => {
            exiting = p.proc;
            this.signal(g.name, 'SIGTERM');
          },
          waitExit: async (killAfterMs) => {
            if (exiting && !(await boundedExit(exiting, killAfterMs))) {
              process.kill(exiting.pid, 'SIGKILL');
              await boundedExit(exiting, 5000);
            }
          },
          restart: async () => {
            await this.#spawn(p);
          },
          diagnostics: () => `log tail of ${g.name}:\n${tail(g.log, 8)}`,
        };
      });
    });
    await rollGateways(targets, { onEvent, exitTimeoutMs: 20_000, readyTimeoutMs: 45_000 });
  }

  /** Every part answers its health probe (NATS /healthz, redis PING, gateway /readyz 200, every HAProxy server UP). */
  async health(): Promise<HealthReport> {
    const problems: string[] = [];
    await Promise.all(
      [...this.parts.values()].map(async (p) => {
        if (!p.proc) problems.push(`${p.name}: not running`);
        else if (p.frozen) problems.push(`${p.name}: frozen`);
        else if (!(await p.ready().catch(() => false))) problems.push(`${p.name}: not ready`);
      }),
    );
    return { ok: problems.length === 0, problems: problems.sort() };
  }

  /** Error and fatal lines (pino level ≥ 50) of every gateway log, grouped by message, most frequent first. */
  gatewayLogErrors(limit = 8): { message: string; count: number; gateways: string[] }[] {
    const byMsg = new Map<string, { count: number; gateways: Set<string> }>();
    for (const p of this.list('gateway')) {
      let text = '';
      try {
        text = readFileSync(p.log, 'utf8');
      } catch {
        continue;
      }
      for (const line of text.split('\n')) {
        if (!line.startsWith('{')) {
          if (/unhandled|uncaught|^\s*at |Error:/i.test(line) && !/^\s*at /.test(line)) bump(byMsg, line.trim().slice(0, 200), p.name);
          continue;
        }
        try {
          const j = JSON.parse(line) as { level?: number; msg?: string; err?: { message?: string; code?: string } };
          if ((j.level ?? 0) < 50) continue;
          const why = j.err?.code ?? j.err?.message;
          bump(byMsg, `${j.msg ?? '?'}${why ? ` (${String(why).slice(0, 120)})` : ''}`, p.name);
        } catch {
          // a partial line
        }
      }
    }
    return [...byMsg.entries()]
      .map(([message, v]) => ({ message, count: v.count, gateways: [...v.gateways].sort() }))
      .sort((a, b) => b.count - a.count)
      .slice(0, limit);
  }

  /** Stop everything by PID (frozen processes are continued first), then remove the state directory unless kept. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    const running = [...this.parts.values()].filter((p) => p.proc && !p.proc.hasExited());
    for (const p of running) {
      p.expectExit = true;
      try {
        if (p.frozen) process.kill(p.proc!.pid, 'SIGCONT');
        process.kill(p.proc!.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await Promise.all(running.map((p) => boundedExit(p.proc!, 10_000)));
    if (!this.opts.keepDir) rmSync(this.dir, { recursive: true, force: true });
  }
}

function bump(m: Map<string, { count: number; gateways: Set<string> }>, msg: string, gw: string): void {
  const e = m.get(msg) ?? { count: 0, gateways: new Set<string>() };
  e.count++;
  e.gateways.add(gw);
  m.set(msg, e);
}

/** Resolves true when `proc` exited within `ms`, false otherwise. */
async function boundedExit(proc: Proc, ms: number): Promise<boolean> {
  if (proc.hasExited()) return true;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((res) => (timer = setTimeout(() => res(false), ms)));
  try {
    return await Promise.race([proc.exited.then(() => true as const), late]);
  } finally {
    clearTimeout(timer);
  }
}

async function getJson(url: string): Promise<any> {
  const res = await fetch(url, { signal: AbortSignal.timeout(1500) });
  if (res.status !== 200) throw new Error(`${url}: HTTP ${res.status}`);
  return res.json();
}
