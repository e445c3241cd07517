/**
 * What a conformance check gets: the transport of the run's sockets (WebSocket or the HTTP fallback), the endpoints, fresh names (handles, rooms, ids unique to this
 * run, so a run never meets another run's data or a real user's), sessions and sockets that are
 * closed when the check ends, and the limits the server announced in its first `welcome`.
 */
import { randomBytes } from 'node:crypto';
import { CheckFailure, createSession, expect, Probe, show, Skip, type Endpoint, type Frame, type FrameOf, type Limits, type ProbeOptions, type ProbeTransport, type Session } from './probe.js';

export { Skip };

export interface RunTotals {
  frames: number;
  invalid: number;
}

export class CheckContext {
  /** Set by the `ws.welcome` check: the first welcome this run received. */
  welcome?: FrameOf<'welcome'>;
  /** What one check saw that a later one judges. */
  seen: { tooLargeReason?: string } = {};
  /** Sockets of the check running now (closed and checked for schema violations after it). */
  probes: Probe[] = [];
  private n = 0;

  constructor(
    readonly ep: Endpoint,
    readonly peer: Endpoint | undefined,
    readonly runId: string,
    readonly opts: { alerts: boolean; timeoutMs: number; transport?: ProbeTransport },
    readonly totals: RunTotals,
  ) {}

  static newRunId(): string {
    return randomBytes(4).readUInt32BE(0).toString(36).padStart(6, '0').slice(-6);
  }

  /** The announced limits (needs `ws.welcome`). */
  get limits(): Limits {
    if (!this.welcome) throw new Skip('no welcome frame was received (ws.welcome)');
    return this.welcome.limits;
  }

  /** A handle no one else has: `cf` + run id + a counter (HANDLE_RE allows 24 characters). */
  handle(): string {
    return `cf${this.runId}u${++this.n}`;
  }
  /** A room name no one else uses (ROOM_RE allows 32 characters). */
  room(tag: string): string {
    return `cf-${this.runId}-${tag}-${++this.n}`.slice(0, 32);
  }
  /** A message id unique to this run. */
  id(tag = 'm'): string {
    return `cf-${this.runId}-${tag}-${++this.n}`;
  }

  session(ep: Endpoint = this.ep, handle = this.handle()): Promise<Session> {
    return createSession(ep, handle);
  }

  /** Open a socket for `session` on `ep` and wait for its welcome (the first frame). */
  async connect(session: Session, opts: ProbeOptions & { ep?: Endpoint } = {}): Promise<{ p: Probe; welcome: FrameOf<'welcome'> }> {
    const ep = opts.ep ?? this.ep;
    const p = await Probe.open(ep.ws(), session.token, { timeoutMs: this.opts.timeoutMs, transport: this.opts.transport ?? 'websocket', ...opts }, (ok) => {
      this.totals.frames++;
      if (!ok) this.totals.invalid++;
    });
    this.probes.push(p);
    const welcome = await p.welcome();
    return { p, welcome };
  }

  /** A new user with one socket. */
  async user(name: string, ep: Endpoint = this.ep): Promise<{ p: Probe; s: Session; welcome: FrameOf<'welcome'> }> {
    const s = await this.session(ep);
    const { p, welcome } = await this.connect(s, { ep, name });
    return { p, s, welcome };
  }

  /** Join `room` (with `since` when given); resolves with the `joined` frame and its index. */
  async join(p: Probe, room: string, since?: { epoch: string; offset: number }): Promise<{ joined: FrameOf<'joined'>; at: number }> {
    const from = p.frames.length;
    await p.send(since ? { t: 'join', room, since } : { t: 'join', room });
    const answer = await p.find('joined', (f) => f.room === room, `joined for ${room}`, from).catch(async (e: unknown) => {
      const err = p.frames.slice(from).find((f): f is FrameOf<'error'> => f.t === 'error' && f.room === room);
      throw err ? new CheckFailure(`${p.name}: join ${room} answered ${show(err)}`) : e;
    });
    return { joined: answer, at: p.indexOf(answer) };
  }

  /** Publish and expect an `ack` (not `dup`); resolves with the ack and the sender's own `msg`. */
  async pub(p: Probe, room: string, text: string, id = this.id()): Promise<{ ack: FrameOf<'ack'>; msg: FrameOf<'msg'> }> {
    const from = p.frames.length;
    await p.send({ t: 'pub', id, room, text });
    const a = await p.answer(id, from);
    expect(a.t === 'ack', `${p.name}: pub ${id} to ${room}: expected ack, got ${show(a)}`);
    expect(a.dup === false, `${p.name}: pub ${id} (a new id): expected dup false, got ${show(a)}`);
    const msg = p.msgs(room, from).find((m) => m.id === id);
    expect(msg !== undefined, `${p.name}: pub ${id}: acked, but the sender (a member of ${room}) received no msg with that id before the ack`);
    return { ack: a, msg };
  }

  /** The next `error` frame at or after `from`. */
  nextError(p: Probe, from: number, what: string): Promise<FrameOf<'error'>> {
    return p.find('error', () => true, what, from);
  }

  /** Close this check's sockets; returns the schema violations they saw. */
  async closeProbes(): Promise<string[]> {
    const probes = this.probes;
    this.probes = [];
    await Promise.all(probes.map((p) => p.closeAndWait(2_000)));
    return probes.flatMap((p) => p.violations);
  }
}

/** `msg` ids in order. */
export function ids(msgs: readonly Frame[]): string[] {
  return msgs.map((m) => (m.t === 'msg' ? m.id : `(${m.t})`));
}

/** Every msg's `prev` is the previous one's `offset`, starting after `after`; returns a problem or undefined. */
export function chainProblem(msgs: readonly FrameOf<'msg'>[], after: number): string | undefined {
  let last = after;
  for (const m of msgs) {
    if (m.prev !== last) return `msg ${m.id} has prev ${m.prev}, expected ${last} (the previous message's offset)`;
    if (!(m.offset > m.prev)) return `msg ${m.id} has offset ${m.offset}, not greater than its prev ${m.prev}`;
    last = m.offset;
  }
  return undefined;
}
