/**
 * The gateway's shared state: config, adapters, the room hub, presence and the
 * one publish path used by WebSocket clients and the HTTP publish API alike.
 */
import type { Logger } from 'pino';
import type { Bus } from '../bus/types.js';
import type { BusTraffic } from '../bus/subject-bus.js';
import type { Config } from '../config/config.js';
import type { AppendInput, AppendResult, History } from '../history/types.js';
import { ConfabError } from '../protocol/codes.js';
import { ALERTS_ROOM, type Member } from '../protocol/frames.js';
import { RoomHub } from './hub.js';
import { GatewayMetrics } from './metrics.js';
import { Presence } from './presence.js';
import { Auth } from '../auth/index.js';
import { UserLimits } from './user-limits.js';
import { textFrame } from './wire.js';

export const VERSION = '0.1.0';
/** Rooms with more local members than this get no join/leave notices (they would cost O(members²)). */
export const PRESENCE_NOTICE_MAX_MEMBERS = 200;

export class Core {
  readonly hub: RoomHub;
  readonly presence: Presence;
  readonly metrics: GatewayMetrics;
  readonly auth: Auth;
  /** Per-user limits: sockets, rooms, rates across sockets and nodes; the node's room cap. */
  readonly users: UserLimits;
  draining = false;
  private inflight = 0;
  private idle: (() => void)[] = [];

  constructor(
    readonly config: Config,
    readonly bus: Bus,
    readonly history: History,
    readonly log: Logger,
    secret: string,
  ) {
    this.auth = new Auth(config, bus, history, log, secret);
    this.metrics = new GatewayMetrics({ node: config.node, region: config.region }, () => this.hub.localRooms().size, true, () => this.hub.budget.bytes, () =>
      'traffic' in bus ? (bus as { traffic: BusTraffic }).traffic : undefined,
    );
    this.hub = new RoomHub({
      node: config.node,
      cacheSize: Math.min(config.roomCacheSize, config.historyLimit), // never answer beyond what history keeps
      cacheBytes: config.cacheBytes,
      recentOnJoin: config.recentOnJoin,
      replayMax: config.replayMax,
      sendBufferBytes: config.sendBufferBytes,
      joinedMembers: (room) => this.joinedMembers(room),
      bus,
      history,
      onDelivered: (n) => (this.metrics.messagesOut += n),
      onWarn: (msg, extra) => log.warn(extra ?? {}, msg),
    });
    this.users = new UserLimits({
      node: config.node,
      maxSocketsPerUser: config.maxSocketsPerUser,
      maxRoomsPerUser: config.maxRoomsPerUser,
      maxRoomsPerNode: config.maxRoomsPerNode,
      rates: config.userRates,
      gossipMs: config.usageGossipMs,
      bus,
      onError: (err, where) => {
        this.metrics.usageReportFailures[where]++;
        log.debug({ err, where }, 'usage report failed');
      },
    });
    this.presence = new Presence({
      node: config.node,
      bus,
      graceMs: config.presenceGraceMs,
      onJoin: (room, user) => this.presenceNotice(room, 'join', user),
      onLeave: (room, user) => this.presenceNotice(room, 'leave', user),
      onError: (err) => log.debug({ err }, 'presence message failed'),
    });
  }

  /** Store a message, deliver it here and fan it out. Resolves once stored (G8) or rejects with a ConfabError. */
  async publish(input: Omit<AppendInput, 'ts'>): Promise<AppendResult> {
    if (this.bus.status !== 'up') throw new ConfabError('bus_unavailable');
    const t0 = process.hrtime.bigint();
    this.inflight++;
    try {
      const res = await this.history.append({ ...input, ts: Date.now() });
      if (res.duplicate && (res.message.text !== input.text || res.message.kind !== input.kind)) {
        // the id was used before for something else: not a resend, and not stored
        throw new ConfabError('duplicate_id_conflict', `message id ${input.id} was already used in this room for a different message`);
      }
      this.metrics.messagesIn++;
      try {
        // answered once the message reached this node's members (so a sender sees its msg before its ack)
        await this.hub.published(res.message);
      } catch (err) {
        // stored but not fanned out: other nodes read it from history at the next message or resume
        this.log.warn({ err, room: input.room, offset: res.message.offset }, 'fan-out failed after store');
      }
      this.metrics.publishLatency.observe(Number(process.hrtime.bigint() - t0) / 1e9);
      return res;
    } catch (err) {
      if (err instanceof ConfabError) throw err;
      throw new ConfabError('store_failed', undefined, { cause: err });
    } finally {
      if (--this.inflight === 0) for (const f of this.idle.splice(0)) f();
    }
  }

  /** Resolves when no publish is in flight. */
  whenIdle(): Promise<void> {
    return this.inflight === 0 ? Promise.resolve() : new Promise((r) => this.idle.push(r));
  }

  private presenceNotice(room: string, event: 'join' | 'leave', user: Member): void {
    if (this.hub.memberCount(room) > PRESENCE_NOTICE_MAX_MEMBERS) return; // large rooms show counts, not a notice per member
    this.hub.broadcast(room, textFrame(JSON.stringify({ t: 'presence', room, event, user })), user.id);
  }

  /**
   * The member list of a `joined` frame. Big rooms (no per-member notices either) get only the count:
   * every join into them would repeat the list, and a partial list would go stale.
   */
  private joinedMembers(room: string): { members: Member[]; count: number } {
    if (room === ALERTS_ROOM) return { members: [], count: 0 };
    const count = this.presence.size(room);
    return { members: count > PRESENCE_NOTICE_MAX_MEMBERS ? [] : this.presence.members(room, PRESENCE_NOTICE_MAX_MEMBERS), count };
  }
}
