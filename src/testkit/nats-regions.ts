/**
 * A NATS super-cluster for tests: several regions (one JetStream cluster each,
 * named after the region), joined by gateways, every gateway link through a WAN
 * proxy (src/procs/wan-proxy.ts) with the given round trip. Ports from the
 * kernel: the proxies bind first, each server listens for gateways on a kernel
 * port and advertises its proxy, and the proxies learn their targets from the
 * servers' /varz once they run; then every server must turn healthy (one
 * JetStream meta group across all regions). `retarget()` after a restart (a
 * restarted server listens for gateways on a new port).
 */
import { startNatsCluster, waitHealthy, type NatsCluster, type NatsServer } from '../procs/nats.js';
import { WanProxy, type WanDirection } from '../procs/wan-proxy.js';

export interface NatsRegion {
  name: string;
  cluster: NatsCluster;
  /** One proxy per server, in the same order: the way other regions reach it. */
  proxies: WanProxy[];
}

export interface NatsRegions {
  regions: NatsRegion[];
  region(name: string): NatsRegion;
  /** Every proxy of every region. */
  readonly proxies: WanProxy[];
  /** Point every proxy at its server's current gateway port (after a restart). */
  retarget(): Promise<void>;
  /** Hold / release every WAN link. */
  hold(): void;
  release(): void;
  stop(): Promise<void>;
}

export interface StartRegionsOptions {
  /** Region names (NATS cluster names), default ord, syd. */
  names?: string[];
  nodesPerRegion?: number;
  /** Round trip added between regions, ms. */
  latencyMs?: number;
  lossPct?: number;
  readyTimeoutMs?: number;
  /** Sees every NATS message crossing a WAN link (subject, direction, bytes, proxy). */
  onMessage?: (subject: string, dir: WanDirection, bytes: number, proxy: string) => void;
}

async function gatewayPort(s: NatsServer): Promise<number> {
  const varz = await s.monitor('/varz');
  const port = (varz.body as { gateway?: { port?: number } }).gateway?.port;
  if (!port) throw new Error(`nats-server ${s.name}: no gateway port in /varz`);
  return port;
}

export async function startNatsRegions(o: StartRegionsOptions = {}): Promise<NatsRegions> {
  const names = o.names ?? ['ord', 'syd'];
  const n = o.nodesPerRegion ?? 1;
  const proxies: WanProxy[][] = [];
  const started: NatsCluster[] = [];
  const all = () => proxies.flat();
  const stop = async () => {
    await Promise.all(started.map((c) => c.stop()));
    await Promise.all(all().map((p) => p.close()));
  };
  try {
    for (const name of names) {
      const row: WanProxy[] = [];
      for (let i = 0; i < n; i++) {
        const label = `wan->${name}-n${i + 1}`;
        row.push(await WanProxy.listen({ latencyMs: o.latencyMs ?? 0, lossPct: o.lossPct ?? 0, name: label, onMessage: o.onMessage ? (s, d, b) => o.onMessage!(s, d, b, label) : undefined }));
      }
      proxies.push(row);
    }
    const remotes = names.map((name, r) => `{ name: ${JSON.stringify(name)}, urls: [${proxies[r]!.map((p) => `"nats://127.0.0.1:${p.port}"`).join(', ')}] }`).join(', ');
    const clusters = await Promise.all(
      names.map((name, r) =>
        startNatsCluster(n, {
          clusterName: name,
          namePrefix: `${name}-`,
          waitHealthy: false,
          readyTimeoutMs: o.readyTimeoutMs ?? 30_000,
          extraConfig: (i) => `gateway { name: ${JSON.stringify(name)}, listen: "127.0.0.1:-1", advertise: "127.0.0.1:${proxies[r]![i]!.port}", gateways: [${remotes}] }`,
        }).then((c) => {
          started.push(c);
          return c;
        }),
      ),
    );
    const regions: NatsRegion[] = names.map((name, r) => ({ name, cluster: clusters[r]!, proxies: proxies[r]! }));
    const retarget = async () => {
      for (const reg of regions) {
        for (let i = 0; i < reg.cluster.servers.length; i++) {
          const s = reg.cluster.servers[i]!;
          if (s.running) reg.proxies[i]!.setTarget(await gatewayPort(s));
        }
      }
    };
    await retarget();
    await Promise.all(clusters.flatMap((c) => c.servers.map((s) => waitHealthy(s, o.readyTimeoutMs ?? 30_000))));
    return {
      regions,
      region: (name) => {
        const r = regions.find((x) => x.name === name);
        if (!r) throw new Error(`no region ${name}`);
        return r;
      },
      get proxies() {
        return all();
      },
      retarget,
      hold: () => all().forEach((p) => p.hold()),
      release: () => all().forEach((p) => p.release()),
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
