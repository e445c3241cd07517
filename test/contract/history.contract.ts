/**
 * The History contract: every adapter (memory, LMDB, JetStream, Redis Streams)
 * runs exactly these tests, also when opened for a bus on another broker
 * (test/contract/mixed.test.ts). Offsets must increase within a room; they need
 * not be contiguous, so the tests follow `prev` links instead of assuming offset+1.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AppendInput, History, HistoryInspect } from '../../src/history/types.js';
import type { ChatMessage } from '../../src/protocol/frames.js';
import { ConfabError } from '../../src/protocol/codes.js';

/** Every adapter under test also offers the test-only inspection (`rooms()`). */
export type InspectableHistory = History & HistoryInspect;

export interface HistoryFixture {
  history: InspectableHistory;
  /** Close and open the same storage again (durability across restarts), if the adapter has storage. */
  reopen?(): Promise<InspectableHistory>;
  close(): Promise<void>;
}

let n = 0;
const room = () => `r${process.pid.toString(36)}${Date.now().toString(36)}${n++}`;
const from = (user = 'u1') => ({ user, handle: `h-${user}`, node: 'n1', region: 'local' });
const input = (r: string, id: string, text = `text ${id}`, user = 'u1'): AppendInput => ({ room: r, id, kind: 'msg', text, from: from(user), ts: Date.now() });

function assertChain(msgs: ChatMessage[]): void {
  for (let i = 1; i < msgs.length; i++) {
    assert.ok(msgs[i]!.offset > msgs[i - 1]!.offset, 'offsets increase');
    assert.equal(msgs[i]!.prev, msgs[i - 1]!.offset, 'prev links to the previous message of the room');
  }
}

export function historyContract(name: string, make: (opts: { limit: number }) => Promise<HistoryFixture>): void {
  describe(`History contract: ${name}`, () => {
    const withFixture = (limit: number, fn: (f: HistoryFixture) => Promise<void>) => async () => {
      const f = await make({ limit });
      try {
        await fn(f);
      } finally {
        await f.close();
      }
    };

    it('assigns increasing offsets linked by prev, in one epoch, and keeps every field', withFixture(1000, async ({ history: h }) => {
      const r = room();
      const empty = await h.info(r);
      assert.equal(empty.last, 0);
      assert.equal(empty.first, 0);
      const stored: ChatMessage[] = [];
      for (let i = 0; i < 20; i++) stored.push((await h.append(input(r, `id${i}`, `héllo ${i} 🎉 <b>`))).message);
      assert.equal(stored[0]!.prev, 0, 'the first message of a room has prev 0');
      assertChain(stored);
      assert.ok(stored.every((m) => m.epoch === stored[0]!.epoch && m.room === r));
      const info = await h.info(r);
      assert.equal(info.last, stored[19]!.offset);
      assert.equal(info.first, stored[0]!.offset);
      assert.equal(info.epoch, stored[0]!.epoch);
      const back = (await h.read(r, 0, 100)).messages;
      assert.deepEqual(back, stored);
      assert.equal(back[3]!.text, 'héllo 3 🎉 <b>');
      assert.deepEqual(back[3]!.from, from());
    }));

    it('stores a resent id once and returns the original message', withFixture(1000, async ({ history: h }) => {
      const r = room();
      const a = await h.append(input(r, 'same', 'first'));
      await h.append(input(r, 'other'));
      const b = await h.append(input(r, 'same', 'second try'));
      assert.equal(a.duplicate, false);
      assert.equal(b.duplicate, true);
      assert.equal(b.message.offset, a.message.offset);
      assert.equal(b.message.text, 'first');
      const c = await h.append(input(r, 'same', 'from someone else', 'u2'));
      assert.equal(c.duplicate, false, 'the same id from another user is another message');
      assert.equal((await h.read(r, 0, 100)).messages.length, 3);
    }));

    it('reads exactly the messages after an offset, paged by limit with `more`', withFixture(1000, async ({ history: h }) => {
      const r = room();
      const all: ChatMessage[] = [];
      for (let i = 0; i < 25; i++) all.push((await h.append(input(r, `p${i}`))).message);
      const after = all[9]!.offset;
      const page1 = await h.read(r, after, 10);
      assert.deepEqual(page1.messages, all.slice(10, 20));
      assert.equal(page1.more, true);
      assert.equal(page1.gap, undefined);
      assert.equal(page1.last, all[24]!.offset);
      const page2 = await h.read(r, page1.messages[9]!.offset, 10);
      assert.deepEqual(page2.messages, all.slice(20));
      assert.equal(page2.more, false);
      const none = await h.read(r, all[24]!.offset, 10);
      assert.deepEqual(none.messages, []);
      assert.equal(none.gap, undefined);
      const unknown = await h.read(room(), 0, 10);
      assert.deepEqual(unknown.messages, []);
      assert.equal(unknown.last, 0);
    }));

    it('returns the newest messages ascending for recent()', withFixture(1000, async ({ history: h }) => {
      const r = room();
      const all: ChatMessage[] = [];
      for (let i = 0; i < 12; i++) all.push((await h.append(input(r, `r${i}`))).message);
      assert.deepEqual((await h.recent(r, 5)).messages, all.slice(7));
      assert.deepEqual((await h.recent(r, 50)).messages, all);
      assert.deepEqual((await h.recent(room(), 5)).messages, []);
    }));

    it('keeps rooms independent', withFixture(1000, async ({ history: h }) => {
      const r1 = room();
      const r2 = room();
      const m1: ChatMessage[] = [];
      const m2: ChatMessage[] = [];
      for (let i = 0; i < 10; i++) {
        m1.push((await h.append(input(r1, `a${i}`))).message);
        m2.push((await h.append(input(r2, `b${i}`))).message);
      }
      assertChain(m1);
      assertChain(m2);
      assert.deepEqual((await h.read(r1, 0, 100)).messages, m1);
      assert.deepEqual((await h.read(r2, 0, 100)).messages, m2);
      const rooms = await h.rooms();
      assert.ok(rooms.includes(r1) && rooms.includes(r2));
    }));

    it('reports the exact lost range when retention trimmed what a reader asks for', withFixture(10, async ({ history: h }) => {
      const r = room();
      const all: ChatMessage[] = [];
      for (let i = 0; i < 25; i++) all.push((await h.append(input(r, `t${i}`))).message);
      const res = await h.read(r, 0, 100);
      assert.deepEqual(res.messages, all.slice(15));
      assert.deepEqual(res.gap, { from: 1, to: all[14]!.offset });
      const mid = await h.read(r, all[4]!.offset, 100);
      assert.deepEqual(mid.gap, { from: all[4]!.offset + 1, to: all[14]!.offset });
      const edge = await h.read(r, all[14]!.offset, 100);
      assert.equal(edge.gap, undefined, 'reading from the edge of the window has no hole');
      assert.deepEqual(edge.messages, all.slice(15));
      assert.equal((await h.info(r)).first, all[15]!.offset);
      const again = await h.append(input(r, 't0'));
      assert.equal(again.duplicate, false, 'a trimmed id may be stored again');
    }));

    it('orders concurrent appends to one room into one chain', withFixture(1000, async ({ history: h }) => {
      const r = room();
      const results = await Promise.all(Array.from({ length: 60 }, (_, i) => h.append(input(r, `c${i}`, `c${i}`, `u${i % 3}`))));
      const offsets = results.map((x) => x.message.offset);
      assert.equal(new Set(offsets).size, 60);
      const read = (await h.read(r, 0, 100)).messages;
      assert.equal(read.length, 60);
      assertChain(read);
      assert.equal(read[0]!.prev, 0);
    }));

    it('stores appends to one room in the order they were issued, without awaiting each', withFixture(1000, async ({ history: h }) => {
      const r = room();
      const results = await Promise.all(Array.from({ length: 40 }, (_, i) => h.append(input(r, `o${i}`, `o${i}`))));
      const offsets = results.map((x) => x.message.offset);
      assert.deepEqual(offsets, [...offsets].sort((a, b) => a - b), 'issue order is storage order');
      assertChain((await h.read(r, 0, 100)).messages);
    }));

    it('rejects nothing silently: every append resolves with a stored message or throws a ConfabError', withFixture(1000, async ({ history: h }) => {
      const r = room();
      const big = 'x'.repeat(8000);
      const res = await h.append(input(r, 'big', big)).catch((e: unknown) => e);
      if (res instanceof Error) assert.ok(res instanceof ConfabError);
      else assert.equal((await h.read(r, 0, 1)).messages[0]!.text.length, 8000);
    }));

    it('keeps messages and epoch across a reopen', withFixture(1000, async (f) => {
      if (!f.reopen) return; // in-memory adapters keep nothing by design
      const r = room();
      const stored: ChatMessage[] = [];
      for (let i = 0; i < 5; i++) stored.push((await f.history.append(input(r, `d${i}`))).message);
      const h2 = await f.reopen();
      assert.deepEqual((await h2.read(r, 0, 10)).messages, stored);
      assert.equal((await h2.info(r)).epoch, stored[0]!.epoch);
      const dup = await h2.append(input(r, 'd2'));
      assert.equal(dup.duplicate, true, 'dedupe survives a reopen');
      const next = await h2.append(input(r, 'd5'));
      assert.equal(next.message.prev, stored[4]!.offset);
    }));
  });
}
