/**
 * `confab cluster` layout: command-line options, the port plan, and the
 * `<dir>/cluster.json` state file (every PID and port of a running local cluster).
 *
 * Port plan for base port B (default 14000), region r = 0,1,… with R = B + 100·(r+1):
 *   B          supervisor control API (loopback, token in cluster.json)
 *   R          HAProxy frontend of region r
 *   R+10+i     NATS client port of node i     R+20+i  monitoring (/healthz)
 *   R+30+i     NATS cluster (routes)          R+40+i  NATS gateway (between regions)
 *   R+50+j     confab gateway j
 *   R+70+i     WAN proxy in front of node i's gateway port (only with --wan-latency / --wan-loss)
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { renderNatsConfig } from '../nats/config-gen.js';

/** Bad command-line input (exit code 2). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export const DEFAULT_REGION_NAMES = ['ord', 'syd', 'cdg', 'ams', 'sin', 'gru', 'nrt', 'fra', 'lhr'];

export interface ClusterOptions {
  regions: number;
  natsPerRegion: number;
  gatewaysPerRegion: number;
  basePort: number;
  dir: string;
  regionNames: string[];
  /** --wan-latency: round-trip ms added between regions by a proxy on every gateway link (undefined: no proxy). */
  wanLatencyMs?: number;
  /** --wan-loss: percent of chunks on the WAN delayed by a retransmission timeout. */
  wanLossPct?: number;
}

/**
 * Lifecycle of one part (nats-server, gateway, HAProxy) as the supervisor sees it:
 * `starting` (spawned, not yet healthy), `up` (was healthy; `cluster status` checks
 * the live health), `restarting` (exited on its own, restart scheduled at
 * `nextRestartAt`), `unhealthy` (restarted but not healthy within the start-up
 * bound; still running), `rolling` (being replaced by `cluster roll`: stopped on
 * purpose, never restarted behind the roll's back), `stopping`, `stopped`.
 */
export type PartState = 'starting' | 'up' | 'restarting' | 'unhealthy' | 'rolling' | 'stopping' | 'stopped';

/** Supervisor bookkeeping per part, kept in cluster.json. */
export interface PartStatus {
  state?: PartState;
  /** Automatic restarts after an unexpected exit (a roll's replacement is not counted). */
  restarts?: number;
  /** The last unexpected exit. */
  lastExit?: { at: string; pid: number; code: number | null; signal: string | null };
  /** When `state` is `restarting`: when the restart is due. */
  nextRestartAt?: string;
}

/** One NATS server of the plan (and, in cluster.json, its PID). */
export interface NatsNodeState extends PartStatus {
  name: string;
  port: number;
  monitorPort: number;
  clusterPort: number;
  gatewayPort: number;
  /** With a WAN: the proxy port other regions reach this node's gateway port through (advertised). */
  wanPort?: number;
  url: string;
  monitorUrl: string;
  config: string;
  storeDir: string;
  log: string;
  pid?: number;
}

/** One confab gateway: `name` is its HAProxy server name and never changes; `node` (FLY_ALLOC_ID) changes on every restart. */
export interface GatewayState extends PartStatus {
  name: string;
  node: string;
  port: number;
  url: string;
  log: string;
  pid?: number;
}

export interface HaproxyState extends PartStatus {
  port: number;
  url: string;
  socket: string;
  config: string;
  log: string;
  pid?: number;
}

export interface RegionState {
  name: string;
  haproxy: HaproxyState;
  nats: NatsNodeState[];
  gateways: GatewayState[];
}

/** `<dir>/cluster.json`. */
export interface ClusterState {
  version: 1;
  dir: string;
  supervisorPid: number;
  controlPort: number;
  controlToken: string;
  startedAt: string;
  /** JetStream history stream replicas (3 when every region has ≥ 3 NATS nodes, else 1). */
  streamReplicas: number;
  /** The region whose NATS cluster holds the history stream (its gateways start first); with home regions, the default home. */
  streamRegion: string;
  /**
   * Home regions of the history (CONFAB_HOME_REGIONS given to every gateway): every region of a
   * multi-region cluster unless the shell sets CONFAB_HOME_REGIONS (empty: the one stream); none for one region.
   */
  homeRegions?: string[];
  status: 'starting' | 'running' | 'rolling' | 'stopping' | 'stopped';
  regions: RegionState[];
  /** Set when the gateway links between regions go through WAN proxies (docs/cluster.md). */
  wan?: { latencyMs: number; lossPct: number };
}

function intFlag(name: string, raw: string | undefined, min: number, max: number): number {
  if (raw === undefined || !/^\d+$/.test(raw)) throw new UsageError(`--${name} needs an integer, got ${JSON.stringify(raw ?? '')}`);
  const n = Number(raw);
  if (n < min || n > max) throw new UsageError(`--${name} must be between ${min} and ${max}, got ${n}`);
  return n;
}

/** Parse `--flag value` / `--flag=value` pairs of the cluster commands. Unknown flags are refused. */
export function parseClusterArgs(argv: string[], allowed: readonly string[]): ClusterOptions {
  const o: ClusterOptions = { regions: 2, natsPerRegion: 3, gatewaysPerRegion: 2, basePort: 14000, dir: '.confab-cluster', regionNames: DEFAULT_REGION_NAMES };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new UsageError(`unexpected argument ${JSON.stringify(a)}`);
    const eq = a.indexOf('=');
    const key = eq > 0 ? a.slice(2, eq) : a.slice(2);
    if (!allowed.includes(key)) throw new UsageError(`unknown option --${key} (allowed: ${allowed.map((k) => `--${k}`).join(' ')})`);
    const val = eq > 0 ? a.slice(eq + 1) : argv[++i];
    switch (key) {
      case 'regions':
        o.regions = intFlag(key, val, 1, 9);
        break;
      case 'nats-per-region':
        o.natsPerRegion = intFlag(key, val, 1, 5);
        break;
      case 'gateways-per-region':
        o.gatewaysPerRegion = intFlag(key, val, 1, 20);
        break;
      case 'base-port':
        o.basePort = intFlag(key, val, 1024, 65535 - 1000);
        break;
      case 'dir':
        if (!val) throw new UsageError('--dir needs a path');
        o.dir = val;
        break;
      case 'wan-latency':
        o.wanLatencyMs = intFlag(key, val, 0, 10_000);
        break;
      case 'wan-loss': {
        const n = Number(val);
        if (val === undefined || val.trim() === '' || !Number.isFinite(n) || n < 0 || n > 50) throw new UsageError(`--wan-loss needs a percentage 0–50, got ${JSON.stringify(val ?? '')}`);
        o.wanLossPct = n;
        break;
      }
      case 'region-names': {
        const names = (val ?? '').split(',').map((s) => s.trim()).filter(Boolean);
        for (const n of names) if (!/^[a-z][a-z0-9]{1,15}$/.test(n)) throw new UsageError(`bad region name ${JSON.stringify(n)} (lowercase letters and digits)`);
        if (new Set(names).size !== names.length || names.length === 0) throw new UsageError('--region-names must list distinct names');
        o.regionNames = names;
        break;
      }
    }
  }
  if ((o.wanLatencyMs !== undefined || o.wanLossPct !== undefined) && o.regions < 2) throw new UsageError('--wan-latency/--wan-loss need at least 2 regions (the WAN is between regions)');
  if (o.regions > o.regionNames.length) throw new UsageError(`--regions ${o.regions} needs as many --region-names (have ${o.regionNames.length})`);
  o.dir = resolve(o.dir);
  return o;
}

/** Stream replicas for a cluster shape: 3 when a region has at least 3 NATS nodes (the stream lives in one region). */
export function streamReplicasFor(natsPerRegion: number): number {
  return natsPerRegion >= 3 ? 3 : 1;
}

/** Home regions for a cluster of these regions (see ClusterState.homeRegions). */
export function homeRegionsFor(names: string[], env: Record<string, string | undefined> = process.env): string[] | undefined {
  const set = env.CONFAB_HOME_REGIONS;
  if (set !== undefined) {
    const list = set.split(',').map((x) => x.trim()).filter(Boolean);
    return list.length > 0 ? list : undefined;
  }
  return names.length > 1 ? names : undefined;
}

/** The complete plan (no PIDs yet). */
export function planCluster(o: ClusterOptions, controlToken: string): ClusterState {
  const regions: RegionState[] = [];
  const wan = o.wanLatencyMs !== undefined || o.wanLossPct !== undefined;
  for (let r = 0; r < o.regions; r++) {
    const name = o.regionNames[r]!;
    const R = o.basePort + 100 * (r + 1);
    const nats = Array.from({ length: o.natsPerRegion }, (_, i): NatsNodeState => ({
      name: `${name}-n${i + 1}`,
      port: R + 10 + i,
      monitorPort: R + 20 + i,
      clusterPort: R + 30 + i,
      gatewayPort: R + 40 + i,
      ...(wan ? { wanPort: R + 70 + i } : {}),
      url: `nats://127.0.0.1:${R + 10 + i}`,
      monitorUrl: `http://127.0.0.1:${R + 20 + i}`,
      config: join(o.dir, 'nats', `${name}-n${i + 1}.conf`),
      storeDir: join(o.dir, 'nats', `${name}-n${i + 1}`),
      log: join(o.dir, 'logs', `nats-${name}-n${i + 1}.log`),
    }));
    const gateways = Array.from({ length: o.gatewaysPerRegion }, (_, j): GatewayState => ({
      name: `${name}-g${j + 1}`,
      node: '',
      port: R + 50 + j,
      url: `http://127.0.0.1:${R + 50 + j}`,
      log: join(o.dir, 'logs', `gw-${name}-g${j + 1}.log`),
    }));
    regions.push({
      name,
      haproxy: { port: R, url: `http://127.0.0.1:${R}`, socket: join(o.dir, `haproxy-${name}.sock`), config: join(o.dir, `haproxy-${name}.cfg`), log: join(o.dir, 'logs', `haproxy-${name}.log`) },
      nats,
      gateways,
    });
  }
  return {
    version: 1,
    dir: o.dir,
    supervisorPid: process.pid,
    controlPort: o.basePort,
    controlToken,
    startedAt: new Date().toISOString(),
    streamReplicas: streamReplicasFor(o.natsPerRegion),
    streamRegion: regions[0]!.name,
    ...(homeRegionsFor(regions.map((r) => r.name)) ? { homeRegions: homeRegionsFor(regions.map((r) => r.name)) } : {}),
    status: 'starting',
    regions,
    ...(wan ? { wan: { latencyMs: o.wanLatencyMs ?? 0, lossPct: o.wanLossPct ?? 0 } } : {}),
  };
}

/** Every TCP port the plan uses. */
export function plannedPorts(s: ClusterState): number[] {
  return [s.controlPort, ...s.regions.flatMap((r) => [r.haproxy.port, ...r.nats.flatMap((n) => [n.port, n.monitorPort, n.clusterPort, n.gatewayPort, ...(n.wanPort ? [n.wanPort] : [])]), ...r.gateways.map((g) => g.port)])];
}

/**
 * The nats-server config of one node, rendered by the same generator the NATS
 * container uses (`confab nats-config`), from the same environment variables.
 * Routes list every node of the region (a server ignores its own address);
 * a cluster of one node in one region gets no routes at all (standalone), which
 * is the only way a single JetStream node elects itself (nats-server 2.9).
 */
/**
 * The nats-config environment of one node. With `auth` the config requires those client
 * credentials (what `confab cluster up` does); without, it is rendered open (NATS_NO_AUTH=1, for
 * harnesses on loopback whose gateways connect without credentials).
 */
export function natsEnvFor(s: ClusterState, region: RegionState, node: NatsNodeState, auth?: { user: string; pass: string }): Record<string, string> {
  const env: Record<string, string> = {
    NATS_SERVER_NAME: node.name,
    NATS_CLUSTER_NAME: region.name,
    NATS_LISTEN_HOST: '127.0.0.1',
    NATS_PORT: String(node.port),
    NATS_HTTP_PORT: String(node.monitorPort),
    NATS_CLUSTER_PORT: String(node.clusterPort),
    NATS_GATEWAY_PORT: String(node.gatewayPort),
    NATS_STORE_DIR: node.storeDir,
    NATS_MAX_FILE_STORE: '1GB',
    NATS_MAX_MEM_STORE: '256MB',
    ...(auth ? { NATS_USER: auth.user, NATS_PASS: auth.pass } : { NATS_NO_AUTH: '1' }),
  };
  const superCluster = s.regions.length > 1;
  if (region.nats.length > 1 || superCluster) env.NATS_ROUTES = region.nats.map((n) => `127.0.0.1:${n.clusterPort}`).join(',');
  // with a WAN, every region reaches every other one through the proxies (and each node advertises its proxy,
  // so the addresses gossiped between gateways lead through the WAN too); a region's own entry is its real ports
  const gwPort = (r: RegionState, n: NatsNodeState) => (r !== region && n.wanPort ? n.wanPort : n.gatewayPort);
  if (superCluster) env.NATS_GATEWAYS = s.regions.map((r) => `${r.name}=${r.nats.map((n) => `nats://127.0.0.1:${gwPort(r, n)}`).join('|')}`).join(';');
  if (superCluster && node.wanPort) env.NATS_GATEWAY_ADVERTISE = `127.0.0.1:${node.wanPort}`;
  return env;
}

export function natsConfigFor(s: ClusterState, region: RegionState, node: NatsNodeState, auth?: { user: string; pass: string }): string {
  return renderNatsConfig(natsEnvFor(s, region, node, auth));
}

export function statePath(dir: string): string {
  return join(resolve(dir), 'cluster.json');
}

/** Write cluster.json atomically (mode 600: it holds the control token). */
export function writeState(s: ClusterState): void {
  const p = statePath(s.dir);
  const tmp = `${p}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(s, null, 2) + '\n', { mode: 0o600 });
  renameSync(tmp, p);
}

/** Read cluster.json; UsageError when there is none or it is not one of ours. */
export function readState(dir: string): ClusterState {
  const p = statePath(dir);
  if (!existsSync(p)) throw new UsageError(`no cluster state at ${p} (is a cluster running with --dir ${dir}?)`);
  let s: ClusterState;
  try {
    s = JSON.parse(readFileSync(p, 'utf8')) as ClusterState;
  } catch (e) {
    throw new UsageError(`${p} is not valid JSON: ${(e as Error).message}`);
  }
  if (s?.version !== 1 || !Array.isArray(s.regions)) throw new UsageError(`${p} is not a confab cluster state file`);
  return s;
}

export type PartKind = 'gateway' | 'haproxy' | 'nats';

/** Every part of a cluster with its record, in start order: NATS servers, gateways, HAProxies (region by region). */
export function partsOf(s: ClusterState): { kind: PartKind; name: string; region: RegionState; rec: NatsNodeState | GatewayState | HaproxyState }[] {
  return [
    ...s.regions.flatMap((r) => r.nats.map((n) => ({ kind: 'nats' as const, name: n.name, region: r, rec: n }))),
    ...s.regions.flatMap((r) => r.gateways.map((g) => ({ kind: 'gateway' as const, name: g.name, region: r, rec: g }))),
    ...s.regions.map((r) => ({ kind: 'haproxy' as const, name: `haproxy-${r.name}`, region: r, rec: r.haproxy })),
  ];
}

/** Every PID in a state file, in stop order: gateways, HAProxies, NATS servers. */
export function pidsOf(s: ClusterState): { kind: 'gateway' | 'haproxy' | 'nats'; name: string; pid: number }[] {
  const out: { kind: 'gateway' | 'haproxy' | 'nats'; name: string; pid: number }[] = [];
  for (const r of s.regions) for (const g of r.gateways) if (g.pid) out.push({ kind: 'gateway', name: g.name, pid: g.pid });
  for (const r of s.regions) if (r.haproxy.pid) out.push({ kind: 'haproxy', name: `haproxy-${r.name}`, pid: r.haproxy.pid });
  for (const r of s.regions) for (const n of r.nats) if (n.pid) out.push({ kind: 'nats', name: n.name, pid: n.pid });
  return out;
}
