/**
 * `confab cluster up`: the supervisor. Starts, per region, a NATS cluster
 * (JetStream, routes), NATS gateways between regions, K confab gateways and an
 * HAProxy; waits until every part is healthy; prints the table; keeps
 * `<dir>/cluster.json` current; serves a loopback control API (rolling restarts
 * from `confab cluster roll`); and tears everything down on SIGINT/SIGTERM,
 * gateways drained first, then HAProxy, then NATS.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as netServer } from 'node:net';
import { join } from 'node:path';
import { writeNatsConfigAtomic } from '../nats/config-gen.js';
import { HAPROXY_BIN, HaproxyAdmin, renderHaproxyConfig } from '../testkit/haproxy.js';
import {
  natsConfigFor,
  planCluster,
  plannedPorts,
  readState,
  statePath,
  writeState,
  UsageError,
  type ClusterOptions,
  type ClusterState,
  type GatewayState,
  type RegionState,
} from './cluster-plan.js';
import { MARKERS, alive, cmdline, httpStatus, spawnGatewayProc, spawnLogged, tail, until, waitGatewayReady, waitGone, type Proc } from './cluster-procs.js';
import { rollGateways, type RollEvent, type RollTarget } from './cluster-roll.js';
import { renderTable } from './cluster-table.js';

const NATS_BIN = process.env.NATS_SERVER_BIN ?? 'nats-server';
const HEALTH_TIMEOUT_MS = 90_000;

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

const newNodeId = (g: GatewayState) => `${g.name}-${randomBytes(3).toString('hex')}`;

class Supervisor {
  private readonly procs = new Map<string, Proc>();
  private readonly expectedExit = new Set<string>();
  private control?: Server;
  private stopping?: Promise<void>;
  private rolling = false;

  constructor(readonly state: ClusterState, private readonly secret: string, private readonly log: (line: string) => void) {}

  private save(): void {
    writeState(this.state);
  }

  private watch(key: string, p: Proc, logFile: string): void {
    this.procs.set(key, p);
    if (this.stopping) {
      // started while a stop was already under way: stop it too
      process.kill(p.pid, 'SIGTERM');
      throw new Error('cluster is stopping');
    }
    void p.exited.then((code) => {
      if (this.procs.get(key) === p) this.procs.delete(key);
      if (this.stopping || this.expectedExit.delete(key)) return;
      this.log(`! ${key} exited unexpectedly (code ${code}); log tail:\n${tail(logFile, 8)}`);
    });
  }

  async startNats(): Promise<void> {
    for (const r of this.state.regions) {
      for (const n of r.nats) {
        mkdirSync(n.storeDir, { recursive: true });
        writeNatsConfigAtomic(n.config, natsConfigFor(this.state, r, n));
        const p = await spawnLogged(NATS_BIN, ['-c', n.config], process.env, n.log);
        n.pid = p.pid;
        this.watch(n.name, p, n.log);
        this.save();
      }
    }
    // every node needs its peers for a JetStream meta leader: start all, then wait for each
    for (const r of this.state.regions) {
      for (const n of r.nats) {
        await until(async () => (await httpStatus(`${n.monitorUrl}/healthz`)) === 200, `nats-server ${n.name} /healthz`, HEALTH_TIMEOUT_MS, 100, () =>
          this.procs.has(n.name) ? undefined : `exited; log:\n${tail(n.log)}`,
        );
      }
    }
    this.log(`nats: ${this.state.regions.length * this.state.regions[0]!.nats.length} servers healthy`);
  }

  private async spawnGateway(r: RegionState, g: GatewayState): Promise<Proc> {
    g.node = newNodeId(g);
    const dataDir = join(this.state.dir, 'gw', g.name);
    mkdirSync(dataDir, { recursive: true });
    const p = await spawnGatewayProc({
      port: g.port,
      node: g.node,
      region: r.name,
      natsUrl: r.nats.map((n) => n.url).join(','),
      secret: this.secret,
      dataDir,
      logFile: g.log,
      streamReplicas: this.state.streamReplicas,
    });
    g.pid = p.pid;
    this.watch(g.name, p, g.log);
    this.save();
    return p;
  }

  async startGateways(): Promise<void> {
    // the history stream is created by the first gateway and placed in that gateway's NATS cluster:
    // start the stream region's gateways first, then every other region's
    const [first, ...rest] = this.state.regions;
    const startRegion = async (r: RegionState) => {
      const ps = await Promise.all(r.gateways.map(async (g) => [g, await this.spawnGateway(r, g)] as const));
      for (const [g, p] of ps) await waitGatewayReady(g.url, p, g.log, HEALTH_TIMEOUT_MS);
    };
    await startRegion(first!);
    for (const r of rest) await startRegion(r);
    this.log(`gateways: ${this.state.regions.reduce((a, r) => a + r.gateways.length, 0)} ready`);
  }

  async startHaproxies(): Promise<void> {
    for (const r of this.state.regions) {
      const h = r.haproxy;
      writeFileSync(h.config, renderHaproxyConfig({ port: h.port, socketPath: h.socket, backends: r.gateways.map((g) => ({ name: g.name, port: g.port })), checkIntervalMs: 500 }));
      const p = await spawnLogged(HAPROXY_BIN, ['-db', '-f', h.config], process.env, h.log);
      h.pid = p.pid;
      this.watch(`haproxy-${r.name}`, p, h.log);
      this.save();
    }
    for (const r of this.state.regions) {
      const admin = new HaproxyAdmin(r.haproxy.socket);
      for (const g of r.gateways) {
        await until(async () => (await admin.server(g.name).catch(() => undefined))?.status === 'UP', `HAProxy ${r.name}: ${g.name} UP`, HEALTH_TIMEOUT_MS, 100, () =>
          this.procs.has(`haproxy-${r.name}`) ? undefined : `haproxy exited; log:\n${tail(r.haproxy.log)}`,
        );
      }
    }
    this.log(`haproxy: ${this.state.regions.length} up`);
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
        return r.gateways.map((g): RollTarget => ({
          name: g.name,
          url: g.url,
          admin,
          terminate: () => {
            const p = this.procs.get(g.name);
            if (!p) return;
            this.expectedExit.add(g.name);
            process.kill(p.pid, 'SIGTERM');
          },
          waitExit: async (killAfterMs) => {
            const p = this.procs.get(g.name);
            if (p) await waitGone(p.pid, [...MARKERS.gateway], killAfterMs);
          },
          restart: async () => {
            await this.spawnGateway(r, g);
          },
          diagnostics: () => `log tail of ${g.name}:\n${tail(g.log, 8)}`,
        }));
      });
      const show = (e: RollEvent) => {
        const g = this.state.regions.flatMap((r) => r.gateways).find((x) => x.name === e.name);
        const text: Record<RollEvent['type'], string> = {
          drain: 'set to DRAIN in HAProxy',
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
      this.save();
      this.control?.close();
      this.control?.closeAllConnections();
      const stopAll = async (items: { key: string; markers: readonly string[]; killAfterMs: number }[]) => {
        await Promise.all(
          items.map(async ({ key, markers, killAfterMs }) => {
            const p = this.procs.get(key);
            if (!p) return;
            try {
              process.kill(p.pid, 'SIGTERM');
            } catch {
              return;
            }
            await waitGone(p.pid, [...markers], killAfterMs);
          }),
        );
      };
      const regions = this.state.regions;
      this.log('stopping: draining gateways');
      await stopAll(regions.flatMap((r) => r.gateways.map((g) => ({ key: g.name, markers: MARKERS.gateway, killAfterMs: 20_000 }))));
      this.log('stopping: haproxy');
      await stopAll(regions.map((r) => ({ key: `haproxy-${r.name}`, markers: MARKERS.haproxy, killAfterMs: 5_000 })));
      this.log('stopping: nats');
      await stopAll(regions.flatMap((r) => r.nats.map((n) => ({ key: n.name, markers: MARKERS.nats, killAfterMs: 10_000 }))));
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
      void sup.stop().then(() => resolveDone());
    };
    process.on('SIGINT', () => onSignal('SIGINT'));
    process.on('SIGTERM', () => onSignal('SIGTERM'));
    process.on('SIGHUP', () => onSignal('SIGHUP')); // terminal closed
  });

  try {
    log(`starting in ${o.dir}: ${o.regions} region(s) × ${o.natsPerRegion} NATS + ${o.gatewaysPerRegion} gateway(s) + HAProxy (${HAPROXY_BIN})`);
    await sup.serveControl();
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
    state.status = 'running';
    writeState(state);
    process.stdout.write(renderTable(state));
    process.stdout.write(`\ncluster ready: state in ${statePath(o.dir)}; Ctrl-C (or \`confab cluster down --dir ${o.dir}\`) stops it, \`confab cluster roll --dir ${o.dir}\` restarts every gateway\n`);
  }
  await done;
}
