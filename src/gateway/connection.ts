/**
 * One authenticated connection, over a WebSocket or the HTTP fallback (transport.ts): decodes and
 * checks client frames, applies the per-connection limits, and writes frames with a send-buffer cap
 * (a slow consumer is closed, never allowed to grow memory). Rooms are the room engine's (hub.ts, room.ts): a join, its
 * replay and live delivery, and history pages are answered there; this class is the engine's
 * subscriber (write, backlog, drained).
 */
import type { RawData } from 'ws';
import { serial } from '../history/common.js';
import { ConfabError, ErrorCodes, type ErrorCode } from '../protocol/codes.js';
import { decodeClientFrame } from '../protocol/decode.js';
import { ALERTS_ROOM, HISTORY_PAGE_DEFAULT, PROTOCOL_VERSION, ROOM_RE, type ChatMessage, type ClientFrame, type Member, type ServerFrame } from '../protocol/frames.js';
import { VERSION, type Core } from './core.js';
import type { RoomMember } from './hub.js';
import { TokenBucket } from './limits.js';
import { REPLAY_DRAIN_WAIT_MS } from './room-replay.js';
import { textFrame } from './wire.js';
import type { FrameTransport } from './transport.js';
import { ONLINE } from './presence.js';
import type { SocketSession } from '../auth/socket.js';

/** How long a closed peer may take to read up to the close frame and answer it before the socket is cut. */
const CLOSE_GRACE_MS: Partial<Record<ErrorCode, number>> = { slow_consumer: 10_000, ping_timeout: 2_000 };
/** Failures after which the message was not stored and will be resent: later pubs are fenced until it is. */
const FENCING = new Set<ErrorCode>(['bus_unavailable', 'store_failed', 'internal']);

/** A room joined on this connection: the value identifies one join (a later join of the room replaces it). */
export type JoinToken = object;

type Frame<T extends ClientFrame['t']> = Extract<ClientFrame, { t: T }>;

export class Connection implements RoomMember {
  /** Rooms joined (or being joined) on this connection. */
  readonly rooms = new Map<string, JoinToken>();
  alive = true;
  private readonly bucket: TokenBucket;
  /** Frames refused by the rate limit since the connection last kept to the rate for a whole second. */
  private strikes = 0;
  private lastRefusedAt = 0;
  /** Per room, the end of this connection's chain of appends (one at a time per room, in arrival order). */
  private readonly pubTails = new Map<string, Promise<unknown>>();
  /**
   * Per room, the id of a message whose append failed without storing it: every later pub of this
   * connection to that room is refused (`fenced`) until that message is sent again, so nothing the
   * sender sent after it is stored ahead of it (G9).
   */
  private readonly fences = new Map<string, { id: string; seq: number }>();
  /** `room\nid` of this connection's appends in progress (to recognise its own echo). */
  private readonly ownInFlight = new Set<string>();
  /** Arrival number of the last `pub`/`alert`: a fence holds back only what arrived after the failed message. */
  private pubSeq = 0;
  private closed = false;
  private leaving = false;
  /** The socket's session (expiry, renewal, permissions; src/auth/socket.ts), set before start(). */
  auth?: SocketSession;

  constructor(
    private readonly core: Core,
    readonly transport: FrameTransport,
    readonly user: Member,
    readonly ip: string,
    private readonly onGone: (c: Connection) => void,
    /** False (`/ws?echo=0`): the sender is not sent its own live messages; its `ack` carries what it needs. */
    private readonly echo = true,
  ) {
    const c = core.config;
    this.bucket = new TokenBucket(c.ratePerSec, c.rateBurst);
  }

  start(): void {
    const c = this.core.config;
    this.transport.bind({
      message: (data, isBinary) => this.onMessage(data, isBinary),
      alive: () => (this.alive = true),
      closed: () => this.cleanup(),
      error: (err) => this.core.log.debug({ err, user: this.user.id, transport: this.transport.kind }, 'socket error'),
    });
    this.core.presence.add(ONLINE, this.user);
    this.send({
      t: 'welcome',
      v: PROTOCOL_VERSION,
      node: c.node,
      region: c.region,
      version: VERSION,
      user: this.user,
      rooms: this.auth ? c.rooms.filter((r) => this.auth!.canJoin(r)) : c.rooms,
      perms: this.auth?.perms ?? { alert: true },
      exp: this.auth?.exp ?? 0,
      limits: {
        maxFrameBytes: c.maxFrameBytes,
        maxTextChars: c.maxTextChars,
        maxRooms: c.maxRooms,
        ratePerSec: c.ratePerSec,
        rateBurst: c.rateBurst,
        floodCloseAfter: c.floodCloseAfter,
        pingIntervalMs: c.pingIntervalMs,
      },
    });
    this.auth?.start();
  }

  // ---- RoomMember (the room engine's view of this connection)

  get gone(): boolean {
    return this.closed;
  }

  write(frame: Buffer): void {
    this.sendFramed(frame);
  }

  backlog(): number {
    return this.transport.bufferedAmount + this.transport.queuedBytes;
  }

  /** Resolves once the socket holds at most `bytes` (what is queued for this tick is written first), or at `deadline`. */
  async drained(bytes: number, deadline: number): Promise<void> {
    await this.transport.drained(bytes, deadline, () => this.closed);
  }

  /** With echo off, this connection's own message is answered by its `ack` alone (which carries prev and ts). */
  ownEcho(room: string, msg: ChatMessage): boolean {
    return !this.echo && msg.from.user === this.user.id && this.ownInFlight.has(`${room}\n${msg.id}`);
  }

  /** The room engine could not re-sync a room (after a history reset): it is not joined any more. */
  lost(room: string, err: ConfabError): void {
    if (this.closed || !this.rooms.has(room)) return;
    this.rooms.delete(room);
    this.core.hub.leave(room, this);
    if (room !== ALERTS_ROOM) this.core.presence.remove(room, this.user, false);
    if (room !== ALERTS_ROOM) this.core.users.leaveRoom(this.user.id, room);
    this.failed(err, { room });
  }

  // ---- output

  send(frame: ServerFrame): void {
    this.sendRaw(JSON.stringify(frame));
  }

  sendRaw(data: string): void {
    this.sendFramed(textFrame(data));
  }

  /**
   * Queue a complete frame (room frames are shared by every member) for this tick's write.
   * A connection whose socket backlog passes the cap is a slow consumer: closed, never buffered further.
   */
  sendFramed(frame: Buffer): void {
    if (this.closed) return;
    if (this.transport.bufferedAmount > this.core.config.sendBufferBytes) {
      this.core.metrics.sendBufferDrops++;
      this.close('slow_consumer');
      return;
    }
    this.transport.push(frame);
  }

  sendError(code: ErrorCode, message?: string, extra: { id?: string; room?: string } = {}): void {
    this.core.metrics.errors.inc({ code });
    this.send({ t: 'error', code, message: message ?? ErrorCodes[code].message, retry: ErrorCodes[code].retry, ...extra });
  }

  /** Close with a code from the table; `reason` defaults to the code name. */
  close(code: ErrorCode, reason?: object): void {
    if (this.closed) return;
    const closeCode = ErrorCodes[code].close ?? 1011; // every closing code has its own; 1011 = internal error
    if (code === 'slow_consumer') this.transport.drop();
    else this.transport.flush(); // what was queued goes out before the close frame
    this.core.metrics.closes.inc({ code });
    const text = JSON.stringify({ code, ...reason });
    this.transport.close(closeCode, text.length <= 120 ? text : code, CLOSE_GRACE_MS[code] ?? 5000);
    this.cleanup();
  }

  /** Drain: finish in-flight publishes of this connection, then ask it to move. */
  async drainClose(retryMs: number): Promise<void> {
    this.leaving = true;
    await this.publishesDone();
    this.close('draining', { retryMs });
  }

  terminate(): void {
    this.transport.terminate();
    this.cleanup();
  }

  // ---- input

  private onMessage(data: RawData | string, isBinary: boolean): void {
    this.alive = true;
    if (this.closed) return;
    const allowed = this.bucket.take();
    const now = Date.now();
    if (allowed && now - this.lastRefusedAt > 1000) this.strikes = 0; // a whole second within the rate forgives
    if (!allowed) {
      this.lastRefusedAt = now;
      if (++this.strikes >= this.core.config.floodCloseAfter) return this.close('flood');
    }
    if (isBinary) return this.sendError('bad_frame', 'binary frames are not part of confab.v1');
    const text = typeof data === 'string' ? data : Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.from(data).toString('utf8');
    const d = decodeClientFrame(text);
    if (!d.ok) return this.sendError(d.code, d.message, d.id ? { id: d.id } : {});
    // over the rate: frames that change state or cost work are refused (and answered); ping, leave and rooms are
    // cheap and their answers keep a client whole (a lost pong would drop a healthy socket), so they are served
    if (!allowed && d.frame.t !== 'ping' && d.frame.t !== 'leave' && d.frame.t !== 'rooms') return this.rateLimited(d.frame);
    if (this.leaving && d.frame.t !== 'ping') return this.sendError('bus_unavailable', 'node is draining; reconnect', 'id' in d.frame ? { id: d.frame.id } : {});
    const f = d.frame;
    // the user's own rates, shared by its sockets here and debited by what other nodes report (user-limits.ts)
    if ((f.t === 'pub' || f.t === 'alert' || f.t === 'typing') && !this.core.users.take(this.user.id, f.t === 'pub' ? 'msg' : f.t)) return this.rateLimited(f);
    switch (f.t) {
      case 'join':
        return void this.join(f).catch((err) => this.failed(err, { room: f.room }));
      case 'leave':
        return this.leave(f.room);
      case 'pub':
        return this.pub(f);
      case 'alert': {
        // the rate was taken above (the user's, across sockets and nodes); here only the grant
        if (this.auth?.alertRefusal()) return this.sendError('forbidden', 'this session may not send alerts', { id: f.id, room: ALERTS_ROOM });
        return this.publish({ room: ALERTS_ROOM, id: f.id, kind: 'alert', text: f.text });
      }
      case 'auth':
        if (!this.auth) return this.sendError('unauthorized', 'this socket cannot renew its session');
        return this.auth.onAuth(f.token);
      case 'typing':
        return this.typing(f.room);
      case 'ping':
        return this.send({ t: 'pong' });
      case 'rooms':
        return this.send({ t: 'rooms', rooms: this.roomList() });
      case 'history':
        return this.history(f);
    }
  }

  /** History answers (and refusals) of this connection, one at a time, in request order. */
  private historyTail: Promise<void> = Promise.resolve();

  private inHistoryOrder(fn: () => Promise<void> | void): void {
    this.historyTail = this.historyTail.then(fn).catch((err: unknown) => this.core.log.error({ err, user: this.user.id }, 'answering a history request failed'));
  }

  /** A page of older messages of a joined room, after the client read what it was sent (bounded wait). */
  private history(f: Frame<'history'>): void {
    this.inHistoryOrder(async () => {
      if (this.closed) return;
      if (!this.rooms.has(f.room)) return this.sendError('not_joined', undefined, { room: f.room });
      const high = this.core.config.sendBufferBytes / 2;
      if (this.backlog() > high) await this.drained(high, Date.now() + REPLAY_DRAIN_WAIT_MS);
      try {
        const text = await this.core.hub.olderPage(f.room, f.before, f.limit ?? HISTORY_PAGE_DEFAULT, high);
        if (!this.closed) this.sendRaw(text);
      } catch (err) {
        this.failed(err instanceof ConfabError ? err : new ConfabError('store_failed', 'history read failed; ask again', { cause: err }), { room: f.room });
      }
    });
  }

  /**
   * A frame over the rate is dropped, but answered: `rate_limited` naming its `id` and/or `room`, so
   * the sender knows exactly what to send again. A dropped `pub`/`alert` fences its room like a failed
   * append (nothing sent after it is stored ahead of it). Frames that ask for nothing (`typing`) are dropped silently.
   */
  private rateLimited(f: ClientFrame): void {
    const extra: { id?: string; room?: string } = {};
    if ('id' in f) extra.id = f.id;
    if (f.t === 'alert') extra.room = ALERTS_ROOM;
    else if ('room' in f) extra.room = f.room;
    // fence only what would have been appended (a valid pub in a joined room, a valid alert): a frame that
    // fails validation when resent must not leave its room fenced for good
    const appendable = (f.t === 'alert' || (f.t === 'pub' && f.room !== ALERTS_ROOM && this.rooms.has(f.room))) && this.textError(f.text) === undefined;
    if (appendable && extra.id !== undefined && extra.room !== undefined && !this.fences.has(extra.room)) this.fences.set(extra.room, { id: extra.id, seq: ++this.pubSeq });
    if (f.t === 'typing') {
      this.core.metrics.errors.inc({ code: 'rate_limited' });
      return;
    }
    if (f.t === 'history') return this.inHistoryOrder(() => this.sendError('rate_limited', undefined, extra)); // answers of a room keep request order
    this.sendError('rate_limited', undefined, extra);
  }

  private failed(err: unknown, extra: { id?: string; room?: string }): void {
    if (err instanceof ConfabError) return this.sendError(err.code, err.message, extra);
    this.core.log.error({ err, user: this.user.id }, 'unexpected error handling a frame');
    this.sendError('internal', undefined, extra);
  }

  private roomList(): { name: string; members: number }[] {
    const counts = this.core.presence.roomCounts();
    const names = new Set([...this.core.config.rooms, ...counts.keys()]);
    // only rooms this session may join are listed (private rooms without a grant stay unseen)
    return [...names].filter((n) => !this.auth || this.auth.canJoin(n)).sort().map((name) => ({ name, members: counts.get(name) ?? 0 }));
  }

  private async join(f: Frame<'join'>): Promise<void> {
    const { room } = f;
    const alerts = room === ALERTS_ROOM;
    if (!alerts && !ROOM_RE.test(room)) return this.sendError('bad_room', `room names match ${ROOM_RE}`, { room });
    if (!alerts && this.auth && !this.auth.canJoin(room)) return this.sendError('forbidden', 'this session may not join that room', { room });
    const joinedCount = this.rooms.size - (this.rooms.has(ALERTS_ROOM) ? 1 : 0);
    if (!alerts && !this.rooms.has(room) && joinedCount >= this.core.config.maxRooms) return this.sendError('too_many_rooms', undefined, { room });
    const wasMember = this.rooms.has(room);
    const overUser = alerts || wasMember ? undefined : this.core.users.joinRoom(this.user.id, room); // released with the presence entry
    if (overUser) return this.sendError(overUser.code, overUser.message, { room });
    const token: JoinToken = {}; // a second join re-syncs the room
    this.rooms.set(room, token);
    // present from the start of the join (so `joined.members` includes the joiner): a user whose join is being
    // retried while history is briefly unavailable is not shown leaving (a failed join leaves after the grace)
    if (!alerts && !wasMember) this.core.presence.add(room, this.user);
    try {
      await this.core.hub.join(room, this, f.since);
    } catch (err) {
      // the room is not joined after all, rather than left silent with live messages piling up behind a replay:
      // the client joins again (retry class later) from what it has
      if (this.rooms.get(room) === token) {
        this.rooms.delete(room);
        this.core.hub.leave(room, this);
        if (!alerts) this.core.presence.remove(room, this.user, false);
        if (!alerts) this.core.users.leaveRoom(this.user.id, room);
      }
      throw err;
    }
  }

  private leave(room: string): void {
    if (!this.rooms.delete(room)) return this.sendError('not_joined', undefined, { room });
    this.fences.delete(room); // the failed message's room is left: it will not be resent
    this.core.hub.leave(room, this);
    if (room !== ALERTS_ROOM) this.core.presence.remove(room, this.user, true);
    if (room !== ALERTS_ROOM) this.core.users.leaveRoom(this.user.id, room);
    this.send({ t: 'left', room });
  }

  private pub(f: Frame<'pub'>): void {
    if (f.room === ALERTS_ROOM) return this.sendError('forbidden_room', 'send alerts with the alert frame', { id: f.id, room: f.room });
    if (!this.rooms.has(f.room)) return this.sendError('not_joined', undefined, { id: f.id, room: f.room });
    if (this.auth && !this.auth.canPublish(f.room)) return this.sendError('forbidden', 'this session may read that room, not write in it', { id: f.id, room: f.room });
    this.publish({ room: f.room, id: f.id, kind: 'msg', text: f.text });
  }

  /** Why a message text is refused, if it is. */
  private textError(text: string): { code: ErrorCode; message: string } | undefined {
    if (text.length > this.core.config.maxTextChars) return { code: 'text_too_long', message: `at most ${this.core.config.maxTextChars} characters` };
    if (text.trim() === '') return { code: 'bad_frame', message: 'text is empty' };
    return undefined;
  }

  private publish(p: { room: string; id: string; kind: 'msg' | 'alert'; text: string }): void {
    const extra = { id: p.id, room: p.room };
    const bad = this.textError(p.text);
    if (bad) return this.sendError(bad.code, bad.message, extra);
    const fence = this.fences.get(p.room);
    if (fence !== undefined) {
      if (p.id !== fence.id) return this.refuseFenced(p, fence.id);
      this.fences.delete(p.room); // the failed message came back: the room's order is whole again
    }
    // one append at a time per room and connection: a failed append can then never be overtaken by a
    // later one of the same sender; different rooms proceed side by side. Drain waits for every chain.
    const seq = ++this.pubSeq;
    const member = this.rooms.get(p.room); // undefined for alerts
    serial(this.pubTails, p.room, () => this.appendOne(p, seq, member)).catch((err: unknown) => this.core.log.error({ err, user: this.user.id }, 'answering a publish failed'));
  }

  /** Store one message and answer it with `ack` or a typed error; never rejects. */
  private async appendOne(p: { room: string; id: string; kind: 'msg' | 'alert'; text: string }, seq: number, member: JoinToken | undefined): Promise<void> {
    const extra = { id: p.id, room: p.room };
    // a message of this room that arrived before this one failed meanwhile: refuse this one too (the client resends both, in order)
    const fence = this.fences.get(p.room);
    if (fence !== undefined && fence.seq < seq) return this.refuseFenced(p, fence.id);
    const key = `${p.room}\n${p.id}`;
    if (!this.echo) this.ownInFlight.add(key);
    try {
      const from = { user: this.user.id, handle: this.user.handle, node: this.core.config.node, region: this.core.config.region };
      const res = await this.core.publish({ ...p, from });
      const m = res.message;
      this.send({ t: 'ack', id: p.id, room: p.room, offset: m.offset, prev: m.prev, epoch: m.epoch, ts: m.ts, dup: res.duplicate });
    } catch (err) {
      // fence the room, unless the client left it meanwhile (it drops the message then: nothing would lift the fence)
      const stillIn = p.room === ALERTS_ROOM || (member !== undefined && this.rooms.get(p.room) === member);
      if (stillIn && (!(err instanceof ConfabError) || FENCING.has(err.code))) {
        const fence = this.fences.get(p.room);
        if (fence === undefined || fence.seq > seq) this.fences.set(p.room, { id: p.id, seq }); // the earliest failure is resent first
      }
      this.failed(err, extra);
    } finally {
      this.ownInFlight.delete(key);
    }
  }

  private refuseFenced(p: { room: string; id: string }, failedId: string): void {
    this.sendError('fenced', `message ${failedId} failed earlier in this room on this connection; resend it first`, { id: p.id, room: p.room });
  }

  /** Resolves when every append issued on this connection has been answered. */
  private async publishesDone(): Promise<void> {
    while (this.pubTails.size > 0) await Promise.all(this.pubTails.values());
  }

  private typing(room: string): void {
    if (room === ALERTS_ROOM || !this.rooms.has(room)) return this.sendError('not_joined', undefined, { room });
    try {
      this.core.hub.typing(room, this.user);
    } catch {
      // typing is ephemeral: dropped while the bus is down
    }
  }

  private cleanup(): void {
    if (this.closed) return;
    this.closed = true;
    this.auth?.stop();
    this.transport.drop();
    for (const room of this.rooms.keys()) {
      this.core.hub.leave(room, this);
      if (room !== ALERTS_ROOM) this.core.presence.remove(room, this.user, false);
      if (room !== ALERTS_ROOM) this.core.users.leaveRoom(this.user.id, room);
    }
    this.rooms.clear();
    this.core.presence.remove(ONLINE, this.user, false);
    this.onGone(this);
  }
}
