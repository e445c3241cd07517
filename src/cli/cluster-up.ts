/**
 * `confab cluster up`: the supervisor. Starts, per region, a NATS cluster
 * (JetStream, routes), NATS gateways between regions, K confab gateways and an
 * HAProxy; waits until every part is healthy; prints the table; keeps
 * `<dir>/cluster.json` current; restarts a part that exits on its own (same
 * ports and config, full-jitter exponential backoff, counted per part in
 * cluster.json); serves a loopback control API (rolling restarts from `confab
 * cluster roll`, which marks the gateway it replaces as `rolling` so that it is
 * not restarted behind the roll's back); and tears everything down on
 * SIGINT/SIGTERM, gateways drained first, then HAProxy, then NATS.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as netServer } from 'node:net';
import { join } from 'node:path';
import { writeNatsConfigAtomic } from '../nats/config-gen.js';
import { HAPROXY_BIN, HaproxyAdmin, renderHaproxyConfig } from '../procs/haproxy.js';
import { spawnGatewayProc } from '../procs/gateway.js';
import { NATS_SERVER_BIN } from '../procs/nats.js';
import { alive, cmdline, MARKERS, signalIfOurs, tail, waitGone } from '../procs/pid.js';
import { spawnLogged, type Proc } from '../procs/process.js';
import { httpStatus, waitFor } from '../procs/wait.js';
import { WanProxy } from '../procs/wan-proxy.js';
import { Backoff } from '../shared/backoff.js';
import {
  natsConfigFor,
  partsOf,
  planCluster,
  plannedPorts,
  readState,
  statePath,
  writeState,
  UsageError,
  type ClusterOptions,
  type ClusterState,
  type GatewayState,
  type HaproxyState,
  type NatsNodeState,
  type PartKind,
  type RegionState,
} from './cluster-plan.js';
import { rollGateways, type RollEvent, type RollTarget } from './cluster-roll.js';
import { renderTable } from './cluster-table.js';

const HEALTH_TIMEOUT_MS = 90_000;
/**
 * Restart policy: the n-th consecutive restart of a part (0-based) waits a random time in
 * [0.5 s, min(10 s, 0.5 s·2^(n+1))]; a part that stayed up RESTART_STABLE_MS starts again at n = 0.
 */
const RESTART_BACKOFF = new Backoff({ minMs: 500, maxMs: 10_000 });
const RESTART_STABLE_MS = 30_000;

function portFree(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = netServer();
    s.once('error', () => res(false));
    s.listen(port, '127.0.0.1', () => s.close(() => res(true)));
  });
}

/** The shared session secret, generated once and kept in the cluster dir. */
function loadSecret(dir: string): string {
  const p = join(dir, 'secret');
  if (existsSync(p)) {
    const s = readFileSync(p, 'utf8').trim();
    if (s.length >= 16) return s;
  }
  const s = randomBytes(24).toString('hex');
  writeFileSync(p, s + '\n', { mode: 0o600 });
  return s;
}

/** The cluster's NATS client credentials (every NATS config requires them; every gateway connects with them), kept in the cluster dir. */
function loadNatsAuth(dir: string): { user: string; pass: string } {
  const p = join(dir, 'nats-auth');
  if (existsSync(p)) {
    const pass = readFileSync(p, 'utf8').trim();
    if (pass.length >= 16) return { user: 'confab', pass };
  }
  const pass = randomBytes(24).toString('hex');
  writeFileSync(p, pass + '\n', { mode: 0o600 });
  return { user: 'confab', pass };
}

const newNodeId = (g: GatewayState) => `${g.name}-${randomBytes(3).toString('hex')}`;

type PartRec = NatsNodeState | GatewayState | HaproxyState;

/** One supervised process slot: the same ports and config every time it is (re)started. */
interface Part {
  readonly key: string;
  readonly kind: PartKind;
  readonly rec: PartRec;
  readonly log: string;
  readonly markers: readonly string[];
  /** Start a process for this part (`initial`: the cluster's first start, configs are (re)written). */
  readonly launch: (initial: boolean) => Promise<Proc>;
  /** Whether it is healthy now (NATS /healthz, gateway /readyz, HAProxy runtime API). */
  readonly healthy: () => Promise<boolean>;
  proc?: Proc;
  /** Stopped on purpose by a roll: its exit is expected and nothing restarts it behind the roll's back. */
  held?: 'rolling';
  /** Consecutive automatic restarts (the backoff exponent); 0 again after a run of RESTART_STABLE_MS. */
  attempt: number;
  timer?: ReturnType<typeof setTimeout>;
  /** A start under way (never two processes for one part). */
  starting?: Promise<void>;
  startedAt: number;
}

class Supervisor {
  private readonly parts = new Map<string, Part>();
  private control?: Server;
  private stopping?: Promise<void>;
  private rolling = false;
  /** Set when a part exits during the first start: every start-up wait fails with it. */
  private startFailure?: string;

  private readonly natsAuth: { user: string; pass: string };
  /** The WAN proxies in front of every gateway port (with --wan-latency / --wan-loss). */
  readonly wan: WanProxy[] = [];

  constructor(readonly state: ClusterState, private readonly secret: string, private readonly log: (line: string) => void) {
    this.natsAuth = loadNatsAuth(state.dir);
    for (const { kind, name, region, rec } of partsOf(state)) {
      const part: Part = {
        key: name,
        kind,
        rec,
        log: rec.log,
        markers: MARKERS[kind],
        launch: (initial) => this.launch(kind, region, rec, initial),
        healthy: () => this.healthy(kind, rec),
        attempt: 0,
        startedAt: 0,
      };
      this.parts.set(name, part);
    }
  }

  private save(): void {
    writeState(this.state);
  }

  private part(name: string): Part {
    const p = this.parts.get(name);
    if (!p) throw new Error(`no part ${name}`);
    return p;
  }

  private partsOfKind(kind: PartKind): Part[] {
    return [...this.parts.values()].filter((p) => p.kind === kind);
  }

  private async launch(kind: PartKind, r: RegionState, rec: PartRec, initial: boolean): Promise<Proc> {
    switch (kind) {
      case 'nats': {
        const n = rec as NatsNodeState;
        mkdirSync(n.storeDir, { recursive: true });
        // a restart keeps the config (and the JetStream store): same name, ports and routes, so it rejoins
        if (initial || !existsSync(n.config)) writeNatsConfigAtomic(n.config, natsConfigFor(this.state, r, n, this.natsAuth));
        return spawnLogged(NATS_SERVER_BIN, ['-c', n.config], process.env, n.log);
      }
      case 'gateway': {
        const g = rec as GatewayState;
        g.node = newNodeId(g);
        const dataDir = join(this.state.dir, 'gw', g.name);
        mkdirSync(dataDir, { recursive: true });
        return spawnGatewayProc({
          port: g.port,
          node: g.node,
          region: r.name,
          natsUrl: r.nats.map((n) => n.url).join(','),
          secret: this.secret,
          dataDir,
          logFile: g.log,
          streamReplicas: this.state.streamReplicas,
          // every region's entry point: the web client fails over between regions, and each accepts the others' pages
          env: {
            CONFAB_PUBLIC_URLS: this.state.regions.map((x) => `${x.haproxy.url.replace(/^http/, 'ws')}/ws`).join(','),
            ...(this.state.homeRegions ? { CONFAB_HOME_REGIONS: this.state.homeRegions.join(',') } : {}),
            NATS_USER: this.natsAuth.user,
            NATS_PASS: this.natsAuth.pass,
          },
        });
      }
      case 'haproxy': {
        const h = rec as HaproxyState;
        if (initial || !existsSync(h.config)) {
          writeFileSync(h.config, renderHaproxyConfig({ port: h.port, socketPath: h.socket, backends: r.gateways.map((g) => ({ name: g.name, port: g.port })), checkIntervalMs: 500 }));
        }
        return spawnLogged(HAPROXY_BIN, ['-db', '-f', h.config], process.env, h.log);
      }
    }
  }

  private async healthy(kind: PartKind, rec: PartRec): Promise<boolean> {
    switch (kind) {
      case 'nats':
        return (await httpStatus(`${(rec as NatsNodeState).monitorUrl}/healthz`)) === 200;
      case 'gateway':
        return (await httpStatus(`${(rec as GatewayState).url}/readyz`)) === 200;
      case 'haproxy':
        return (await new HaproxyAdmin((rec as HaproxyState).socket).servers().catch(() => undefined)) !== undefined;
    }
  }

  /** Start a process for `part` (one at a time per part) and watch its exit. */
  private startPart(part: Part, initial = false): Promise<Proc> {
    const run = (async () => {
      if (this.stopping) throw new Error('cluster is stopping');
      const p = await part.launch(initial);
      part.proc = p;
      part.startedAt = Date.now();
      part.rec.pid = p.pid;
      this.save();
      void p.exited.then((code) => this.onExit(part, p, code)).catch((e: unknown) => this.log(`! ${part.key}: exit handling failed: ${String(e)}`));
      if (this.stopping) {
        // started while a stop was already under way: stop it too
        signalIfOurs(p.pid, [...part.markers], 'SIGTERM');
        throw new Error('cluster is stopping');
      }
      return p;
    })();
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    part.starting = settled;
    void settled.then(() => {
      if (part.starting === settled) part.starting = undefined;
    });
    return run;
  }

  private onExit(part: Part, p: Proc, code: number | null): void {
    if (part.proc !== p) return; // already replaced (a roll)
    part.proc = undefined;
    if (this.stopping || part.held) return; // stopped on purpose
    const signal = p.exitSignal();
    const how = signal ? `signal ${signal}` : `code ${code}`;
    if (this.state.status === 'starting') {
      this.startFailure ??= `${part.key} exited (${how}); log tail:\n${tail(part.log, 8)}`;
      this.log(`! ${part.key} exited unexpectedly while starting (${how}); log tail:\n${tail(part.log, 8)}`);
      return;
    }
    part.rec.lastExit = { at: new Date().toISOString(), pid: p.pid, code, signal };
    this.scheduleRestart(part, `(pid ${p.pid}) exited unexpectedly (${how})`, `; log tail:\n${tail(part.log, 8)}`);
  }

  /** Restart `part` after a full-jitter exponential backoff. */
  private scheduleRestart(part: Part, why: string, detail = ''): void {
    if (this.stopping || part.held || part.proc || part.timer) return;
    if (Date.now() - part.startedAt >= RESTART_STABLE_MS) part.attempt = 0;
    const delay = RESTART_BACKOFF.delay(part.attempt++);
    part.rec.state = 'restarting';
    part.rec.nextRestartAt = new Date(Date.now() + delay).toISOString();
    delete part.rec.pid;
    this.save();
    this.log(`! ${part.key} ${why}; restart #${(part.rec.restarts ?? 0) + 1} in ${delay} ms${detail}`);
    part.timer = setTimeout(() => {
      part.timer = undefined;
      this.restart(part).catch((e: unknown) => this.log(`! ${part.key}: restart failed: ${String(e)}`));
    }, delay);
  }

  private async restart(part: Part): Promise<void> {
    if (this.stopping || part.held || part.proc || part.starting) return;
    const n = (part.rec.restarts = (part.rec.restarts ?? 0) + 1);
    part.rec.state = 'starting';
    delete part.rec.nextRestartAt;
    let p: Proc;
    try {
      p = await this.startPart(part);
    } catch (e) {
      if (this.stopping || part.held || part.proc) return;
      part.startedAt = Date.now();
      this.scheduleRestart(part, `could not be restarted: ${(e as Error).message}`);
      return;
    }
    this.log(`${part.key}: restarted (pid ${p.pid}, restart #${n}), waiting until healthy`);
    await this.watchHealth(part, p, `restart #${n}`);
  }

  /** After a restart: `up` once healthy, `unhealthy` if not within the bound (left running). */
  private async watchHealth(part: Part, p: Proc, what: string): Promise<void> {
    const superseded = () => part.proc !== p || this.stopping !== undefined || part.held !== undefined;
    try {
      await waitFor(() => part.healthy(), { what: `${part.key} healthy`, timeoutMs: HEALTH_TIMEOUT_MS, intervalMs: 200, abort: () => (superseded() ? 'superseded' : undefined) });
    } catch (e) {
      if (superseded()) return;
      part.rec.state = 'unhealthy';
      this.save();
      this.log(`! ${part.key} (pid ${p.pid}) still not healthy after ${what}: ${(e as Error).message}; left running`);
      return;
    }
    if (superseded()) return;
    part.rec.state = 'up';
    this.save();
    this.log(`${part.key}: healthy again (pid ${p.pid}, ${what})`);
  }

  /** During the first start: poll a part's health; fail at once if any part exited meanwhile. */
  private async waitStartHealthy(part: Part, what: string, cond: () => Promise<boolean> = part.healthy): Promise<void> {
    await waitFor(cond, { what, timeoutMs: HEALTH_TIMEOUT_MS, intervalMs: 100, abort: () => this.startFailure ?? (part.proc ? undefined : `exited; log:\n${tail(part.log)}`) });
  }

  /** With a WAN: one delaying proxy per NATS node, in front of its gateway port, before any NATS starts. */
  async startWan(): Promise<void> {
    const w = this.state.wan;
    if (!w) return;
    for (const r of this.state.regions) {
      for (const n of r.nats) {
        if (!n.wanPort) continue;
        this.wan.push(await WanProxy.listen({ port: n.wanPort, target: { port: n.gatewayPort }, latencyMs: w.latencyMs, lossPct: w.lossPct, name: `wan->${n.name}` }));
      }
    }
    this.log(`wan: ${this.wan.length} proxies, ${w.latencyMs} ms round trip, ${w.lossPct}% loss between regions`);
  }

  async startNats(): Promise<void> {
    const nats = this.partsOfKind('nats');
    for (const part of nats) {
      part.rec.state = 'starting';
      await this.startPart(part, true);
    }
    // every node needs its peers for a JetStream meta leader: start all, then wait for each
    for (const part of nats) await this.waitStartHealthy(part, `nats-server ${part.key} /healthz`);
    this.log(`nats: ${nats.length} servers healthy`);
  }

  async startGateways(): Promise<void> {
    // the history stream is created by the first gateway and placed in that gateway's NATS cluster:
    // start the stream region's gateways first, then every other region's
    for (const r of this.state.regions) {
      const parts = r.gateways.map((g) => this.part(g.name));
      for (const part of parts) part.rec.state = 'starting';
      await Promise.all(parts.map((part) => this.startPart(part, true)));
      for (const part of parts) await this.waitStartHealthy(part, `gateway ${(part.rec as GatewayState).url} /readyz`);
    }
    this.log(`gateways: ${this.partsOfKind('gateway').length} ready`);
  }

  async startHaproxies(): Promise<void> {
    for (const r of this.state.regions) {
      const part = this.part(`haproxy-${r.name}`);
      part.rec.state = 'starting';
      await this.startPart(part, true);
    }
    for (const r of this.state.regions) {
      const part = this.part(`haproxy-${r.name}`);
      const admin = new HaproxyAdmin(r.haproxy.socket);
      for (const g of r.gateways) {
        await this.waitStartHealthy(part, `HAProxy ${r.name}: ${g.name} UP`, async () => (await admin.server(g.name).catch(() => undefined))?.status === 'UP');
      }
    }
    this.log(`haproxy: ${this.state.regions.length} up`);
  }

  /** Every part started and healthy: the cluster runs. */
  markRunning(): void {
    for (const part of this.parts.values()) {
      part.rec.state = 'up';
      part.rec.restarts ??= 0;
    }
    this.state.status = 'running';
    this.save();
  }

  /** Roll every gateway, region by region, one at a time. */
  async roll(say: (line: string) => void): Promise<void> {
    if (this.rolling) throw new UsageError('a roll is already running');
    if (this.state.status !== 'running') throw new UsageError(`cluster is ${this.state.status}`);
    this.rolling = true;
    this.state.status = 'rolling';
    this.save();
    try {
      const targets: RollTarget[] = this.state.regions.flatMap((r) => {
        const admin = new HaproxyAdmin(r.haproxy.socket);
        return r.gateways.map((g): RollTarget => {
          const part = this.part(g.name);
          return {
            name: g.name,
            url: g.url,
            admin,
            begin: async () => {
              // from now on its exits are the roll's: no automatic restart, a pending one is cancelled
              part.held = 'rolling';
              clearTimeout(part.timer);
              part.timer = undefined;
              part.rec.state = 'rolling';
              delete part.rec.nextRestartAt;
              this.save();
              await part.starting; // an automatic restart already under way finishes first
            },
            end: (ok) => this.endRoll(part, ok),
            isDown: () => part.proc === undefined,
            terminate: () => {
              const p = part.proc;
              if (p) signalIfOurs(p.pid, [...part.markers], 'SIGTERM');
            },
            waitExit: async (killAfterMs) => {
              const p = part.proc;
              if (p) await waitGone(p.pid, [...part.markers], killAfterMs);
            },
            restart: async () => {
              await this.startPart(part);
            },
            diagnostics: () => `log tail of ${g.name}:\n${tail(g.log, 8)}`,
          };
        });
      });
      const show = (e: RollEvent) => {
        const g = this.state.regions.flatMap((r) => r.gateways).find((x) => x.name === e.name);
        const text: Record<RollEvent['type'], string> = {
          down: 'was down (not running): nothing to drain, starting it',
          drain: `set to DRAIN in HAProxy${e.type === 'drain' && !e.status.startsWith('DRAIN') ? ` (HAProxy shows it ${e.status})` : ''}`,
          sigterm: 'SIGTERM sent',
          unready: '/readyz failed',
          exited: 'exited (drained)',
          started: `replacement started (node ${g?.node}, pid ${g?.pid})`,
          ready: 'replacement /readyz 200',
          up: 'UP in HAProxy again',
        };
        say(`${e.name}: ${text[e.type]}`);
      };
      await rollGateways(targets, { onEvent: show, exitTimeoutMs: 20_000, readyTimeoutMs: 30_000 });
    } finally {
      this.rolling = false;
      if (this.state.status === 'rolling') this.state.status = 'running';
      this.save();
    }
  }

  /** A gateway's roll is over: hand it back to the restart policy. */
  private endRoll(part: Part, ok: boolean): void {
    part.held = undefined;
    if (this.stopping) return;
    const p = part.proc;
    if (!p) {
      this.scheduleRestart(part, 'is not running after a failed roll step');
    } else if (ok) {
      part.attempt = 0;
      part.rec.state = 'up';
      this.save();
    } else {
      part.rec.state = 'starting';
      this.save();
      this.watchHealth(part, p, 'a failed roll step').catch((e: unknown) => this.log(`! ${part.key}: ${String(e)}`));
    }
  }
  /** Loopback control API: POST /roll streams the roll's progress, one line per step. */
  async serveControl(): Promise<void> {
    this.control = createServer((req, res) => {
      if (req.headers.authorization !== `Bearer ${this.state.controlToken}`) {
        res.writeHead(401).end('unauthorized\n');
        return;
      }
      if (req.method === 'POST' && req.url === '/roll') {
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
        const say = (l: string) => {
          this.log(`roll: ${l}`);
          res.write(l + '\n');
        };
        this.roll(say).then(
          () => res.end('roll done\n'),
          (e: Error) => res.end(`roll failed: ${e.message}\n`),
        );
        return;
      }
      if (req.method === 'GET' && req.url === '/wan') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ wan: this.state.wan ?? null, proxies: this.wan.map((p) => p.stats()) }));
        return;
      }
      if (req.method === 'GET' && req.url === '/status') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(this.state));
        return;
      }
      res.writeHead(404).end('not found\n');
    });
    await new Promise<void>((res, rej) => {
      this.control!.once('error', rej);
      this.control!.listen(this.state.controlPort, '127.0.0.1', () => res());
    });
  }

  /** Stop everything: gateways drained first (in parallel), then HAProxy, then NATS. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.state.status = 'stopping';
      for (const part of this.parts.values()) {
        // nothing is restarted any more
        clearTimeout(part.timer);
        part.timer = undefined;
        delete part.rec.nextRestartAt;
      }
      this.save();
      this.control?.close();
      this.control?.closeAllConnections();
      await Promise.all([...this.parts.values()].map((part) => part.starting ?? Promise.resolve()));
      const stopAll = async (kind: PartKind, killAfterMs: number) => {
        await Promise.all(
          this.partsOfKind(kind).map(async (part) => {
            const p = part.proc;
            if (p && signalIfOurs(p.pid, [...part.markers], 'SIGTERM')) {
              part.rec.state = 'stopping';
              this.save();
              await waitGone(p.pid, [...part.markers], killAfterMs);
            }
            part.rec.state = 'stopped';
            this.save();
          }),
        );
      };
      this.log('stopping: draining gateways');
      await stopAll('gateway', 20_000);
      this.log('stopping: haproxy');
      await stopAll('haproxy', 5_000);
      this.log('stopping: nats');
      await stopAll('nats', 10_000);
      await Promise.all(this.wan.map((p) => p.close()));
      this.state.status = 'stopped';
      this.save();
      this.log('stopped');
    })();
    return this.stopping;
  }
}

/** Refuse to start over a live cluster or on busy ports. */
async function preflight(o: ClusterOptions, planned: ClusterState): Promise<void> {
  if (existsSync(statePath(o.dir))) {
    let old: ClusterState | undefined;
    try {
      old = readState(o.dir);
    } catch {
      // unreadable: overwritten below
    }
    if (old && old.status !== 'stopped' && alive(old.supervisorPid) && cmdline(old.supervisorPid).includes('cluster')) {
      throw new UsageError(`a cluster is already running from ${o.dir} (supervisor pid ${old.supervisorPid}); stop it with: confab cluster down --dir ${o.dir}`);
    }
  }
  const busy: number[] = [];
  for (const p of plannedPorts(planned)) if (!(await portFree(p))) busy.push(p);
  if (busy.length > 0) throw new UsageError(`ports in use on 127.0.0.1: ${busy.join(', ')} (choose another --base-port)`);
}

/** Run `confab cluster up`; resolves when the cluster has been stopped. */
export async function clusterUp(o: ClusterOptions): Promise<void> {
  for (const sub of ['', 'logs', 'nats', 'gw']) mkdirSync(join(o.dir, sub), { recursive: true });
  const state = planCluster(o, randomBytes(16).toString('hex'));
  await preflight(o, state);
  const log = (l: string) => process.stderr.write(`[cluster ${new Date().toISOString().slice(11, 23)}] ${l}\n`);
  const sup = new Supervisor(state, loadSecret(o.dir), log);
  writeState(state);

  let signalled = 0;
  const done = new Promise<void>((resolveDone) => {
    const onSignal = (sig: string) => {
      if (++signalled > 1) {
        log(`second ${sig}: still stopping (bounded), please wait`);
        return;
      }
      log(`${sig}: stopping the cluster`);
      sup.stop().then(
        () => resolveDone(),
        (e: unknown) => {
          log(`stop failed: ${String(e)}`);
          resolveDone();
        },
      );
    };
    process.on('SIGINT', () => onSignal('SIGINT'));
    process.on('SIGTERM', () => onSignal('SIGTERM'));
    process.on('SIGHUP', () => onSignal('SIGHUP')); // terminal closed
  });

  try {
    log(`starting in ${o.dir}: ${o.regions} region(s) × ${o.natsPerRegion} NATS + ${o.gatewaysPerRegion} gateway(s) + HAProxy (${HAPROXY_BIN})`);
    await sup.serveControl();
    await sup.startWan();
    await sup.startNats();
    await sup.startGateways();
    await sup.startHaproxies();
  } catch (e) {
    if (signalled > 0) {
      // interrupted while starting: a clean stop, not a failure
      await done;
      return;
    }
    log(`start failed: ${(e as Error).message}`);
    await sup.stop();
    throw e;
  }
  if (signalled === 0) {
    sup.markRunning();
    process.stdout.write(renderTable(state));
    process.stdout.write(`\ncluster ready: state in ${statePath(o.dir)}; Ctrl-C (or \`confab cluster down --dir ${o.dir}\`) stops it, \`confab cluster roll --dir ${o.dir}\` restarts every gateway\n`);
  }
  await done;
}
