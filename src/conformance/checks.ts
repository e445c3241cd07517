/**
 * The conformance checks: each one verifies a documented behaviour of docs/protocol.md (or of
 * the README's HTTP endpoint table) against a running deployment, using only what the docs
 * describe. Every check can fail; a check that cannot run against this deployment (a limit too
 * large to probe politely, no peer URL, alerts not allowed) is skipped with the reason.
 *
 * Checks stay inside the announced limits (`welcome.limits`): sockets are paced below the rate,
 * and the one check that exceeds it (rate.burst) stops well short of `floodCloseAfter`.
 */
import { ALERTS_ROOM, SUBPROTOCOL } from '../protocol/constants.js';
import { chainProblem, ids, Skip, type CheckContext } from './context.js';
import { createSession, expect, request, show, tryUpgrade, type Endpoint, type FrameOf, type Probe } from './probe.js';

export interface Check {
  id: string;
  name: string;
  /** Where the behaviour is documented. */
  section: string;
  /** Checks that must have passed first (otherwise this one is skipped). */
  requires?: string[];
  run(ctx: CheckContext): Promise<void>;
}

const P = 'protocol.md';
const LIMIT_KEYS = ['maxFrameBytes', 'maxTextChars', 'maxRooms', 'ratePerSec', 'rateBurst', 'floodCloseAfter', 'pingIntervalMs'] as const;
/** The largest limit a check will probe (frames built, rooms joined, pubs sent): beyond, it is skipped. */
const MAX_PROBED_FRAME_BYTES = 8 * 1024 * 1024;
const MAX_PROBED_ROOMS = 200;
const MAX_BURST = 1000;

type ErrorFrame = FrameOf<'error'>;

function expectError(e: ErrorFrame, code: string, want: { id?: string; room?: string }, what: string): void {
  expect(e.code === code, `${what}: expected error ${code}, got ${show(e)}`);
  if (want.id !== undefined) expect(e.id === want.id, `${what}: the ${code} error should carry id ${JSON.stringify(want.id)}, got ${show(e)}`);
  if (want.room !== undefined) expect(e.room === want.room, `${what}: the ${code} error should carry room ${JSON.stringify(want.room)}, got ${show(e)}`);
}

/** Send a frame and expect the next error frame to be `code` carrying `want`. */
async function sendExpectError(ctx: CheckContext, p: Probe, frame: object | string | Buffer, code: string, want: { id?: string; room?: string }, what: string, binary = false): Promise<void> {
  const from = p.frames.length;
  if (binary) await p.sendUnpaced(frame, { binary: true });
  else await p.send(frame);
  const e = await ctx.nextError(p, from, `error ${code} for ${what}`);
  expectError(e, code, want, what);
}

async function jsonObject(ep: Endpoint, path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const a = await request(ep.http(path));
  expect(/^application\/json\b/.test(a.contentType), `GET ${path}: content-type should be application/json, got ${JSON.stringify(a.contentType)}`);
  expect(a.json !== null && typeof a.json === 'object' && !Array.isArray(a.json), `GET ${path}: body should be a JSON object, got ${show(a.text)}`);
  return { status: a.status, body: a.json as Record<string, unknown> };
}

async function postSession(ep: Endpoint, body: string, contentType = 'application/json'): Promise<{ status: number; code: unknown; text: string }> {
  const a = await request(ep.http('/api/session'), { method: 'POST', headers: { 'content-type': contentType }, body });
  return { status: a.status, code: (a.json as { code?: unknown } | undefined)?.code, text: a.text };
}

/** A pub frame of exactly `bytes` UTF-8 bytes (ASCII text), or undefined when it cannot be that small. */
function pubOfBytes(id: string, room: string, bytes: number): string | undefined {
  const head = JSON.stringify({ t: 'pub', id, room, text: '' });
  const fill = bytes - Buffer.byteLength(head);
  if (fill < 1) return undefined;
  return JSON.stringify({ t: 'pub', id, room, text: 'x'.repeat(fill) });
}

/**
 * After a join, collect what the server replays: live messages start only after the replay (§5),
 * so `sentinel()` publishes one live message and everything between `joined` and it is the replay.
 */
async function replayBefore(p: Probe, room: string, at: number, sentinel: () => Promise<string>): Promise<FrameOf<'msg'>[]> {
  const id = await sentinel();
  await p.find('msg', (m) => m.room === room && m.id === id, `the live message ${id} after the replay`, at);
  const all = p.msgs(room, at + 1);
  return all.slice(0, all.findIndex((m) => m.id === id));
}

export const CHECKS: Check[] = [
  // ---- HTTP
  {
    id: 'http.healthz',
    name: 'GET /healthz answers 200 with JSON',
    section: 'README: HTTP endpoints',
    async run(ctx) {
      const r = await jsonObject(ctx.ep, '/healthz');
      expect(r.status === 200, `GET /healthz: expected 200, got ${r.status} ${show(r.body)}`);
    },
  },
  {
    id: 'http.readyz',
    name: 'GET /readyz answers 200 with JSON (accepting)',
    section: 'README: HTTP endpoints',
    async run(ctx) {
      const r = await jsonObject(ctx.ep, '/readyz');
      expect(r.status === 200, `GET /readyz: expected 200 (accepting), got ${r.status} ${show(r.body)}`);
    },
  },
  {
    id: 'session.create',
    name: 'POST /api/session {handle} → 200 {token, user, expiresAt}; token {u, h, e} with e = expiresAt in seconds',
    section: `${P} §1`,
    async run(ctx) {
      const handle = ctx.handle();
      const before = Date.now();
      const s = await ctx.session(ctx.ep, handle);
      expect(s.user.handle === handle, `user.handle should be ${handle}, got ${show(s.user)}`);
      expect(s.expiresAt > before, `expiresAt ${s.expiresAt} should be in the future (ms since the epoch)`);
      // the token's format is documented: base64url(JSON{u, h, e}) "." base64url(HMAC), e the same instant in seconds
      const parts = s.token.split('.');
      let claims: { u?: unknown; h?: unknown; e?: unknown } | undefined;
      try {
        claims = parts.length === 2 ? (JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8')) as typeof claims) : undefined;
      } catch {
        claims = undefined;
      }
      expect(claims !== undefined, `the token should be base64url(JSON{u, h, e}).signature, got ${show(s.token, 80)}`);
      expect(claims.u === s.user.id && claims.h === handle, `the token's u/h should be the user ${show(s.user)}, got ${show(claims)}`);
      expect(typeof claims.e === 'number' && claims.e * 1000 === s.expiresAt, `the token's e (seconds) should be expiresAt ${s.expiresAt} / 1000, got ${show(claims.e)}`);
    },
  },
  {
    id: 'session.renew',
    name: 'POST /api/session {handle, token} keeps the user id',
    section: `${P} §1`,
    requires: ['session.create'],
    async run(ctx) {
      const s = await ctx.session();
      const other = await ctx.session();
      expect(other.user.id !== s.user.id, `two new sessions got the same user id ${s.user.id}`);
      const renewed = await createSession(ctx.ep, s.user.handle, s.token);
      expect(renewed.user.id === s.user.id, `renewing with the token should keep user id ${s.user.id}, got ${renewed.user.id}`);
      const handle = ctx.handle();
      const renamed = await createSession(ctx.ep, handle, s.token);
      expect(renamed.user.id === s.user.id && renamed.user.handle === handle, `renaming with the token should keep user id ${s.user.id} with handle ${handle}, got ${show(renamed.user)}`);
    },
  },
  {
    id: 'session.errors',
    name: 'bad handle 400 bad_handle, bad JSON 400 bad_json, bad body 400 bad_request, wrong type 415',
    section: `${P} §1`,
    async run(ctx) {
      const cases: [string, string, string, number, string][] = [
        ['handle "-x"', JSON.stringify({ handle: '-x' }), 'application/json', 400, 'bad_handle'],
        ['handle of 25 characters', JSON.stringify({ handle: 'a'.repeat(25) }), 'application/json', 400, 'bad_handle'],
        ['a body that is not JSON', '{"handle":', 'application/json', 400, 'bad_json'],
        ['an unknown field', JSON.stringify({ handle: ctx.handle(), extra: 1 }), 'application/json', 400, 'bad_request'],
        ['handle not a string', JSON.stringify({ handle: 42 }), 'application/json', 400, 'bad_request'],
        ['content-type text/plain', JSON.stringify({ handle: ctx.handle() }), 'text/plain', 415, 'bad_request'],
      ];
      for (const [what, body, type, status, code] of cases) {
        const r = await postSession(ctx.ep, body, type);
        expect(r.status === status && r.code === code, `POST /api/session with ${what}: expected ${status} {code: ${code}}, got ${r.status} ${show(r.text)}`);
      }
    },
  },
  // ---- upgrade
  {
    id: 'upgrade.subprotocol',
    name: 'upgrade without the subprotocol confab.v1 → 400 protocol_violation',
    section: `${P} §2`,
    requires: ['session.create'],
    async run(ctx) {
      const s = await ctx.session();
      const url = `${ctx.ep.ws()}?token=${encodeURIComponent(s.token)}`;
      for (const protocols of [[], ['confab.v0'], ['chat', 'confab.v2']]) {
        const r = await tryUpgrade(url, protocols);
        expect(r !== undefined, `upgrade offering ${show(protocols)} was accepted; expected 400`);
        expect(r.status === 400, `upgrade offering ${show(protocols)}: expected 400, got ${r.status} ${show(r.body)}`);
        expect((r.body as { code?: unknown }).code === 'protocol_violation', `upgrade offering ${show(protocols)}: expected body code protocol_violation, got ${show(r.body)}`);
      }
    },
  },
  {
    id: 'upgrade.auth',
    name: 'upgrade without a token, with a malformed or forged token → 401 unauthorized',
    section: `${P} §2`,
    requires: ['session.create'],
    async run(ctx) {
      const s = await ctx.session();
      const [payload = '', sig = ''] = s.token.split('.');
      // change the first character: all six of its bits are signature bits (the last one's low bits are base64 padding)
      const flip = (x: string) => (x.startsWith('A') ? 'B' : 'A') + x.slice(1);
      const forgedPayload = Buffer.from(JSON.stringify({ ...(JSON.parse(Buffer.from(payload, 'base64url').toString('utf8') || '{}') as object), h: 'mallory' })).toString('base64url');
      const cases: [string, string][] = [
        ['no token', ctx.ep.ws()],
        ['a malformed token', `${ctx.ep.ws()}?token=not-a-token`],
        ['a token with a wrong signature', `${ctx.ep.ws()}?token=${encodeURIComponent(`${payload}.${flip(sig)}`)}`],
        ['a token with an altered payload', `${ctx.ep.ws()}?token=${encodeURIComponent(`${forgedPayload}.${sig}`)}`],
      ];
      for (const [what, url] of cases) {
        const r = await tryUpgrade(url, [SUBPROTOCOL]);
        expect(r !== undefined, `upgrade with ${what} was accepted; expected 401`);
        expect(r.status === 401, `upgrade with ${what}: expected 401, got ${r.status} ${show(r.body)}`);
        expect((r.body as { code?: unknown }).code === 'unauthorized', `upgrade with ${what}: expected body code unauthorized, got ${show(r.body)}`);
      }
    },
  },
  {
    id: 'upgrade.path',
    name: 'upgrade on a path other than /ws → 404 not_found',
    section: `${P} §2`,
    requires: ['session.create'],
    async run(ctx) {
      const s = await ctx.session();
      const r = await tryUpgrade(`${ctx.ep.ws('/not-ws')}?token=${encodeURIComponent(s.token)}`, [SUBPROTOCOL]);
      expect(r !== undefined, 'upgrade on /not-ws was accepted; expected 404');
      expect(r.status === 404 && (r.body as { code?: unknown }).code === 'not_found', `upgrade on /not-ws: expected 404 not_found, got ${r.status} ${show(r.body)}`);
    },
  },
  {
    id: 'upgrade.origin',
    name: 'an Origin the deployment does not allow → 403 forbidden_origin',
    section: `${P} §2`,
    requires: ['session.create'],
    async run(ctx) {
      const s = await ctx.session();
      const origin = 'https://conformance.invalid';
      const r = await tryUpgrade(`${ctx.ep.ws()}?token=${encodeURIComponent(s.token)}`, [SUBPROTOCOL], { origin });
      if (r === undefined) throw new Skip(`this deployment allows Origin ${origin} (CONFAB_ALLOWED_ORIGINS): nothing to refuse`);
      expect(r.status === 403 && (r.body as { code?: unknown }).code === 'forbidden_origin', `upgrade with Origin ${origin}: expected 403 forbidden_origin, got ${r.status} ${show(r.body)}`);
    },
  },
  {
    id: 'upgrade.bearer',
    name: 'the token in Authorization: Bearer opens the socket',
    section: `${P} §2`,
    requires: ['session.create'],
    async run(ctx) {
      const s = await ctx.session();
      const { welcome } = await ctx.connect(s, { bearer: true, name: 'bearer' });
      expect(welcome.user.id === s.user.id, `welcome.user should be the session's user ${s.user.id}, got ${show(welcome.user)}`);
    },
  },
  // ---- socket basics
  {
    id: 'ws.welcome',
    name: 'welcome first: v 1, the session user, every limits field; subprotocol confab.v1 selected',
    section: `${P} §2, §4`,
    requires: ['session.create'],
    async run(ctx) {
      const s = await ctx.session();
      const { p, welcome } = await ctx.connect(s, { name: 'A' });
      expect(p.ws.protocol === SUBPROTOCOL, `the server selected subprotocol ${JSON.stringify(p.ws.protocol)}, expected ${SUBPROTOCOL}`);
      const raw = welcome as unknown as { limits?: Record<string, unknown> };
      const missing = LIMIT_KEYS.filter((k) => typeof raw.limits?.[k] !== 'number');
      expect(missing.length === 0, `welcome.limits lacks ${missing.join(', ')}: ${show(raw.limits)}`);
      expect(welcome.v === 1, `welcome.v should be 1 (protocol version 1), got ${welcome.v}`);
      expect(welcome.user.id === s.user.id && welcome.user.handle === s.user.handle, `welcome.user should be ${show(s.user)}, got ${show(welcome.user)}`);
      ctx.welcome = welcome;
    },
  },
  {
    id: 'session.handle_taken',
    name: 'a handle online is refused to another user (case-insensitive): 409 handle_taken',
    section: `${P} §1`,
    requires: ['ws.welcome'],
    async run(ctx) {
      const { s } = await ctx.user('A');
      for (const h of [s.user.handle, s.user.handle.toUpperCase()]) {
        const r = await postSession(ctx.ep, JSON.stringify({ handle: h }));
        expect(r.status === 409 && r.code === 'handle_taken', `POST /api/session {handle: ${h}} while ${s.user.handle} is online: expected 409 handle_taken, got ${r.status} ${show(r.text)}`);
      }
    },
  },
  {
    id: 'ws.ping',
    name: 'ping → pong',
    section: `${P} §3, §8`,
    requires: ['ws.welcome'],
    async run(ctx) {
      const { p } = await ctx.user('A');
      const from = p.frames.length;
      await p.send({ t: 'ping' });
      await p.find('pong', () => true, 'pong', from);
    },
  },
  {
    id: 'ws.rooms',
    name: 'rooms → rooms',
    section: `${P} §3, §4`,
    requires: ['ws.welcome'],
    async run(ctx) {
      const { p } = await ctx.user('A');
      const from = p.frames.length;
      await p.send({ t: 'rooms' });
      await p.find('rooms', () => true, 'rooms', from);
    },
  },
  // ---- rooms and messages
  {
    id: 'room.join',
    name: 'join a new room → joined {epoch, last 0, recovered false, members with me, count}',
    section: `${P} §3, §4, §5`,
    requires: ['ws.welcome'],
    async run(ctx) {
      const { p, s } = await ctx.user('A');
      const room = ctx.room('join');
      const { joined } = await ctx.join(p, room);
      expect(joined.last === 0, `a room nobody wrote to should have last 0, got ${joined.last}`);
      expect(joined.recovered === false, `a join without since should have recovered false, got ${joined.recovered}`);
      expect(joined.reset === undefined && joined.gap === undefined, `a join without since should carry no reset/gap: ${show(joined)}`);
      expect(joined.count >= 1, `count should include me, got ${joined.count}`);
      expect(joined.members.some((m) => m.id === s.user.id), `members should list me (${s.user.id}): ${show(joined.members)}`);
    },
  },
  {
    id: 'pub.ack',
    name: 'pub → own msg, then ack with the same id; offset/prev/epoch chain; from set by the server',
    section: `${P} §3, §4, §5`,
    requires: ['ws.welcome'],
    async run(ctx) {
      const { p, s, welcome } = await ctx.user('A');
      const room = ctx.room('pub');
      const { joined } = await ctx.join(p, room);
      let prev = joined.last;
      for (let k = 1; k <= 3; k++) {
        const text = `conformance ${k} <b>&amp;</b>`;
        const { ack, msg } = await ctx.pub(p, room, text);
        expect(p.indexOf(msg) < p.indexOf(ack), `msg ${msg.id} should arrive before its ack`);
        expect(ack.room === room && ack.offset === msg.offset && ack.epoch === msg.epoch, `ack ${show(ack)} should name the room, offset and epoch of the msg ${show(msg)}`);
        expect(msg.epoch === joined.epoch, `msg epoch ${msg.epoch} should be the room's epoch ${joined.epoch} from joined`);
        expect(msg.prev === prev, `msg ${msg.id}: prev should be ${prev} (the previous offset; 0 for the first), got ${msg.prev}`);
        expect(msg.offset > msg.prev, `msg ${msg.id}: offset ${msg.offset} should be greater than prev ${msg.prev}`);
        expect(msg.kind === 'msg' && msg.text === text, `msg should be kind msg with the text as sent: ${show(msg)}`);
        const from = { user: s.user.id, handle: s.user.handle, node: welcome.node, region: welcome.region };
        expect(JSON.stringify(msg.from) === JSON.stringify(from), `msg.from should be ${show(from)} (session and node), got ${show(msg.from)}`);
        prev = msg.offset;
      }
    },
  },
  {
    id: 'pub.dup',
    name: 'resending an id (same or another socket of the user) → ack dup true, same offset, nothing stored; other text → duplicate_id_conflict; other room → new message',
    section: `${P} §3`,
    requires: ['ws.welcome'],
    async run(ctx) {
      const { p, s } = await ctx.user('A');
      const room = ctx.room('dup');
      await ctx.join(p, room);
      const first = await ctx.pub(p, room, 'first');
      const second = await ctx.pub(p, room, 'second');
      const mark = p.frames.length;
      await p.send({ t: 'pub', id: first.ack.id, room, text: 'first' });
      const again = await p.answer(first.ack.id, mark);
      expect(again.t === 'ack', `resend of ${first.ack.id}: expected ack, got ${show(again)}`);
      expect(again.dup === true && again.offset === first.ack.offset && again.epoch === first.ack.epoch, `resend of ${first.ack.id}: expected ack dup true, offset ${first.ack.offset}, epoch ${first.ack.epoch}; got ${show(again)}`);
      // a second socket of the same user
      const { p: p2 } = await ctx.connect(s, { name: 'A2' });
      await ctx.join(p2, room);
      const mark2 = p2.frames.length;
      await p2.send({ t: 'pub', id: second.ack.id, room, text: 'second' });
      const again2 = await p2.answer(second.ack.id, mark2);
      expect(again2.t === 'ack' && again2.dup === true && again2.offset === second.ack.offset, `resend of ${second.ack.id} on another socket of the user: expected ack dup true offset ${second.ack.offset}, got ${show(again2)}`);
      // the same id with another text is another message: refused, nothing stored
      await sendExpectError(ctx, p, { t: 'pub', id: first.ack.id, room, text: 'first, edited' }, 'duplicate_id_conflict', { id: first.ack.id, room }, `${first.ack.id} again with another text`);
      // nothing new was stored or delivered: the next message is the next one published
      const next = await ctx.pub(p, room, 'third');
      const delivered = ids(p.msgs(room, mark));
      expect(JSON.stringify(delivered) === JSON.stringify([next.ack.id]), `after the resends, members should receive only the new message ${next.ack.id}; got ${show(delivered)}`);
      expect(next.msg.prev === second.ack.offset, `the message after the resends should follow ${second.ack.offset} (prev), got prev ${next.msg.prev}: a resend was stored again`);
      // ids are scoped to (room, user): the same id in another room is a new message
      const room2 = ctx.room('dup2');
      await ctx.join(p, room2);
      await ctx.pub(p, room2, 'first', first.ack.id);
    },
  },
  {
    id: 'room.order',
    name: 'two publishers at once: both members see one order, prev chain whole, each sender in its order',
    section: `${P} §5 (G1)`,
    requires: ['ws.welcome'],
    async run(ctx) {
      const a = await ctx.user('A');
      const b = await ctx.user('B');
      const room = ctx.room('order');
      const ja = await ctx.join(a.p, room);
      const jb = await ctx.join(b.p, room);
      const per = 5;
      const sent: Record<string, string[]> = { A: [], B: [] };
      const sends: Promise<void>[] = [];
      for (let k = 0; k < per; k++) {
        for (const [name, who] of [['A', a], ['B', b]] as const) {
          const id = ctx.id(name);
          sent[name]!.push(id);
          sends.push(who.p.send({ t: 'pub', id, room, text: `${name} ${k}` }));
        }
      }
      await Promise.all(sends);
      for (const [who, j] of [[a, ja], [b, jb]] as const) await who.p.until(() => who.p.msgs(room, j.at + 1).length >= per * 2, `all ${per * 2} messages`);
      const seqA = a.p.msgs(room, ja.at + 1);
      const seqB = b.p.msgs(room, jb.at + 1);
      const key = (ms: FrameOf<'msg'>[]) => ms.map((m) => `${m.offset}:${m.id}`).join(',');
      expect(seqA.length === per * 2 && seqB.length === per * 2, `each member should receive exactly ${per * 2} messages, A got ${seqA.length}, B got ${seqB.length}`);
      expect(key(seqA) === key(seqB), `members saw different orders:\n  A ${key(seqA)}\n  B ${key(seqB)}`);
      const chain = chainProblem(seqA, ja.joined.last);
      expect(chain === undefined, `order: ${chain}`);
      for (const name of ['A', 'B']) {
        const mine = seqA.map((m) => m.id).filter((id) => sent[name]!.includes(id));
        expect(JSON.stringify(mine) === JSON.stringify(sent[name]), `${name}'s messages should be stored in the order sent: sent ${show(sent[name])}, stored ${show(mine)}`);
      }
      for (const who of [a, b]) for (const id of sent[who.p.name]!) {
        const ans = await who.p.answer(id);
        expect(ans.t === 'ack', `${who.p.name}: pub ${id}: expected ack, got ${show(ans)}`);
      }
    },
  },
  {
    id: 'room.presence',
    name: 'a join is announced to members (presence join); joined lists the members',
    section: `${P} §4`,
    requires: ['ws.welcome'],
    async run(ctx) {
      const a = await ctx.user('A');
      const b = await ctx.user('B');
      const room = ctx.room('pres');
      const ja = await ctx.join(a.p, room);
      const jb = await ctx.join(b.p, room);
      await a.p.find('presence', (f) => f.room === room && f.event === 'join' && f.user.id === b.s.user.id, `presence join of B (${b.s.user.id}) in ${room}`, ja.at);
      const listed = new Set(jb.joined.members.map((m) => m.id));
      expect(listed.has(a.s.user.id) && listed.has(b.s.user.id), `B's joined should list A and B: ${show(jb.joined.members)}`);
      expect(jb.joined.count >= 2, `B's joined count should be at least 2, got ${jb.joined.count}`);
    },
  },
  {
    id: 'room.typing',
    name: 'typing reaches the other members, not the sender',
    section: `${P} §3, §4`,
    requires: ['ws.welcome'],
    async run(ctx) {
      const a = await ctx.user('A');
      const b = await ctx.user('B');
      const room = ctx.room('typing');
      await ctx.join(a.p, room);
      await ctx.join(b.p, room);
      const markA = a.p.frames.length;
      const markB = b.p.frames.length;
      await b.p.send({ t: 'typing', room });
      await b.p.send({ t: 'ping' });
      await a.p.find('typing', (f) => f.room === room && f.user.id === b.s.user.id, `typing from B in ${room}`, markA);
      const pong = await b.p.find('pong', () => true, 'pong', markB);
      const own = b.p.frames.slice(markB, b.p.indexOf(pong)).filter((f) => f.t === 'typing' || f.t === 'error');
      expect(own.length === 0, `the sender of typing should get nothing back, got ${show(own)}`);
    },
  },
  {
    id: 'room.leave',
    name: 'leave → left; then pub/typing/leave there → not_joined with id/room',
    section: `${P} §3, §7`,
    requires: ['ws.welcome'],
    async run(ctx) {
      const { p } = await ctx.user('A');
      const room = ctx.room('leave');
      await ctx.join(p, room);
      const from = p.frames.length;
      await p.send({ t: 'leave', room });
      await p.find('left', (f) => f.room === room, `left for ${room}`, from);
      const id = ctx.id();
      await sendExpectError(ctx, p, { t: 'pub', id, room, text: 'after leave' }, 'not_joined', { id, room }, 'pub after leave');
      await sendExpectError(ctx, p, { t: 'typing', room }, 'not_joined', { room }, 'typing after leave');
      await sendExpectError(ctx, p, { t: 'leave', room }, 'not_joined', { room }, 'a second leave');
    },
  },
  // ---- resume
  {
    id: 'resume.since',
    name: 'reconnect and join with since → recovered, exactly the missed messages in order, then live, no seam',
    section: `${P} §5 (G2)`,
    requires: ['ws.welcome'],
    async run(ctx) {
      const a = await ctx.user('A');
      const b = await ctx.user('B');
      const room = ctx.room('resume');
      await ctx.join(a.p, room);
      await ctx.join(b.p, room);
      const m1 = await ctx.pub(b.p, room, 'seen');
      const seen = await a.p.find('msg', (m) => m.id === m1.ack.id, `msg ${m1.ack.id}`);
      await a.p.closeAndWait();
      const missed = [];
      for (let k = 0; k < 3; k++) missed.push(await ctx.pub(b.p, room, `missed ${k}`));
      const { p: a2 } = await ctx.connect(a.s, { name: 'A again' });
      const { joined, at } = await ctx.join(a2, room, { epoch: seen.epoch, offset: seen.offset });
      expect(joined.recovered === true, `join with since {${seen.epoch}, ${seen.offset}}: expected recovered true, got ${show(joined)}`);
      expect(joined.epoch === seen.epoch && !joined.reset && !joined.gap, `resume in the same epoch should carry no reset/gap: ${show(joined)}`);
      expect(joined.last === missed[2]!.ack.offset, `joined.last should be the last offset ${missed[2]!.ack.offset}, got ${joined.last}`);
      const early = a2.msgs(room, 0).filter((m) => a2.indexOf(m) < at);
      expect(early.length === 0, `messages of ${room} arrived before joined: ${show(ids(early))}`);
      const replay = await replayBefore(a2, room, at, async () => (await ctx.pub(b.p, room, 'live')).ack.id);
      const want = missed.map((m) => m.ack.id);
      expect(JSON.stringify(ids(replay)) === JSON.stringify(want), `replay should be exactly the missed ${show(want)}, got ${show(ids(replay))}`);
      const chain = chainProblem([...replay, ...a2.msgs(room, at + 1).slice(replay.length, replay.length + 1)], seen.offset);
      expect(chain === undefined, `replay then live: ${chain}`);
      const after = a2.msgs(room, at + 1).slice(replay.length);
      expect(after.length === 1, `after the replay exactly the one live message should follow, got ${show(ids(after))}`);
    },
  },
  {
    id: 'resume.recent',
    name: 'join without since in a room with messages → recovered false, the most recent ones oldest first',
    section: `${P} §5`,
    requires: ['ws.welcome'],
    async run(ctx) {
      const a = await ctx.user('A');
      const room = ctx.room('recent');
      await ctx.join(a.p, room);
      const sent = [];
      for (let k = 0; k < 3; k++) sent.push(await ctx.pub(a.p, room, `recent ${k}`));
      const c = await ctx.user('C');
      const { joined, at } = await ctx.join(c.p, room);
      expect(joined.recovered === false, `a join without since: expected recovered false, got ${show(joined)}`);
      expect(joined.last === sent[2]!.ack.offset, `joined.last should be ${sent[2]!.ack.offset}, got ${joined.last}`);
      const replay = await replayBefore(c.p, room, at, async () => (await ctx.pub(a.p, room, 'live')).ack.id);
      const all = sent.map((m) => m.ack.id);
      const got = ids(replay);
      expect(JSON.stringify(got) === JSON.stringify(all.slice(all.length - got.length)), `the recent messages should be the latest ones, oldest first: sent ${show(all)}, replayed ${show(got)}`);
    },
  },
  {
    id: 'resume.reset',
    name: 'join with since in another epoch, or beyond the newest offset → reset true, recovered false, then the recent messages',
    section: `${P} §5`,
    requires: ['ws.welcome'],
    async run(ctx) {
      const a = await ctx.user('A');
      const room = ctx.room('reset');
      const j0 = await ctx.join(a.p, room);
      const m = await ctx.pub(a.p, room, 'before');
      const c = await ctx.user('C');
      const other = `cf-not-${j0.joined.epoch}`.slice(0, 64);
      const { joined, at } = await ctx.join(c.p, room, { epoch: other, offset: m.ack.offset });
      expect(joined.reset === true && joined.recovered === false, `since in epoch ${other}: expected reset true, recovered false; got ${show(joined)}`);
      expect(joined.epoch === j0.joined.epoch, `joined.epoch should be the room's epoch ${j0.joined.epoch}, got ${joined.epoch}`);
      const replay = await replayBefore(c.p, room, at, async () => (await ctx.pub(a.p, room, 'live')).ack.id);
      expect(replay.every((r) => r.id === m.ack.id) && replay.length <= 1, `after reset, only the room's recent messages should follow: ${show(ids(replay))}`);
      // an offset beyond the room's newest: offsets this history never had
      const beyond = { epoch: joined.epoch, offset: m.ack.offset + 1_000_000 };
      const again = await ctx.join(c.p, room, beyond);
      expect(again.joined.reset === true && again.joined.recovered === false, `since ${show(beyond)}, beyond the room's newest offset: expected reset true, recovered false; got ${show(again.joined)}`);
    },
  },
  {
    id: 'resume.rejoin',
    name: 'joining a room again with since re-syncs it: the messages after since, once, then live',
    section: `${P} §5`,
    requires: ['ws.welcome'],
    async run(ctx) {
      const a = await ctx.user('A');
      const room = ctx.room('rejoin');
      await ctx.join(a.p, room);
      const sent = [];
      for (let k = 0; k < 3; k++) sent.push(await ctx.pub(a.p, room, `rejoin ${k}`));
      const since = { epoch: sent[0]!.msg.epoch, offset: sent[0]!.msg.offset };
      const { joined, at } = await ctx.join(a.p, room, since);
      expect(joined.recovered === true && joined.last === sent[2]!.ack.offset, `join again with since ${show(since)}: expected recovered true, last ${sent[2]!.ack.offset}; got ${show(joined)}`);
      const replay = await replayBefore(a.p, room, at, async () => (await ctx.pub(a.p, room, 'live')).ack.id);
      const want = sent.slice(1).map((m) => m.ack.id);
      expect(JSON.stringify(ids(replay)) === JSON.stringify(want), `re-sync should replay exactly ${show(want)}, got ${show(ids(replay))}`);
      const chain = chainProblem(a.p.msgs(room, at + 1), since.offset);
      expect(chain === undefined, `re-sync then live: ${chain}`);
    },
  },
  {
    id: 'history.page',
    name: 'history {room, before, limit} → history {before, msgs: the newest limit msg frames older than before, ascending, more}; a room not joined → not_joined',
    section: `${P} §5a`,
    requires: ['ws.welcome'],
    async run(ctx) {
      const a = await ctx.user('A');
      const room = ctx.room('history');
      await ctx.join(a.p, room);
      const sent = [];
      for (let k = 0; k < 3; k++) sent.push(await ctx.pub(a.p, room, `older ${k}`));
      const before = sent[2]!.ack.offset;
      const from = a.p.frames.length;
      await a.p.send({ t: 'history', room, before, limit: 1 });
      await a.p.send({ t: 'history', room, before, limit: 2 });
      const h1 = await a.p.find('history', (f) => f.room === room, `history for ${room}`, from);
      const h2 = await a.p.find('history', (f) => f.room === room && f !== h1, `a second history for ${room}`, from);
      expect(h1.before === before && h2.before === before, `history.before should echo ${before}: ${show([h1.before, h2.before])}`);
      expect(h1.msgs.length === 1 && h2.msgs.length === 2, `answers in request order, limit 1 then 2: got ${h1.msgs.length} then ${h2.msgs.length}`);
      expect(JSON.stringify(h2.msgs.map((m) => m.id)) === JSON.stringify(sent.slice(0, 2).map((m) => m.ack.id)), `history should hold the two messages before ${before}, ascending: ${show(ids(h2.msgs))}`);
      expect(JSON.stringify(h2.msgs[1]) === JSON.stringify(sent[1]!.msg), `a history msg should be the msg frame as delivered live: ${show(h2.msgs[1])} vs ${show(sent[1]!.msg)}`);
      expect(h1.more === true && h2.more === false, `more: true while older messages exist, false at the first: got ${show([h1.more, h2.more])}`);
      const elsewhere = ctx.room('not-joined');
      await sendExpectError(ctx, a.p, { t: 'history', room: elsewhere }, 'not_joined', { room: elsewhere }, 'history of a room not joined');
    },
  },
  // ---- errors
  {
    id: 'error.bad_json',
    name: 'a frame that is not JSON → error bad_json, socket stays open',
    section: `${P} §7`,
    requires: ['ws.welcome'],
    async run(ctx) {
      const { p } = await ctx.user('A');
      await sendExpectError(ctx, p, '{"t":"ping"', 'bad_json', {}, 'a truncated JSON frame');
      const from = p.frames.length;
      await p.send({ t: 'ping' });
      await p.find('pong', () => true, 'pong after bad_json (the connection stays open)', from);
    },
  },
  {
    id: 'error.unknown_type',
    name: 'unknown t → error unknown_type carrying the id',
    section: `${P} §7`,
    requires: ['ws.welcome'],
    async run(ctx) {
      const { p } = await ctx.user('A');
      const id = ctx.id();
      await sendExpectError(ctx, p, { t: 'shout', id, room: 'lobby' }, 'unknown_type', { id }, 'a frame with t "shout"');
    },
  },
  {
    id: 'error.bad_frame',
    name: 'unknown field, __proto__, wrong field type, non-object, binary frame, empty text → bad_frame',
    section: `${P} §2, §3, §7`,
    requires: ['ws.welcome'],
    async run(ctx) {
      const { p } = await ctx.user('A');
      const room = ctx.room('badframe');
      await ctx.join(p, room);
      let id = ctx.id();
      await sendExpectError(ctx, p, { t: 'pub', id, room, text: 'x', color: 'red' }, 'bad_frame', { id }, 'pub with an unknown field');
      id = ctx.id();
      await sendExpectError(ctx, p, `{"t":"pub","id":"${id}","room":"${room}","text":"x","__proto__":{"admin":true}}`, 'bad_frame', { id }, 'pub with a __proto__ key');
      await sendExpectError(ctx, p, { t: 'join', room: 5 }, 'bad_frame', {}, 'join with a number as room');
      for (const notObject of ['[{"t":"ping"}]', '"ping"', '1']) await sendExpectError(ctx, p, notObject, 'bad_frame', {}, `a frame that is not a JSON object: ${notObject}`);
      await sendExpectError(ctx, p, Buffer.from(JSON.stringify({ t: 'ping' })), 'bad_frame', {}, 'a binary frame', true);
      for (const text of ['', '   ']) {
        id = ctx.id();
        await sendExpectError(ctx, p, { t: 'pub', id, room, text }, 'bad_frame', { id }, `pub with text ${JSON.stringify(text)}`);
      }
    },
  },
  {
    id: 'error.no_type',
    name: 'an object without a string t → unknown_type (with its id)',
    section: `${P} §3, §7`,
    requires: ['ws.welcome'],
    async run(ctx) {
      const { p } = await ctx.user('A');
      const id = ctx.id();
      await sendExpectError(ctx, p, { id, room: ctx.room('not') }, 'unknown_type', { id }, 'an object without t');
      await sendExpectError(ctx, p, { t: 7 }, 'unknown_type', {}, 'an object whose t is a number');
    },
  },
  {
    id: 'error.bad_room',
    name: 'join an invalid room name → error bad_room carrying the room',
    section: `${P} §3, §7`,
    requires: ['ws.welcome'],
    async run(ctx) {
      const { p } = await ctx.user('A');
      for (const room of ['Not A Room', '_private', 'x'.repeat(33)]) {
        await sendExpectError(ctx, p, { t: 'join', room }, 'bad_room', { room }, `join ${JSON.stringify(room)}`);
      }
    },
  },
  {
    id: 'error.not_joined',
    name: 'pub/typing/leave for a room not joined, typing in _alerts → not_joined with id and room',
    section: `${P} §7`,
    requires: ['ws.welcome'],
    async run(ctx) {
      const { p } = await ctx.user('A');
      const room = ctx.room('notjoined');
      const id = ctx.id();
      await sendExpectError(ctx, p, { t: 'pub', id, room, text: 'hello' }, 'not_joined', { id, room }, 'pub to a room not joined');
      await sendExpectError(ctx, p, { t: 'typing', room }, 'not_joined', { room }, 'typing in a room not joined');
      await sendExpectError(ctx, p, { t: 'leave', room }, 'not_joined', { room }, 'leave a room not joined');
      await ctx.join(p, ALERTS_ROOM);
      await sendExpectError(ctx, p, { t: 'typing', room: ALERTS_ROOM }, 'not_joined', { room: ALERTS_ROOM }, 'typing in _alerts (joined)');
    },
  },
  {
    id: 'error.forbidden_room',
    name: 'pub to _alerts → forbidden_room with id and room',
    section: `${P} §6, §7`,
    requires: ['ws.welcome'],
    async run(ctx) {
      const { p } = await ctx.user('A');
      const id = ctx.id();
      await sendExpectError(ctx, p, { t: 'pub', id, room: ALERTS_ROOM, text: 'not an alert' }, 'forbidden_room', { id, room: ALERTS_ROOM }, 'pub to _alerts');
    },
  },
  {
    id: 'error.text_too_long',
    name: 'text of maxTextChars → ack; one more UTF-16 code unit → text_too_long with id and room',
    section: `${P} §3, §4, §7`,
    requires: ['ws.welcome'],
    async run(ctx) {
      const { maxTextChars, maxFrameBytes } = ctx.limits;
      if (maxTextChars * 4 + 200 > maxFrameBytes) throw new Skip(`maxTextChars ${maxTextChars} does not fit maxFrameBytes ${maxFrameBytes} with room to spare`);
      const { p } = await ctx.user('A');
      const room = ctx.room('long');
      await ctx.join(p, room);
      await ctx.pub(p, room, 'x'.repeat(maxTextChars));
      const refused: string[] = [];
      // ASCII over the limit, and a text of maxTextChars code points but maxTextChars + 1 UTF-16 code units
      for (const text of ['x'.repeat(maxTextChars + 1), 'x'.repeat(maxTextChars - 1) + '\u{1F600}']) {
        const id = ctx.id();
        refused.push(id);
        await sendExpectError(ctx, p, { t: 'pub', id, room, text }, 'text_too_long', { id, room }, `pub with ${text.length} UTF-16 code units (limit ${maxTextChars})`);
      }
      const stored = p.msgs(room).filter((m) => refused.includes(m.id));
      expect(stored.length === 0, `refused messages were delivered: ${show(ids(stored))}`);
    },
  },
  {
    id: 'error.too_many_rooms',
    name: 'maxRooms rooms joined, one more → too_many_rooms; _alerts does not count',
    section: `${P} §6, §7`,
    requires: ['ws.welcome'],
    async run(ctx) {
      const { maxRooms } = ctx.limits;
      if (maxRooms > MAX_PROBED_ROOMS) throw new Skip(`maxRooms ${maxRooms} is more than this kit joins (${MAX_PROBED_ROOMS})`);
      const { p } = await ctx.user('A');
      const rooms = Array.from({ length: maxRooms }, (_, i) => ctx.room(`r${i}`));
      const from = p.frames.length;
      await Promise.all(rooms.map((room) => p.send({ t: 'join', room })));
      await p.until(() => {
        const got = new Set(p.frames.slice(from).filter((f): f is FrameOf<'joined'> => f.t === 'joined').map((f) => f.room));
        const err = p.frames.slice(from).find((f) => f.t === 'error');
        if (err) throw new Error(`joining ${maxRooms} rooms (maxRooms): got ${show(err)}`);
        return rooms.every((r) => got.has(r));
      }, `joined for all ${maxRooms} rooms`, ctx.opts.timeoutMs + maxRooms * 100);
      const extra = ctx.room('extra');
      await sendExpectError(ctx, p, { t: 'join', room: extra }, 'too_many_rooms', { room: extra }, `join room ${maxRooms + 1}`);
      await ctx.join(p, ALERTS_ROOM);
    },
  },
  {
    id: 'rate.burst',
    name: 'a burst over the rate: every pub answered (ack, or rate_limited/fenced with id and room), join rate_limited with its room, ping still answered (pong), typing dropped; resent in order, all stored once in order',
    section: `${P} §3, §7`,
    requires: ['ws.welcome'],
    async run(ctx) {
      const { rateBurst, floodCloseAfter } = ctx.limits;
      if (rateBurst > MAX_BURST) throw new Skip(`rateBurst ${rateBurst} is more than this kit sends at once (${MAX_BURST})`);
      if (floodCloseAfter < 6) throw new Skip(`floodCloseAfter ${floodCloseAfter}: too few frames over the rate before the socket is closed to probe politely`);
      const extra = Math.min(10, floodCloseAfter - 1);
      const { p } = await ctx.user('A');
      const room = ctx.room('burst');
      const { at } = await ctx.join(p, room);
      const burst = Array.from({ length: rateBurst + extra - 3 }, () => ctx.id('b'));
      const other = ctx.room('burst2');
      const mark = p.frames.length;
      // the pubs, then three frames certainly over the rate: typing (dropped silently), join (answered rate_limited
      // with its room) and ping (served even over the rate: a pong)
      const tail = [{ t: 'typing', room }, { t: 'join', room: other }, { t: 'ping' }];
      await Promise.all([...burst.map((id, k) => p.sendUnpaced({ t: 'pub', id, room, text: `burst ${k}` })), ...tail.map((f) => p.sendUnpaced(f))]);
      p.drainPacer();
      const isJoinAnswer = (f: FrameOf<'error'>) => f.code === 'rate_limited' && f.id === undefined && f.room === other;
      await p.until(() => p.frames.slice(mark).some((f) => f.t === 'error' && isJoinAnswer(f)) && p.frames.slice(mark).some((f) => f.t === 'pong'), 'rate_limited (with its room) for the join and a pong for the ping at the end of the burst', ctx.opts.timeoutMs + burst.length * 20);
      await p.until(() => burst.every((id) => p.frames.some((f, i) => i >= mark && (f.t === 'ack' || f.t === 'error') && f.id === id)), `an answer to each of the ${burst.length} pubs`, ctx.opts.timeoutMs + burst.length * 20);
      const answers = new Map<string, (FrameOf<'ack'> | ErrorFrame)[]>();
      for (const f of p.frames.slice(mark)) if ((f.t === 'ack' || f.t === 'error') && f.id !== undefined) answers.set(f.id, [...(answers.get(f.id) ?? []), f]);
      let limited = 0;
      const acked: string[] = [];
      for (const id of burst) {
        const a = answers.get(id)!;
        expect(a.length === 1, `pub ${id} was answered ${a.length} times: ${show(a)}`);
        const f = a[0]!;
        if (f.t === 'ack') {
          expect(f.dup === false && f.room === room, `burst pub ${id}: ${show(f)}`);
          acked.push(id);
        } else {
          expect(f.code === 'rate_limited' || f.code === 'fenced', `burst pub ${id}: expected ack, rate_limited or fenced, got ${show(f)}`);
          expect(f.room === room, `burst pub ${id}: the ${f.code} error should carry room ${room}: ${show(f)}`);
          if (f.code === 'rate_limited') limited++;
        }
      }
      expect(limited > 0, `${burst.length} pubs at once (rateBurst ${rateBurst}) were all accepted: no rate_limited`);
      const tailAnswers = p.frames.slice(mark).filter((f): f is ErrorFrame => f.t === 'error' && f.id === undefined);
      const joinAnswer = tailAnswers.filter((f) => f.room === other);
      const pingAnswer = tailAnswers.filter((f) => f.room === undefined);
      expect(joinAnswer.length === 1 && joinAnswer[0]!.code === 'rate_limited', `a join over the rate should be answered once with rate_limited naming room ${other}; got ${show(joinAnswer)}`);
      expect(pingAnswer.length === 0, `a ping over the rate is served (pong), not refused; got ${show(pingAnswer)}`);
      const pongs = p.frames.slice(mark).filter((f) => f.t === 'pong');
      expect(pongs.length === 1, `a ping over the rate should be answered once with pong; got ${show(pongs)}`);
      const typingAnswer = tailAnswers.filter((f) => f.room === room);
      expect(typingAnswer.length === 0, `a typing over the rate should be dropped silently, got ${show(typingAnswer)}`);
      const unexpected = p.frames.slice(mark).filter((f) => f.t === 'joined' && f.room === other);
      expect(unexpected.length === 0, `a join over the rate was served: ${show(unexpected)}`);
      expect(JSON.stringify(acked) === JSON.stringify(burst.slice(0, acked.length)), `only the pubs before the first refused one may be stored (a refused pub fences its room): acked ${show(acked)}`);
      expect(p.closeCode === undefined, `the socket was closed (${p.closeCode} ${show(p.closeReason)}) after ${extra} frames over the rate (floodCloseAfter ${floodCloseAfter})`);
      // resend every unacknowledged pub, in order, paced below the rate
      let pending = burst.slice(acked.length);
      for (let round = 1; pending.length > 0; round++) {
        expect(round <= 3, `after 3 paced rounds still unacknowledged: ${show(pending)}`);
        const from = p.frames.length;
        for (const id of pending) await p.send({ t: 'pub', id, room, text: `burst ${burst.indexOf(id)}` });
        const got = await Promise.all(pending.map((id) => p.answer(id, from)));
        const firstRefused = got.findIndex((g) => g.t !== 'ack');
        for (const g of got.slice(0, firstRefused < 0 ? got.length : firstRefused)) expect(g.t === 'ack' && g.dup === false, `paced resend: ${show(g)}`);
        if (firstRefused >= 0) {
          const g = got[firstRefused]!;
          expect(g.t === 'error' && g.code === 'rate_limited', `paced resend of ${pending[firstRefused]}: expected ack, got ${show(g)}`);
          p.drainPacer();
        }
        pending = firstRefused < 0 ? [] : pending.slice(firstRefused);
      }
      const stored = p.msgs(room, at + 1);
      expect(JSON.stringify(ids(stored)) === JSON.stringify(burst), `the room should hold every burst pub once, in the order sent; got ${show(ids(stored), 600)}`);
      const chain = chainProblem(stored, 0);
      expect(chain === undefined, chain ?? '');
    },
  },
  {
    id: 'frame.too_large',
    name: 'a frame of maxFrameBytes is answered; one byte more closes the socket with 1009',
    section: `${P} §2, §7`,
    requires: ['ws.welcome'],
    async run(ctx) {
      const { maxFrameBytes } = ctx.limits;
      if (maxFrameBytes > MAX_PROBED_FRAME_BYTES) throw new Skip(`maxFrameBytes ${maxFrameBytes} is more than this kit sends (${MAX_PROBED_FRAME_BYTES})`);
      const { p } = await ctx.user('A');
      const room = ctx.room('large');
      await ctx.join(p, room);
      const id = ctx.id();
      const exact = pubOfBytes(id, room, maxFrameBytes);
      if (exact === undefined) throw new Skip(`maxFrameBytes ${maxFrameBytes} is smaller than a pub frame`);
      const from = p.frames.length;
      await p.send(exact);
      const a = await p.answer(id, from);
      expect(a.t === 'ack' || (a.t === 'error' && a.code === 'text_too_long'), `a pub of exactly maxFrameBytes (${maxFrameBytes}) bytes: expected ack or text_too_long, got ${show(a)}`);
      const over = pubOfBytes(ctx.id(), room, maxFrameBytes + 1)!;
      await p.send(over);
      const code = await p.closed();
      expect(code === 1009, `a frame of maxFrameBytes + 1 bytes: expected close 1009, got ${code} ${show(p.closeReason)}`);
      ctx.seen.tooLargeReason = p.closeReason ?? '';
    },
  },
  {
    id: 'close.reason',
    name: 'the 1009 close above comes from the WebSocket layer with an empty reason (other closes carry JSON {"code": …})',
    section: `${P} §7`,
    requires: ['frame.too_large'],
    async run(ctx) {
      const reason = ctx.seen.tooLargeReason ?? '';
      expect(reason === '', `the 1009 close should carry an empty reason, got ${JSON.stringify(reason)}`);
    },
  },
  {
    id: 'alert.join',
    name: 'join _alerts → joined with members [] and count 0 (no presence)',
    section: `${P} §4, §6`,
    requires: ['ws.welcome'],
    async run(ctx) {
      const { p } = await ctx.user('A');
      const { joined } = await ctx.join(p, ALERTS_ROOM);
      expect(joined.members.length === 0 && joined.count === 0, `joined _alerts: expected members [] and count 0, got ${show(joined)}`);
    },
  },
  {
    id: 'alert.send',
    name: 'alert → msg kind alert in _alerts to every member, ack with room _alerts',
    section: `${P} §3, §6`,
    requires: ['ws.welcome'],
    async run(ctx) {
      if (!ctx.opts.alerts) throw new Skip('sends an alert to every connected user; enable with --alerts');
      const a = await ctx.user('A');
      const b = await ctx.user('B');
      await ctx.join(a.p, ALERTS_ROOM);
      const { at } = await ctx.join(b.p, ALERTS_ROOM);
      const id = ctx.id('alert');
      const from = a.p.frames.length;
      await a.p.send({ t: 'alert', id, text: 'conformance alert' });
      const ack = await a.p.answer(id, from);
      expect(ack.t === 'ack' && ack.room === ALERTS_ROOM && ack.dup === false, `alert: expected ack with room _alerts, got ${show(ack)}`);
      for (const who of [a, b]) {
        const m = await who.p.find('msg', (f) => f.id === id, `alert ${id}`, who === a ? from : at);
        expect(m.room === ALERTS_ROOM && m.kind === 'alert' && m.offset === ack.offset, `alert msg: expected room _alerts, kind alert, offset ${ack.offset}; got ${show(m)}`);
        expect(m.from.user === a.s.user.id, `alert from should be the sender ${a.s.user.id}: ${show(m.from)}`);
        const presence = who.p.frames.filter((f) => f.t === 'presence' && f.room === ALERTS_ROOM);
        expect(presence.length === 0, `_alerts has no presence, got ${show(presence)}`);
      }
    },
  },
  // ---- across gateways (with a peer URL of the same deployment)
  {
    id: 'cluster.session',
    name: 'a session made on one gateway opens a socket on the other',
    section: `${P} §1`,
    requires: ['ws.welcome'],
    async run(ctx) {
      const peer = needPeer(ctx);
      const s = await ctx.session();
      const { welcome } = await ctx.connect(s, { ep: peer, name: 'A on peer' });
      expect(welcome.user.id === s.user.id, `welcome on the peer should be for ${s.user.id}, got ${show(welcome.user)}`);
    },
  },
  {
    id: 'cluster.delivery',
    name: 'members on two gateways: presence join crosses, each one\'s pub reaches the other, one order, node stamped by the sender\'s gateway',
    section: `${P} §4, §5 (G1)`,
    requires: ['cluster.session'],
    async run(ctx) {
      const peer = needPeer(ctx);
      const a = await ctx.user('A');
      const b = await ctx.user('B on peer', peer);
      if (a.welcome.node === b.welcome.node) throw new Skip(`the peer URL answered from the same node (${a.welcome.node}) as the URL`);
      const room = ctx.room('xgw');
      const ja = await ctx.join(a.p, room);
      const jb = await ctx.join(b.p, room);
      expect(ja.joined.epoch === jb.joined.epoch, `the two gateways name different epochs for one room: ${ja.joined.epoch} / ${jb.joined.epoch}`);
      await a.p.find('presence', (f) => f.room === room && f.event === 'join' && f.user.id === b.s.user.id, `presence join of B (on the peer) in ${room}`, ja.at);
      const fromA = await ctx.pub(a.p, room, 'from A');
      const onB = await b.p.find('msg', (m) => m.id === fromA.ack.id, `A's message ${fromA.ack.id} on the peer`, jb.at);
      expect(onB.from.node === a.welcome.node, `msg from A should be stamped with A's node ${a.welcome.node}, got ${onB.from.node}`);
      const fromB = await ctx.pub(b.p, room, 'from B');
      const onA = await a.p.find('msg', (m) => m.id === fromB.ack.id, `B's message ${fromB.ack.id} on the URL's gateway`, ja.at);
      expect(onA.from.node === b.welcome.node, `msg from B should be stamped with B's node ${b.welcome.node}, got ${onA.from.node}`);
      const key = (ms: FrameOf<'msg'>[]) => ms.map((m) => `${m.offset}:${m.id}`).join(',');
      expect(key(a.p.msgs(room, ja.at + 1)) === key(b.p.msgs(room, jb.at + 1)), `the gateways delivered different orders: ${key(a.p.msgs(room, ja.at + 1))} / ${key(b.p.msgs(room, jb.at + 1))}`);
      const chain = chainProblem(a.p.msgs(room, ja.at + 1), ja.joined.last);
      expect(chain === undefined, chain ?? '');
    },
  },
  {
    id: 'cluster.resume',
    name: 'resume on the other gateway: recovered, exactly the missed messages, then live',
    section: `${P} §5 (G2)`,
    requires: ['cluster.session'],
    async run(ctx) {
      const peer = needPeer(ctx);
      const a = await ctx.user('A');
      const b = await ctx.user('B');
      const room = ctx.room('xresume');
      await ctx.join(a.p, room);
      await ctx.join(b.p, room);
      const m1 = await ctx.pub(b.p, room, 'seen');
      const seen = await a.p.find('msg', (m) => m.id === m1.ack.id, `msg ${m1.ack.id}`);
      await a.p.closeAndWait();
      const missed = [];
      for (let k = 0; k < 3; k++) missed.push(await ctx.pub(b.p, room, `missed ${k}`));
      const { p: a2, welcome } = await ctx.connect(a.s, { ep: peer, name: 'A on peer' });
      if (welcome.node === a.welcome.node) throw new Skip(`the peer URL answered from the same node (${welcome.node}) as the URL`);
      const { joined, at } = await ctx.join(a2, room, { epoch: seen.epoch, offset: seen.offset });
      expect(joined.recovered === true && joined.epoch === seen.epoch, `resume on the peer with since {${seen.epoch}, ${seen.offset}}: expected recovered true in the same epoch, got ${show(joined)}`);
      const replay = await replayBefore(a2, room, at, async () => (await ctx.pub(b.p, room, 'live')).ack.id);
      const want = missed.map((m) => m.ack.id);
      expect(JSON.stringify(ids(replay)) === JSON.stringify(want), `replay on the peer should be exactly ${show(want)}, got ${show(ids(replay))}`);
      const chain = chainProblem(a2.msgs(room, at + 1), seen.offset);
      expect(chain === undefined, `replay then live on the peer: ${chain}`);
    },
  },
  {
    id: 'cluster.dup',
    name: 'resending an id through the other gateway → ack dup true with the original offset',
    section: `${P} §3 (G3)`,
    requires: ['cluster.session'],
    async run(ctx) {
      const peer = needPeer(ctx);
      const a = await ctx.user('A');
      const room = ctx.room('xdup');
      await ctx.join(a.p, room);
      const first = await ctx.pub(a.p, room, 'once');
      const { p: a2 } = await ctx.connect(a.s, { ep: peer, name: 'A on peer' });
      await ctx.join(a2, room);
      const from = a2.frames.length;
      await a2.send({ t: 'pub', id: first.ack.id, room, text: 'once' });
      const again = await a2.answer(first.ack.id, from);
      expect(again.t === 'ack' && again.dup === true && again.offset === first.ack.offset && again.epoch === first.ack.epoch, `resend of ${first.ack.id} on the peer: expected ack dup true offset ${first.ack.offset}, got ${show(again)}`);
    },
  },
];

function needPeer(ctx: CheckContext): Endpoint {
  if (!ctx.peer) throw new Skip('needs a second gateway of the same deployment: --peer URL');
  return ctx.peer;
}
