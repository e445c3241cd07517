import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStorage, RoomCursors, type ChatMessage } from '../../src/client/index.js';

const from = { user: 'u1', handle: 'ann', node: 'n1', region: 'local' };
const msg = (offset: number, prev: number, id = `m${offset}`, epoch = 'e1', room = 'lobby'): ChatMessage => ({
  room, offset, prev, epoch, id, kind: 'msg', text: id, from, ts: 0,
});

test('dedupe: offsets at or below the last seen are dropped; positions persist', () => {
  const storage = new MemoryStorage();
  const c = new RoomCursors(storage, 'pos');
  c.add('lobby');
  c.joined('lobby', 'e1');
  assert.equal(c.accept(msg(5, 4)).deliver, true, 'first after a fresh join: baseline, no hole');
  assert.equal(c.accept(msg(6, 5)).deliver, true);
  assert.deepEqual(c.accept(msg(6, 5, 'other')), { deliver: false, reason: 'old_offset' });
  assert.deepEqual(c.accept(msg(3, 2, 'older')), { deliver: false, reason: 'old_offset' });
  assert.deepEqual(c.since('lobby'), { epoch: 'e1', offset: 6 });
  const reloaded = new RoomCursors(storage, 'pos');
  assert.deepEqual(reloaded.since('lobby'), { epoch: 'e1', offset: 6 });
  assert.deepEqual(reloaded.accept(msg(6, 5)), { deliver: false, reason: 'old_offset' }, 'a replay after reload is deduped');
});

test('dedupe: the same (sender, id) is dropped even at a new offset', () => {
  const c = new RoomCursors(new MemoryStorage(), 'pos');
  c.add('lobby');
  c.joined('lobby', 'e1');
  assert.equal(c.accept(msg(1, 0, 'same')).deliver, true);
  assert.deepEqual(c.accept(msg(2, 1, 'same')), { deliver: false, reason: 'dup_id' });
  assert.equal(c.accept({ ...msg(3, 2, 'same'), from: { ...from, user: 'u2' } }).deliver, true, 'another sender may reuse an id');
});

test('dedupe: a hole in prev is reported, but not after a fresh join, an announced gap or a reset', () => {
  const c = new RoomCursors(new MemoryStorage(), 'pos');
  c.add('lobby');
  c.joined('lobby', 'e1');
  assert.deepEqual(c.accept(msg(10, 9)), { deliver: true });
  assert.deepEqual(c.accept(msg(14, 12)), { deliver: true, hole: { from: 11, to: 12 } });
  c.joined('lobby', 'e1', { gap: true });
  assert.deepEqual(c.accept(msg(20, 19)), { deliver: true }, 'gap already announced by joined');
  assert.deepEqual(c.joined('lobby', 'e2'), { reset: true });
  assert.deepEqual(c.since('lobby'), { epoch: 'e2', offset: 0 });
  assert.deepEqual(c.accept(msg(1, 0, 'm1', 'e2')), { deliver: true }, 'new epoch: offsets restart');
});

test('dedupe: messages for rooms not joined are dropped; rooms are independent', () => {
  const c = new RoomCursors(new MemoryStorage(), 'pos');
  c.add('a');
  c.add('b');
  c.joined('a', 'e1');
  c.joined('b', 'e1');
  assert.deepEqual(c.accept(msg(1, 0, 'x', 'e1', 'zzz')), { deliver: false, reason: 'not_joined' });
  assert.equal(c.accept(msg(5, 0, 'x', 'e1', 'a')).deliver, true);
  assert.equal(c.accept(msg(2, 0, 'y', 'e1', 'b')).deliver, true, 'offset 2 in b is new even though a is at 5');
  c.remove('a');
  assert.equal(c.has('a'), false);
  assert.deepEqual(c.rooms(), ['b']);
});

test('positions: corrupt storage falls back to nothing joined', () => {
  const s = new MemoryStorage();
  s.setItem('pos', '{"lobby":{"epoch":1,"offset":"x"}}');
  assert.deepEqual(new RoomCursors(s, 'pos').rooms(), []);
  s.setItem('pos', '[]');
  assert.deepEqual(new RoomCursors(s, 'pos').rooms(), []);
});
