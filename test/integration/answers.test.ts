/**
 * G13 under the rate limit, at the default limits: every frame that asks for an answer
 * (`pub`, `alert`, `join`) gets one — its result, or `rate_limited` naming its `id` /
 * `room` — and a sender that resends what was refused, in order, has everything stored
 * once and in the order it was first sent (a refused `pub` fences its room like a failed append).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ServerFrame } from '../../src/protocol/frames.js';
import { startTestGateway, type TestGateway } from '../../src/testkit/gateway.js';
import { RawClient } from '../../src/testkit/raw-client.js';
import { waitFor } from '../../src/procs/wait.js';

type Answer = Extract<ServerFrame, { t: 'ack' | 'error' }>;

const ids = (c: RawClient, t: 'ack' | 'error'): string[] => c.frames.filter((f) => f.t === t).map((f) => (f as { id?: string }).id ?? '');

describe('every frame that asks is answered, also over the rate limit (default limits)', () => {
  let t: TestGateway;
  const clients: RawClient[] = [];
  before(async () => {
    t = await startTestGateway();
  });
  after(async () => {
    for (const c of clients) c.ws.terminate();
    await t?.close();
  });

  it('welcome.limits names every limit a client must pace itself by', async () => {
    const { c } = await RawClient.session(t, 'limits', clients);
    const w = c.frames.find((f) => f.t === 'welcome') as Extract<ServerFrame, { t: 'welcome' }>;
    assert.deepEqual(Object.keys(w.limits).sort(), ['floodCloseAfter', 'maxFrameBytes', 'maxRooms', 'maxTextChars', 'pingIntervalMs', 'rateBurst', 'ratePerSec']);
    assert.deepEqual([w.limits.ratePerSec, w.limits.rateBurst, w.limits.floodCloseAfter, w.limits.maxRooms], [20, 40, 100, 50]);
  });

  it('a burst of 80 pubs: each answered with its id; resending the refused ones in order stores all 80 once, in send order', async () => {
    const { c } = await RawClient.session(t, 'burst', clients);
    c.send({ t: 'join', room: 'burst' });
    await c.next('joined', (j) => j.room === 'burst');
    const ids = Array.from({ length: 80 }, (_, i) => `b${i}`);
    for (const id of ids) c.send({ t: 'pub', id, room: 'burst', text: id });
    const answers = (): Answer[] => c.frames.filter((f): f is Answer => (f.t === 'ack' || f.t === 'error') && ids.includes((f as { id?: string }).id ?? ''));
    await waitFor(() => new Set(answers().map((a) => a.id)).size === ids.length, { what: 'an answer for every pub', timeoutMs: 10_000 });
    const refused = answers().filter((a) => a.t === 'error');
    assert.ok(refused.length > 0, 'the burst went over the limit');
    for (const e of refused) assert.ok(e.code === 'rate_limited' || e.code === 'fenced', `typed refusal with its id: ${e.code}`);
    // resend like the SDK: every unacknowledged message, in the original order, paced by the rate
    for (let round = 0; round < 20; round++) {
      const acked = new Set(c.frames.filter((f) => f.t === 'ack').map((f) => (f as { id: string }).id));
      const missing = ids.filter((id) => !acked.has(id));
      if (missing.length === 0) break;
      const mark = c.frames.length;
      for (const id of missing.slice(0, 15)) c.send({ t: 'pub', id, room: 'burst', text: id });
      await waitFor(() => missing.slice(0, 15).every((id) => c.frames.slice(mark).some((f) => (f.t === 'ack' || f.t === 'error') && (f as { id?: string }).id === id)), { what: `answers in round ${round}`, timeoutMs: 10_000 });
      await new Promise((r) => setTimeout(r, 800)); // the client's pacing by welcome.limits: the token bucket refills 16 frames
    }
    const { c: reader } = await RawClient.session(t, 'reader', clients);
    reader.send({ t: 'join', room: 'burst' });
    await reader.next('joined', (j) => j.room === 'burst');
    await waitFor(() => reader.msgs('burst').length >= 50, { what: 'history replay', timeoutMs: 10_000 });
    assert.deepEqual(reader.msgs('burst').map((m) => m.id), ids.slice(-50), 'the newest 50 (recent on join) are the last 50 sent, in order');
    const dupes = c.frames.filter((f) => f.t === 'ack' && (f as { dup: boolean }).dup);
    assert.equal(dupes.length, 0, 'nothing was stored twice');
    const offsets = ids.map((id) => (c.frames.find((f) => f.t === 'ack' && (f as { id: string }).id === id) as { offset: number }).offset);
    for (let i = 1; i < offsets.length; i++) assert.ok(offsets[i]! > offsets[i - 1]!, `b${i} stored after b${i - 1}`);
  });

  it('a refused pub that would not have been stored anyway fences nothing; ping is answered even over the rate', async () => {
    const { c } = await RawClient.session(t, 'fencefree', clients);
    c.send({ t: 'join', room: 'ff' });
    await c.next('joined');
    for (let i = 0; i < 45; i++) c.send({ t: 'pub', id: `f${i}`, room: 'ff', text: i === 40 ? '   ' : `f${i}` }); // the first one over the burst is blank
    await c.next('error', (e) => e.id === 'f44');
    c.send({ t: 'ping' }); // over the rate: still a pong (a lost pong would cost a healthy socket its connection)
    await c.next('pong');
    await waitFor(() => ids(c, 'ack').length + ids(c, 'error').length >= 45, { what: 'every pub answered' });
    // resend in order after a pause: the blank one is refused for what it is, and does not hold back what follows
    await new Promise((r) => setTimeout(r, 1500)); // the client's pacing: the bucket refills
    const missing = Array.from({ length: 45 }, (_, i) => `f${i}`).filter((id) => !ids(c, 'ack').includes(id));
    const mark = c.frames.length;
    for (const id of missing) c.send({ t: 'pub', id, room: 'ff', text: id === 'f40' ? '   ' : id });
    c.send({ t: 'pub', id: 'after', room: 'ff', text: 'after' });
    const after = await c.next('ack', (a) => a.id === 'after');
    assert.ok(after.offset > 0);
    const blank = c.frames.slice(mark).find((f) => f.t === 'error' && (f as { id?: string }).id === 'f40') as { code: string } | undefined;
    assert.equal(blank?.code, 'bad_frame');
  });

  it('a client that keeps sending at twice the rate is closed with 4003, though some of its frames get through', async () => {
    const { c } = await RawClient.session(t, 'steadyflood', clients);
    const started = Date.now();
    for (let i = 0; c.closeCode === undefined && Date.now() - started < 20_000; i++) {
      c.send({ t: 'typing', room: 'nowhere' });
      if (i % 4 === 3) await new Promise((r) => setTimeout(r, 100)); // 40 frames a second: twice the rate
    }
    assert.equal(await c.closed(), 4003);
  });

  it('51 joins at once: every one answered (joined, too_many_rooms or rate_limited naming the room)', async () => {
    const { c } = await RawClient.session(t, 'joiner', clients);
    const rooms = Array.from({ length: 51 }, (_, i) => `j${i}`);
    for (const room of rooms) c.send({ t: 'join', room });
    const answered = () => new Set(c.frames.filter((f) => f.t === 'joined' || f.t === 'error').map((f) => (f as { room?: string }).room));
    await waitFor(() => rooms.every((r) => answered().has(r)), { what: 'an answer for every join', timeoutMs: 10_000 });
    for (const f of c.frames.filter((x) => x.t === 'error')) assert.ok(['rate_limited', 'too_many_rooms'].includes((f as { code: string }).code));
  });
});
