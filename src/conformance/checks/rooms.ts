/** Conformance checks: rooms and messages (join, ack, dedupe, order, presence, typing, leave), resume and history pages. */
import { chainProblem, ids } from '../context.js';
import { expect, show, type FrameOf } from '../probe.js';
import { type Check, P, sendExpectError, replayBefore } from './common.js';

export const ROOM_CHECKS: Check[] = [
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
];
