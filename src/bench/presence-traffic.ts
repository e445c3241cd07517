/**
 * Presence traffic on a real NATS bus (issue 15 item 4): G gateways' Presence engines, each on
 * its own NATS connection, share U users (each online and in R rooms of a pool), and the bus
 * bytes per gateway are counted in four phases: filling, idle, churn (users reconnecting to
 * another gateway at a fixed rate) and a newcomer gateway catching up. Counted twice: payload
 * bytes at the Bus interface (a wrapper) and wire bytes per connection from nats-server's /connz.
 * Used by `npm run measure:presence-bus` and by the byte-budget test.
 */
import pino from 'pino';
import { loadConfig } from '../config/config.js';
import type { Bus, BusHandler, BusStatus, BusSubscription } from '../bus/types.js';
import { createNatsBus } from '../nats/index.js';
import { ONLINE, Presence, type PresenceOptions } from '../gateway/presence.js';
import { waitFor } from '../procs/wait.js';

/** Bytes and messages through one gateway's bus on presence subjects. */
export class ByteCountingBus implements Bus {
  inBytes = 0;
  inMsgs = 0;
  outBytes = 0;
  outMsgs = 0;
  /** Largest single payload published or received. */
  maxBytes = 0;
  constructor(readonly inner: Bus) {}
  get kind(): string {
    return this.inner.kind;
  }
  get status(): BusStatus {
    return this.inner.status;
  }
  onStatus(l: (s: BusStatus) => void): () => void {
    return this.inner.onStatus(l);
  }
  publish(subject: string, data: Uint8Array): void {
    this.inner.publish(subject, data);
    this.outBytes += data.byteLength;
    this.outMsgs++;
    this.maxBytes = Math.max(this.maxBytes, data.byteLength);
  }
  subscribe(subject: string, handler: BusHandler): BusSubscription {
    return this.inner.subscribe(subject, (d) => {
      this.inBytes += d.byteLength;
      this.inMsgs++;
      this.maxBytes = Math.max(this.maxBytes, d.byteLength);
      handler(d);
    });
  }
  flush(): Promise<void> {
    return this.inner.flush();
  }
  subscriptionCount(): number {
    return this.inner.subscriptionCount();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
  snapshot(): Counts {
    return { inBytes: this.inBytes, inMsgs: this.inMsgs, outBytes: this.outBytes, outMsgs: this.outMsgs };
  }
}

export interface Counts {
  inBytes: number;
  inMsgs: number;
  outBytes: number;
  outMsgs: number;
}

export interface TrafficOptions {
  natsUrl: string;
  /** GET a nats-server monitoring endpoint (for /connz wire bytes). */
  monitor(path: string): Promise<{ status: number; body: any }>;
  gateways: number;
  users: number;
  roomsPerUser: number;
  roomPool: number;
  idleSec: number;
  /** User reconnects per second (to another gateway) in the churn phase; 0 skips it. */
  reconnectsPerSec: number;
  churnSec: number;
  heartbeatMs: number;
  /** The Presence class to measure (default the product's; the bench can pass an older one). */
  presence?: new (o: PresenceOptions) => Pick<Presence, 'start' | 'stop' | 'add' | 'remove' | 'size'>;
  log?: (line: string) => void;
}

export interface PhaseFigures {
  seconds: number;
  /** Per gateway, mean over the gateways: payload bytes/s in and out, wire bytes/s in and out (connz). */
  inBps: number;
  outBps: number;
  wireInBps: number;
  wireOutBps: number;
  msgsInPerSec: number;
}

export interface TrafficReport {
  gateways: number;
  users: number;
  entries: number;
  fill: { seconds: number; payloadBytesPerGateway: number };
  idle: PhaseFigures;
  /** `cpuUsPerOpPerGateway`: this process's CPU (every gateway's engine and NATS client) per change per gateway. */
  churn?: PhaseFigures & { reconnectsPerSec: number; opsPerSec: number; inBytesPerOp: number; cpuUsPerOpPerGateway: number };
  /** A gateway joining: what it received, and what each other gateway received meanwhile (mean). */
  newcomer: { seconds: number; inBytes: number; inMsgs: number; othersInBytes: number };
  maxMessageBytes: number;
}

type Gw = { name: string; bus: ByteCountingBus; p: Pick<Presence, 'start' | 'stop' | 'add' | 'remove' | 'size'> };

async function wire(o: TrafficOptions): Promise<Map<string, { in: number; out: number }>> {
  const r = await o.monitor('/connz?limit=4096');
  const out = new Map<string, { in: number; out: number }>();
  for (const c of (r.body?.connections ?? []) as { name?: string; in_bytes: number; out_bytes: number }[]) {
    if (c.name?.startsWith('confab-')) out.set(c.name.slice(7), { in: c.in_bytes, out: c.out_bytes });
  }
  return out;
}

export async function measurePresenceTraffic(o: TrafficOptions): Promise<TrafficReport> {
  const log = o.log ?? (() => {});
  const silent = pino({ level: 'silent' });
  const Impl = o.presence ?? Presence;
  const gws: Gw[] = [];
  const tag = Math.random().toString(36).slice(2, 7);
  const open = async (name: string): Promise<Gw> => {
    const env = { NATS_URL: o.natsUrl, CONFAB_SECRET: 'x'.repeat(20), CONFAB_NODE_ID: name, CONFAB_NATS_PREFIX: `pb${tag}` };
    const bus = new ByteCountingBus(await createNatsBus(loadConfig(env), silent, { env }));
    const p = new Impl({ node: name, bus, graceMs: 5000, heartbeatMs: o.heartbeatMs, onJoin: () => {}, onLeave: () => {} });
    p.start();
    return { name, bus, p };
  };
  try {
    for (let g = 0; g < o.gateways; g++) gws.push(await open(`gw${g}-${tag}`));
    const users = Array.from({ length: o.users }, (_, i) => ({ id: `u${i.toString(36).padStart(8, '0')}${tag}x0123456789`, handle: `user-${i}` }));
    const roomsOf = (i: number) => Array.from({ length: o.roomsPerUser }, (_, k) => `room-${(i * 7919 + k * 104_729) % o.roomPool}`);
    const home = users.map((_, i) => i % o.gateways);
    const join = (gw: Gw, i: number) => {
      gw.p.add(ONLINE, users[i]!);
      for (const r of roomsOf(i)) gw.p.add(r, users[i]!);
    };
    const leave = (gw: Gw, i: number) => {
      for (const r of roomsOf(i)) gw.p.remove(r, users[i]!);
      gw.p.remove(ONLINE, users[i]!);
    };

    const t0 = Date.now();
    for (let i = 0; i < users.length; i++) {
      join(gws[home[i]!]!, i);
      if (i % 500 === 499) await new Promise((r) => setImmediate(r)); // let deltas go out as they would
    }
    await waitFor(() => gws.every((g) => g.p.size(ONLINE) === o.users), { timeoutMs: 120_000, what: `every gateway sees ${o.users} users` });
    const fill = { seconds: (Date.now() - t0) / 1000, payloadBytesPerGateway: gws.reduce((s, g) => s + g.bus.inBytes + g.bus.outBytes, 0) / gws.length };
    log(`filled ${o.users} users on ${o.gateways} gateways in ${fill.seconds.toFixed(1)} s`);
    await new Promise((r) => setTimeout(r, o.heartbeatMs * 2)); // settle: any `want` after the fill is answered

    const phase = async (seconds: number, during?: (stop: () => boolean) => Promise<void>): Promise<PhaseFigures> => {
      const c0 = gws.map((g) => g.bus.snapshot());
      const w0 = await wire(o);
      const s0 = Date.now();
      let done = false;
      const work = during?.(() => done);
      await new Promise((r) => setTimeout(r, seconds * 1000));
      done = true;
      await work;
      const secs = (Date.now() - s0) / 1000;
      const w1 = await wire(o);
      const c1 = gws.map((g) => g.bus.snapshot());
      const mean = (f: (i: number) => number) => gws.reduce((s, _, i) => s + f(i), 0) / gws.length / secs;
      const wd = (i: number, k: 'in' | 'out') => (w1.get(gws[i]!.name)?.[k] ?? 0) - (w0.get(gws[i]!.name)?.[k] ?? 0);
      return {
        seconds: secs,
        inBps: mean((i) => c1[i]!.inBytes - c0[i]!.inBytes),
        outBps: mean((i) => c1[i]!.outBytes - c0[i]!.outBytes),
        // the client's out is the server's in: connz counts from the server's side
        wireInBps: mean((i) => wd(i, 'out')),
        wireOutBps: mean((i) => wd(i, 'in')),
        msgsInPerSec: mean((i) => c1[i]!.inMsgs - c0[i]!.inMsgs),
      };
    };

    const idle = await phase(o.idleSec);
    log(`idle: ${idle.inBps.toFixed(0)} B/s in, ${idle.outBps.toFixed(0)} B/s out per gateway (payload)`);

    let churn: TrafficReport['churn'];
    if (o.reconnectsPerSec > 0 && o.gateways > 1) {
      let moved = 0;
      const cpu0 = process.cpuUsage();
      const figures = await phase(o.churnSec, async (stop) => {
        const tickMs = 100;
        const per = o.reconnectsPerSec * (tickMs / 1000);
        let due = 0;
        let i = 0;
        while (!stop()) {
          due += per;
          for (; due >= 1; due--, moved++, i = (i + 7) % users.length) {
            const from = gws[home[i]!]!;
            home[i] = (home[i]! + 1) % gws.length;
            leave(from, i);
            join(gws[home[i]!]!, i);
          }
          await new Promise((r) => setTimeout(r, tickMs));
        }
      });
      const cpu = process.cpuUsage(cpu0);
      const opsPerSec = (moved * 2 * (o.roomsPerUser + 1)) / figures.seconds;
      const cpuUsPerOpPerGateway = (cpu.user + cpu.system) / (moved * 2 * (o.roomsPerUser + 1)) / gws.length;
      churn = { ...figures, reconnectsPerSec: moved / figures.seconds, opsPerSec, inBytesPerOp: (figures.inBps - idle.inBps) / opsPerSec, cpuUsPerOpPerGateway };
      log(`churn: ${churn.reconnectsPerSec.toFixed(0)} reconnects/s = ${opsPerSec.toFixed(0)} presence ops/s: ${figures.inBps.toFixed(0)} B/s in per gateway, ${churn.inBytesPerOp.toFixed(1)} B per op, ${cpuUsPerOpPerGateway.toFixed(1)} µs CPU per op per gateway`);
    }

    const before = gws.map((g) => g.bus.inBytes);
    const n0 = Date.now();
    const nc = await open(`newcomer-${tag}`);
    gws.push(nc);
    await waitFor(() => nc.p.size(ONLINE) === o.users, { timeoutMs: 60_000, what: `the newcomer sees ${o.users} users (has ${nc.p.size(ONLINE)})` });
    await new Promise((r) => setTimeout(r, 200)); // what others receive because of the newcomer (legacy: every table, broadcast)
    const othersInBytes = before.reduce((s, b, i) => s + gws[i]!.bus.inBytes - b, 0) / before.length;
    const newcomer = { seconds: (Date.now() - n0) / 1000, inBytes: nc.bus.inBytes, inMsgs: nc.bus.inMsgs, othersInBytes };
    log(`newcomer caught up in ${newcomer.seconds.toFixed(2)} s, ${newcomer.inBytes} bytes in ${newcomer.inMsgs} messages`);
    return {
      gateways: o.gateways,
      users: o.users,
      entries: o.users * (o.roomsPerUser + 1),
      fill,
      idle,
      ...(churn ? { churn } : {}),
      newcomer,
      maxMessageBytes: Math.max(...gws.map((g) => g.bus.maxBytes)),
    };
  } finally {
    for (const g of gws) g.p.stop();
    for (const g of gws) await g.bus.close().catch(() => {});
  }
}
