/**
 * Home regions and sharded history streams (docs/nats.md, "Home regions and shards").
 *
 * Every room has a home region: the region of the longest CONFAB_ROOM_HOMES prefix
 * its name starts with (by default `<region>-` for every region in
 * CONFAB_HOME_REGIONS: `syd-general` lives in syd), else CONFAB_HOME_DEFAULT. Its
 * history is stored by one of CONFAB_STREAM_SHARDS streams of that region, chosen by
 * a hash of the room name: `<CONFAB_STREAM_NAME>_<region>_<k>`, subjects
 * `<prefix>.hs.<region>.<k>.<room>`, placed in that region's NATS cluster
 * (JetStream placement by cluster), so its leader and every replica are there.
 * The rule is a pure function of the room name and the settings: every gateway
 * in every region finds the same stream with no lookup, and offsets, epoch and
 * idempotency stay per room exactly as with one stream (G1–G3). The settings must be
 * the same on every gateway; changing them moves rooms to other streams (a new epoch
 * for them: clients are told `reset`).
 *
 * Without CONFAB_HOME_REGIONS and with one shard nothing changes: the one stream
 * CONFAB, subjects `<prefix>.hist.<room>`, as before.
 */
import type pino from 'pino';
import { ConfabError } from '../protocol/codes.js';
import type { AppendInput, AppendResult, History, HistoryInspect, ReadResult, RoomInfo } from '../history/types.js';
import type { Subscription } from '@nats-io/transport-node';
import { forwardAppend, serveHomeAppends } from './home-append.js';
import { JetStreamHistory, type JetStreamHistoryOptions } from './history.js';
import type { NatsLink } from './link.js';
import type { StreamSettings } from './options.js';
import type { StreamTarget } from './stream.js';

/** How rooms map to home regions and shards (CONFAB_HOME_REGIONS, CONFAB_ROOM_HOMES, CONFAB_HOME_DEFAULT, CONFAB_STREAM_SHARDS). */
export interface ShardSettings {
  /** Regions (NATS cluster names) that hold history; empty: no placement. */
  regions: string[];
  /** Name prefix -> home region; the longest matching prefix wins. */
  homes: { prefix: string; region: string }[];
  /** Home of a room no prefix matches (one of `regions`; undefined without regions). */
  defaultRegion?: string;
  /** Streams per region (1–64). */
  shards: number;
}

/** True when the deployment uses home regions or several streams (else: the one legacy stream). */
export function isSharded(s: ShardSettings): boolean {
  return s.regions.length > 0 || s.shards > 1;
}

/** 32-bit FNV-1a of the room name's UTF-8 bytes: stable across processes, versions and platforms. */
export function roomHash(room: string): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(room, 'utf8')) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** The room's home region (undefined without regions). */
export function homeRegion(s: ShardSettings, room: string): string | undefined {
  let best: { prefix: string; region: string } | undefined;
  for (const h of s.homes) if (room.startsWith(h.prefix) && (!best || h.prefix.length > best.prefix.length)) best = h;
  return best?.region ?? s.defaultRegion;
}

export function shardOf(s: ShardSettings, room: string): number {
  return s.shards <= 1 ? 0 : roomHash(room) % s.shards;
}

/** Every stream of the deployment, in a stable order (region by region, shard by shard). */
export function shardTargets(prefix: string, base: StreamSettings, s: ShardSettings): StreamTarget[] {
  const regions: (string | undefined)[] = s.regions.length > 0 ? s.regions : [undefined];
  return regions.flatMap((region) => Array.from({ length: s.shards }, (_, k) => shardTarget(prefix, base, region, k)));
}

function shardTarget(prefix: string, base: StreamSettings, region: string | undefined, k: number): StreamTarget {
  const name = region ? `${base.name}_${region}_${k}` : `${base.name}_${k}`;
  return { settings: { ...base, name }, subjectBase: `${prefix}.hs.${region ?? '_'}.${k}`, ...(region ? { cluster: region } : {}) };
}

/** The stream name a room is stored in. */
export function streamOf(base: StreamSettings, s: ShardSettings, room: string): string {
  const region = homeRegion(s, room);
  const k = shardOf(s, room);
  return region ? `${base.name}_${region}_${k}` : `${base.name}_${k}`;
}

/**
 * History over several streams: each room goes to its home region's shard
 * (`streamOf`), served by one JetStreamHistory per stream on the shared connection.
 * Per room everything is that stream's: offsets, `prev`, epoch, duplicate window.
 */
export class ShardedHistory implements History, HistoryInspect {
  readonly kind = 'nats';
  /** This gateway's region when it is a home region: it serves its rooms' forwarded appends and forwards others' (home-append.ts). */
  private region: string | undefined;
  private sub: Subscription | undefined;
  private readonly remoteTails = new Map<string, Promise<unknown>>();
  /** Appends forwarded to another region and answered from there (metrics, tests). */
  forwarded = 0;

  private constructor(
    private readonly link: NatsLink,
    private readonly byName: Map<string, JetStreamHistory>,
    private readonly base: StreamSettings,
    readonly shards: ShardSettings,
  ) {}

  /**
   * Ensure every stream (in parallel) and serve. With `region` among the home regions, this gateway
   * answers appends forwarded to its region and forwards appends to rooms homed elsewhere.
   */
  static async open(link: NatsLink, shards: ShardSettings, opts: Omit<JetStreamHistoryOptions, 'target'> & { region?: string }, log: pino.Logger): Promise<ShardedHistory> {
    const targets = shardTargets(link.settings.prefix, link.settings.stream, shards);
    const opened = await Promise.allSettled(targets.map((target) => JetStreamHistory.open(link, { ...opts, target }, log.child({ stream: target.settings.name }))));
    const failed = opened.find((r) => r.status === 'rejected');
    if (failed) {
      await Promise.all(opened.flatMap((r) => (r.status === 'fulfilled' ? [r.value.close()] : [])));
      throw (failed as PromiseRejectedResult).reason;
    }
    const byName = new Map(opened.map((r, i) => [targets[i]!.settings.name, (r as PromiseFulfilledResult<JetStreamHistory>).value]));
    log.info({ streams: byName.size, regions: shards.regions, shards: shards.shards, default: shards.defaultRegion }, 'history sharded by home region');
    const h = new ShardedHistory(link, byName, link.settings.stream, shards);
    if (opts.region && shards.regions.includes(opts.region)) {
      h.region = opts.region;
      h.sub = serveHomeAppends(link.nc, link.settings.prefix, opts.region, (input) => h.of(input.room).append(input), log);
    }
    return h;
  }

  /** Not one epoch: each room's is its stream's (in every ReadResult, RoomInfo and message). Empty here. */
  get epoch(): string {
    return '';
  }

  /** The stream (history) of a room. */
  of(room: string): JetStreamHistory {
    if (typeof room !== 'string' || room.length === 0 || room.length > 256) throw new ConfabError('bad_room');
    return this.byName.get(streamOf(this.base, this.shards, room))!;
  }

  /** The stream names, in order. */
  get streams(): string[] {
    return [...this.byName.keys()];
  }

  get conflicts(): number {
    let n = 0;
    for (const h of this.byName.values()) n += h.conflicts;
    return n;
  }

  async append(input: AppendInput): Promise<AppendResult> {
    const local = this.of(input.room);
    const home = homeRegion(this.shards, input.room);
    if (!this.region || !home || home === this.region) return await local.append(input);
    return await this.remoteSerial(input.room, async () => {
      const r = await forwardAppend(this.link.nc, this.link.settings.prefix, home, input, this.link.settings.requestTimeoutMs);
      if (r) {
        this.forwarded++;
        return r;
      }
      // nobody in the home region answered in time: append to the stream directly (across the WAN)
      const d = await local.append(input);
      // a forwarded attempt stored although its reply was lost is this very message, not a resend
      const mine = d.duplicate && d.message.ts === input.ts && d.message.text === input.text && d.message.kind === input.kind;
      return mine ? { ...d, duplicate: false } : d;
    });
  }

  /** Forwarded appends of one room, one after another (a sender's order, G9). */
  private remoteSerial<T>(room: string, fn: () => Promise<T>): Promise<T> {
    const before = this.remoteTails.get(room) ?? Promise.resolve();
    const p = before.then(fn, fn);
    const tail = p.catch(() => {});
    this.remoteTails.set(room, tail);
    void tail.then(() => {
      if (this.remoteTails.get(room) === tail) this.remoteTails.delete(room);
    });
    return p;
  }

  async read(room: string, after: number, limit: number): Promise<ReadResult> {
    return await this.of(room).read(room, after, limit);
  }

  async recent(room: string, limit: number): Promise<ReadResult> {
    return await this.of(room).recent(room, limit);
  }

  async info(room: string): Promise<RoomInfo> {
    return await this.of(room).info(room);
  }

  async rooms(): Promise<string[]> {
    const all = await Promise.all([...this.byName.values()].map((h) => h.rooms()));
    return all.flat();
  }

  async close(): Promise<void> {
    if (this.sub) {
      await this.sub.drain().catch(() => {});
      this.sub = undefined;
    }
    await Promise.allSettled([...this.remoteTails.values()]);
    await Promise.all([...this.byName.values()].map((h) => h.close()));
  }
}
