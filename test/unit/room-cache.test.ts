/**
 * Issue 11 item 1 (room cache): the encoded caches of every room on a node stay within
 * CONFAB_CACHE_BYTES, least recently used rooms going first; the node's memory follows the
 * budget, not the number of rooms times the per-room count.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import { MemoryBroker, MemoryBus } from '../../src/bus/memory.js';
import { RoomHub, type RoomMember } from '../../src/gateway/hub.js';
import { CacheBudget, ENTRY_OVERHEAD, RoomCache } from '../../src/gateway/room-cache.js';
import { MemoryHistory } from '../../src/history/memory.js';

const from = { user: 'u', handle: 'h', node: 'n', region: 'r' };
const member = (id: string): RoomMember => ({ user: { id, handle: id }, gone: false, write: () => {}, backlog: () => 0, drained: async () => {}, ownEcho: () => false, lost: () => {} });
const frame = (n: number) => Buffer.alloc(n);

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
/** Heap and buffer memory after a full collection (buffers are freed a little after their objects). */
const used = async () => {
  gc();
  await new Promise((r) => setTimeout(r, 100));
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};

describe('room cache: one chain per room, one byte budget per node', () => {
  it('keeps an unbroken chain within its count and answers only what it can prove', () => {
    const budget = new CacheBudget(1 << 20);
    const c = new RoomCache(3, budget);
    for (let o = 1; o <= 5; o++) c.push({ offset: o, prev: o - 1, frame: frame(10) });
    assert.deepEqual(c.list().map((m) => m.offset), [3, 4, 5]);
    assert.equal(budget.bytes, 3 * (10 + ENTRY_OVERHEAD));
    assert.deepEqual(c.after(2)?.map((m) => m.offset), [3, 4, 5]);
    assert.equal(c.after(1), undefined, 'older than the chain');
    assert.deepEqual(c.before(5, 2)?.map((m) => m.offset), [3, 4]);
    assert.equal(c.before(4, 2), undefined, 'the page would reach past the chain');
    c.push({ offset: 9, prev: 7, frame: frame(10) }); // a break: the chain starts over
    assert.deepEqual(c.list().map((m) => m.offset), [9]);
    assert.equal(budget.bytes, 10 + ENTRY_OVERHEAD);
    c.clear();
    assert.equal(budget.bytes, 0);
  });

  it('sheds the least recently used rooms first, then the growing room\'s oldest entries', () => {
    const per = 1000 + ENTRY_OVERHEAD;
    const budget = new CacheBudget(10 * per);
    const [a, b, c] = [new RoomCache(100, budget), new RoomCache(100, budget), new RoomCache(100, budget)];
    for (let o = 1; o <= 4; o++) a.push({ offset: o, prev: o - 1, frame: frame(1000) });
    for (let o = 1; o <= 4; o++) b.push({ offset: o, prev: o - 1, frame: frame(1000) });
    a.touch(); // a answered a join: b is now the least recently used
    for (let o = 1; o <= 4; o++) c.push({ offset: o, prev: o - 1, frame: frame(1000) });
    assert.ok(budget.bytes <= budget.maxBytes);
    assert.equal(a.size, 4, 'recently used room kept whole');
    assert.equal(b.size, 2, 'least recently used room shed its oldest entries');
    assert.deepEqual(b.list().map((m) => m.offset), [3, 4], 'what is left is still a chain ending at the newest');
    for (let o = 5; o <= 20; o++) c.push({ offset: o, prev: o - 1, frame: frame(1000) });
    assert.equal(a.size + b.size, 0, 'other rooms went first');
    assert.equal(c.size, 10);
    assert.equal(budget.bytes, 10 * per);
    assert.equal(budget.rooms, 1);
  });

  it('200 rooms of 2,000-character messages stay within the node budget; memory follows the budget', async () => {
    const budgetBytes = 2 * 1024 * 1024;
    const history = new MemoryHistory(5);
    const bus = new MemoryBus(new MemoryBroker());
    const hub = new RoomHub({ node: 'n1', bus, history, cacheSize: 256, cacheBytes: budgetBytes, recentOnJoin: 0 });
    const text = 'x'.repeat(2000);
    const members = Array.from({ length: 200 }, (_, i) => member(`m${i}`));
    await Promise.all(members.map((m, i) => hub.join(`room${i}`, m)));
    const before = await used();
    let peak = 0;
    for (let round = 0; round < 25; round++) {
      for (let i = 0; i < 200; i++) await hub.published((await history.append({ room: `room${i}`, id: `r${round}`, kind: 'msg', text, from, ts: 0 })).message);
      peak = Math.max(peak, hub.budget.bytes);
    }
    const grown = (await used()) - before;
    // unbounded, the caches alone would hold 200 rooms × 25 frames × ~2.2 KB ≈ 11 MB
    assert.ok(peak <= budgetBytes, `accounted ${peak} ≤ ${budgetBytes}`);
    assert.ok(hub.budget.bytes > budgetBytes / 2, 'the budget is used, not left empty');
    assert.ok(grown < 7 * 1024 * 1024, `memory grew ${(grown / 1048576).toFixed(1)} MB (cache budget 2 MB; history keeps 5 a room)`);
    // each room keeps its newest few (the budget shed everyone's oldest); a resume from further back reads history
    assert.deepEqual(hub.cachedAfter('room199', 22)?.msgs.map((m) => m.offset), [23, 24, 25]);
    assert.equal(hub.cachedAfter('room0', 5), undefined);
    hub.close();
    assert.equal(hub.budget.bytes, 0, 'closed rooms give their bytes back');
    await bus.close();
  });
});
