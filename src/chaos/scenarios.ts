/**
 * The chaos scenarios: a topology, which URLs the clients are given, and a
 * fault (with its own recovery, where a supervisor would do it: a killed
 * process is started again, a frozen one continued). Durations of faults are
 * the scenario ("frozen for 15 s"); everything else polls.
 */
import type { ChaosCluster, TopologyOptions } from './cluster.js';
import type { Ledger } from './ledger.js';

export interface Scale {
  name: 'ci' | 'full';
  clients: number;
  rooms: number;
  publishers: number;
  /** Messages per second per publisher. */
  ratePerPublisher: number;
  /** Bound on returning to healthy after the fault ended. */
  healthTimeoutMs: number;
  /** Bound on the settle period (outboxes empty, everything owed delivered) once healthy. */
  settleMs: number;
}

export const SCALES: Record<'ci' | 'full', Scale> = {
  ci: { name: 'ci', clients: 60, rooms: 10, publishers: 10, ratePerPublisher: 2, healthTimeoutMs: 20_000, settleMs: 10_000 },
  full: { name: 'full', clients: 160, rooms: 10, publishers: 20, ratePerPublisher: 2, healthTimeoutMs: 60_000, settleMs: 20_000 },
};

export interface FaultContext {
  cluster: ChaosCluster;
  ledger: Ledger;
  scale: Scale;
  /** Record what was done, with the time since sending started. */
  note(text: string): void;
  /** The fault's own duration (a frozen broker stays frozen this long). */
  hold(ms: number): Promise<void>;
}

/** Which URLs client i is given. */
export type ClientUrls =
  /** Its region's HAProxy only (regions alternate between clients). */
  | 'haproxy'
  /** Its region's HAProxy first, then every gateway of the region directly (failover URLs). */
  | 'haproxy+gateways'
  /** Its region's HAProxy first, then the other regions' HAProxies. */
  | 'haproxy+regions';

export interface Scenario {
  name: string;
  title: string;
  topology: Omit<TopologyOptions, 'log' | 'keepDir'>;
  clientUrls?: ClientUrls;
  /** Steady traffic before the fault. */
  faultAtMs: number;
  /** Keep sending at least this long in all (from the first message). */
  minSendMs: number;
  /** Keep sending this long after the fault (and its recovery action) finished. */
  afterFaultMs: number;
  fault?: (ctx: FaultContext) => Promise<void>;
}

const NATS: Scenario['topology'] = { bus: 'nats', regions: 1, natsPerRegion: 3, gatewaysPerRegion: 3 };
const REDIS: Scenario['topology'] = { bus: 'redis', gatewaysPerRegion: 3 };
/** How long a supervisor takes to start a killed process again. */
const RESTART_AFTER_MS = 2000;
const FREEZE_MS = 15_000;

/** The gateway with the most of our clients on it. */
function busiestGateway(ctx: FaultContext): { name: string; clients: number } {
  const byNode = new Map<string, number>();
  for (const m of ctx.ledger.members) if (m.node) byNode.set(m.node, (byNode.get(m.node) ?? 0) + 1);
  const gws = ctx.cluster.list('gateway').map((g) => ({ name: g.name, clients: byNode.get(g.node ?? '') ?? 0 }));
  gws.sort((a, b) => b.clients - a.clients);
  return gws[0]!;
}

async function killAndRestart(ctx: FaultContext, name: string, why: string): Promise<void> {
  const pid = await ctx.cluster.kill(name);
  ctx.note(`kill -9 ${name} (pid ${pid}${why ? `, ${why}` : ''})`);
  await ctx.hold(RESTART_AFTER_MS);
  const npid = await ctx.cluster.restart(name);
  ctx.note(`${name} restarted (pid ${npid}) and ready`);
}

async function freezeFor(ctx: FaultContext, name: string, why: string): Promise<void> {
  const pid = ctx.cluster.freeze(name);
  ctx.note(`SIGSTOP ${name} (pid ${pid}${why ? `, ${why}` : ''})`);
  await ctx.hold(FREEZE_MS);
  ctx.cluster.thaw(name);
  ctx.note(`SIGCONT ${name} after ${FREEZE_MS / 1000} s`);
}

export const SCENARIOS: Scenario[] = [
  {
    name: 'baseline',
    title: 'no fault',
    topology: NATS,
    faultAtMs: 0,
    minSendMs: 12_000,
    afterFaultMs: 0,
  },
  {
    name: 'rolling-restart',
    title: 'rolling restart of every gateway (drain in HAProxy, SIGTERM, replace)',
    topology: NATS,
    faultAtMs: 3000,
    minSendMs: 12_000,
    afterFaultMs: 3000,
    fault: async (ctx) => {
      ctx.note('roll start');
      await ctx.cluster.roll((e) => {
        if (e.type === 'sigterm' || e.type === 'up') ctx.note(`${e.name}: ${e.type === 'sigterm' ? 'SIGTERM' : 'replacement UP in HAProxy'}`);
      });
      ctx.note('roll done');
    },
  },
  {
    name: 'gateway-kill',
    title: 'kill -9 the busiest gateway; restarted 2 s later',
    topology: NATS,
    faultAtMs: 3000,
    minSendMs: 12_000,
    afterFaultMs: 3000,
    fault: async (ctx) => {
      const g = busiestGateway(ctx);
      await killAndRestart(ctx, g.name, `${g.clients} clients on it`);
    },
  },
  {
    name: 'nats-leader-kill',
    title: 'kill -9 the NATS server leading the history stream (R3); restarted 2 s later',
    topology: NATS,
    faultAtMs: 3000,
    minSendMs: 12_000,
    afterFaultMs: 4000,
    fault: async (ctx) => {
      const leader = await ctx.cluster.streamLeader();
      if (!leader) throw new Error('no NATS server reports a leader for the history stream (/jsz)');
      await killAndRestart(ctx, leader, 'stream leader per /jsz');
      ctx.note(`stream leader now ${(await ctx.cluster.streamLeader()) ?? 'unknown'}`);
    },
  },
  {
    name: 'nats-freeze',
    title: 'SIGSTOP for 15 s the NATS server with the most client connections that does not lead the history stream, then SIGCONT',
    topology: NATS,
    faultAtMs: 2000,
    minSendMs: 12_000,
    afterFaultMs: 3000,
    fault: async (ctx) => {
      const conns = await ctx.cluster.natsConnections();
      const leader = await ctx.cluster.streamLeader();
      const target = Object.entries(conns).filter(([name]) => name !== leader).sort((a, b) => b[1] - a[1])[0]?.[0];
      if (!target) throw new Error(`no NATS server other than the stream leader (${leader ?? 'unknown'}) answered /varz`);
      await freezeFor(ctx, target, `${conns[target]} client connections; stream leader ${leader ?? 'unknown'}`);
    },
  },
  {
    name: 'nats-leader-freeze',
    title: 'SIGSTOP for 15 s the NATS server leading the history stream, then SIGCONT',
    topology: NATS,
    faultAtMs: 2000,
    minSendMs: 12_000,
    afterFaultMs: 3000,
    fault: async (ctx) => {
      const conns = await ctx.cluster.natsConnections();
      const leader = await ctx.cluster.streamLeader();
      if (!leader) throw new Error('no NATS server reports a leader for the history stream (/jsz)');
      await freezeFor(ctx, leader, `stream leader per /jsz, ${conns[leader] ?? '?'} client connections`);
      ctx.note(`stream leader now ${(await ctx.cluster.streamLeader()) ?? 'unknown'}`);
    },
  },
  {
    name: 'nats-freeze-all',
    title: 'SIGSTOP every NATS server for 15 s (the whole broker), then SIGCONT',
    topology: NATS,
    faultAtMs: 2000,
    minSendMs: 12_000,
    afterFaultMs: 3000,
    fault: async (ctx) => {
      const names = ctx.cluster.list('nats').map((p) => p.name);
      for (const n of names) ctx.cluster.freeze(n);
      ctx.note(`SIGSTOP ${names.join(', ')}`);
      await ctx.hold(FREEZE_MS);
      for (const n of names) ctx.cluster.thaw(n);
      ctx.note(`SIGCONT all after ${FREEZE_MS / 1000} s`);
    },
  },
  {
    name: 'redis-freeze',
    title: 'Redis bus + history: SIGSTOP redis-server for 15 s, then SIGCONT',
    topology: REDIS,
    faultAtMs: 2000,
    minSendMs: 12_000,
    afterFaultMs: 3000,
    fault: async (ctx) => freezeFor(ctx, 'redis', ''),
  },
  {
    name: 'haproxy-kill',
    title: 'kill -9 HAProxy (clients know only its URL); restarted 2 s later',
    topology: NATS,
    clientUrls: 'haproxy',
    faultAtMs: 3000,
    minSendMs: 12_000,
    afterFaultMs: 3000,
    fault: async (ctx) => killAndRestart(ctx, ctx.cluster.list('haproxy')[0]!.name, ''),
  },
  {
    name: 'haproxy-kill-failover',
    title: 'kill -9 HAProxy (clients also have every gateway URL); restarted 2 s later',
    topology: NATS,
    clientUrls: 'haproxy+gateways',
    faultAtMs: 3000,
    minSendMs: 12_000,
    afterFaultMs: 3000,
    fault: async (ctx) => killAndRestart(ctx, ctx.cluster.list('haproxy')[0]!.name, ''),
  },
  {
    name: 'region-restart',
    title: '2 regions (3 NATS + 2 gateways + HAProxy each, stream in ord): restart every process of syd; clients also have the other region',
    topology: { bus: 'nats', regions: 2, natsPerRegion: 3, gatewaysPerRegion: 2 },
    clientUrls: 'haproxy+regions',
    faultAtMs: 3000,
    minSendMs: 12_000,
    afterFaultMs: 4000,
    fault: async (ctx) => {
      const c = ctx.cluster;
      const region = c.regions[1]!;
      const gws = c.list('gateway', region).map((p) => p.name);
      const hap = c.list('haproxy', region).map((p) => p.name);
      const nats = c.list('nats', region).map((p) => p.name);
      ctx.note(`SIGTERM ${region}: gateways ${gws.join(', ')}`);
      await Promise.all(gws.map((n) => c.terminate(n)));
      ctx.note(`gateways of ${region} exited; SIGTERM ${[...hap, ...nats].join(', ')}`);
      await Promise.all([...hap, ...nats].map((n) => c.terminate(n, 10_000)));
      ctx.note(`${region} down; starting it again`);
      await Promise.all(nats.map((n) => c.restart(n, { wait: false })));
      for (const n of nats) await c.waitReady(n);
      for (const n of gws) await c.restart(n);
      for (const n of hap) await c.restart(n);
      ctx.note(`${region} back (NATS healthy, gateways ready, HAProxy UP)`);
    },
  },
];

export function scenario(name: string): Scenario {
  const s = SCENARIOS.find((x) => x.name === name);
  if (!s) throw new Error(`no scenario ${name} (have ${SCENARIOS.map((x) => x.name).join(', ')})`);
  return s;
}
