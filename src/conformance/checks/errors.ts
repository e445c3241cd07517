/** Conformance checks: typed errors, the rate limit, frame size, close reasons and alerts. */
import { ALERTS_ROOM } from '../../protocol/constants.js';
import { chainProblem, ids, Skip } from '../context.js';
import { expect, show, type FrameOf } from '../probe.js';
import { type Check, P, MAX_PROBED_FRAME_BYTES, MAX_PROBED_ROOMS, MAX_BURST, type ErrorFrame, sendExpectError, pubOfBytes } from './common.js';

export const ERROR_CHECKS: Check[] = [
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
];
