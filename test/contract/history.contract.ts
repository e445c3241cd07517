/**
 * The History contract: every adapter (memory, LMDB, JetStream, Redis Streams, PostgreSQL)
 * runs exactly these tests, also when opened for a bus on another broker
 * (test/contract/mixed.test.ts). Offsets must increase within a room; they need
 * not be contiguous, so the tests follow `prev` links instead of assuming offset+1.
 * Retention (count, bytes, age) and the dedupe window are part of the contract: a fixture
 * is made with the Retention it must apply (docs/retention.md).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { storedBytes } from '../../src/history/common.js';
import type { AppendInput, History, HistoryInspect, Retention } from '../../src/history/types.js';
import { waitFor } from '../../src/procs/wait.js';
import type { ChatMessage } from '../../src/protocol/frames.js';
import { ConfabError } from '../../src/protocol/codes.js';

/** Every adapter under test also offers the test-only inspection (`rooms()`). */
export type InspectableHistory = History & HistoryInspect;

export interface HistoryFixture {
  history: InspectableHistory;
  /** Close and open the same storage again (durability across restarts), if the adapter has storage. */
  reopen?(): Promise<InspectableHistory>;
  /** Run retention now (adapters that sweep); JetStream expires by itself and has none. */
  sweep?(): Promise<unknown>;
  close(): Promise<void>;
}

/** What the tests run with unless they say otherwise: no age or byte limit, ids kept 10 minutes. */
const BASE: Retention = { limit: 1000, maxAgeMs: 0, maxBytes: 0, dedupeWindowMs: 600_000 };
/** The stored size of one 200-character test message (the byte budget test's unit). */
const ONE = storedBytes({ id: 'b00', kind: 'msg', text: 'y'.repeat(200), from: { user: 'u1', handle: 'h-u1', node: 'n1', region: 'local' } });

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

export function historyContract(name: string, make: (opts: Retention) => Promise<HistoryFixture>): void {
  describe(`History contract: ${name}`, () => {
    const withFixture = (opts: number | Partial<Retention>, fn: (f: HistoryFixture) => Promise<void>) => async () => {
      const f = await make({ ...BASE, ...(typeof opts === 'number' ? { limit: opts } : opts) });
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

    it('stores a resent id once and returns the original message; other content under that id is duplicate_id_conflict', withFixture(1000, async ({ history: h }) => {
      const r = room();
      const a = await h.append(input(r, 'same', 'first'));
      await h.append(input(r, 'other'));
      const b = await h.append(input(r, 'same', 'first'));
      assert.equal(a.duplicate, false);
      assert.equal(b.duplicate, true);
      assert.equal(b.message.offset, a.message.offset);
      assert.equal(b.message.text, 'first');
      await assert.rejects(h.append(input(r, 'same', 'second try')), (e: unknown) => e instanceof ConfabError && e.code === 'duplicate_id_conflict');
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
    }));

    it('remembers an id for the dedupe window after its message was trimmed: a resend is dup with the original offset, other content a conflict', withFixture(10, async ({ history: h }) => {
      const r = room();
      const all: ChatMessage[] = [];
      for (let i = 0; i < 40; i++) all.push((await h.append(input(r, `w${i}`))).message);
      assert.equal((await h.info(r)).first, all[30]!.offset, 'the first 30 were trimmed');
      const again = await h.append(input(r, 'w0'));
      assert.equal(again.duplicate, true, 'a trimmed message resent within the window is not stored again');
      assert.equal(again.message.offset, all[0]!.offset);
      assert.equal(again.message.id, 'w0');
      await assert.rejects(h.append(input(r, 'w1', 'not what w1 said')), (e: unknown) => e instanceof ConfabError && e.code === 'duplicate_id_conflict');
      const after = await h.read(r, 0, 100);
      assert.equal(after.last, all[39]!.offset, 'nothing stored');
      assert.deepEqual(after.messages, all.slice(30));
    }));

    it('keeps a room within its byte budget, oldest first, and reports what it dropped', withFixture({ maxBytes: ONE * 5 + 10 }, async ({ history: h }) => {
      const r = room();
      const all: ChatMessage[] = [];
      for (let i = 0; i < 20; i++) all.push((await h.append(input(r, `b${String(i).padStart(2, '0')}`, 'y'.repeat(200)))).message);
      const res = await h.read(r, 0, 100);
      assert.deepEqual(res.messages, all.slice(15), 'the newest five fit');
      assert.deepEqual(res.gap, { from: 1, to: all[14]!.offset });
      assert.equal((await h.info(r)).first, all[15]!.offset);
      const big = await h.append(input(r, 'huge', 'z'.repeat(ONE * 8)));
      assert.equal(big.duplicate, false);
      assert.deepEqual((await h.read(r, 0, 100)).messages.map((m) => m.id), ['huge'], 'a message over the budget alone is kept (the newest always is)');
    }));

    it('drops messages past the max age; a room with nothing left forgets its ids, and its offsets never go back', withFixture({ limit: 1000, maxAgeMs: 1000, dedupeWindowMs: 1000 }, async ({ history: h, sweep }) => {
      const r = room();
      const old: ChatMessage[] = [];
      for (let i = 0; i < 3; i++) old.push((await h.append(input(r, `g${i}`))).message);
      await waitFor(async () => {
        await sweep?.();
        return (await h.read(r, 0, 10)).messages.length === 0;
      }, { what: 'the aged messages dropped', timeoutMs: 20_000, intervalMs: 200 });
      const reader = await h.read(r, old[0]!.offset, 10);
      assert.deepEqual(reader.messages, []);
      // the ids expired with the window: the same id is a new message now, numbered above everything the room had
      await waitFor(async () => {
        await sweep?.();
        return true;
      }, { what: 'a sweep', timeoutMs: 5_000 });
      const fresh = await h.append(input(r, 'g0', 'text g0'));
      assert.equal(fresh.duplicate, false, 'an id past its window is stored again');
      assert.ok(fresh.message.offset > old[2]!.offset, 'offsets never go back');
      const resumed = await h.read(r, old[0]!.offset, 10);
      assert.deepEqual(resumed.messages.map((m) => m.id), ['g0']);
      assert.ok(resumed.gap !== undefined && resumed.gap.from === old[0]!.offset + 1 && resumed.gap.to >= old[2]!.offset, `the reader who saw ${old[0]!.offset} is told what aged out: ${JSON.stringify(resumed.gap)}`);
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

/** The environment that makes an adapter opened through the config apply `r` (seconds rounded up). */
export function retentionEnv(r: Retention): Record<string, string> {
  return {
    CONFAB_HISTORY_LIMIT: String(r.limit),
    CONFAB_HISTORY_MAX_AGE_S: String(Math.ceil(r.maxAgeMs / 1000)),
    CONFAB_HISTORY_MAX_BYTES: String(r.maxBytes),
    CONFAB_DEDUPE_WINDOW_S: String(Math.max(1, Math.ceil(r.dedupeWindowMs / 1000))),
  };
}
