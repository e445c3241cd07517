import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfabClient, ID_RE, MemoryStorage, Outbox, newMessageId, type OutboxEntry } from '../../src/client/index.js';

const entry = (id: string, text = id): OutboxEntry => ({ id, kind: 'msg', room: 'lobby', text, createdAt: 1 });

test('outbox: keeps send order and persists every change', () => {
  const storage = new MemoryStorage();
  const a = new Outbox(storage, 'k');
  a.add(entry('1'));
  a.add(entry('2'));
  a.add(entry('3'));
  a.add(entry('2', 'again')); // same id: ignored
  assert.deepEqual(a.list().map((e) => e.id), ['1', '2', '3']);
  a.remove('2');
  const b = new Outbox(storage, 'k'); // a "reload"
  assert.deepEqual(b.list().map((e) => e.text), ['1', '3']);
  b.remove('1');
  b.remove('3');
  assert.equal(storage.getItem('k'), null, 'an empty outbox removes its key');
  assert.equal(b.remove('nope'), undefined);
});

test('outbox: corrupt or foreign storage content gives an empty outbox, never a throw', () => {
  const storage = new MemoryStorage();
  for (const bad of ['{', '"x"', '[{"id":1}]', '{"__proto__":{}}', 'null']) {
    storage.setItem('k', bad);
    assert.deepEqual(new Outbox(storage, 'k').list(), []);
  }
  const throwing = { getItem: () => { throw new Error('denied'); }, setItem: () => { throw new Error('full'); }, removeItem: () => {} };
  const o = new Outbox(throwing, 'k');
  o.add(entry('1'));
  assert.equal(o.size, 1, 'a failing storage still keeps the entry in memory');
});

test('outbox: removeWhere removes matching entries and keeps the rest in order', () => {
  const o = new Outbox(new MemoryStorage(), 'k');
  for (const id of ['a', 'b', 'c', 'd']) o.add({ ...entry(id), room: id === 'b' || id === 'd' ? 'x' : 'lobby' });
  assert.deepEqual(o.removeWhere((e) => e.room === 'x').map((e) => e.id), ['b', 'd']);
  assert.deepEqual(o.list().map((e) => e.id), ['a', 'c']);
});

test('message ids match the protocol ID_RE and are unique', () => {
  const ids = new Set<string>();
  for (let i = 0; i < 1000; i++) {
    const id = newMessageId();
    assert.match(id, ID_RE);
    ids.add(id);
  }
  assert.equal(ids.size, 1000);
});

/** A WebSocket that never opens: the client stays 'connecting' and queues. */
class NeverOpens {
  static made = 0;
  readyState = 0;
  onopen = null;
  onmessage = null;
  onclose = null;
  onerror = null;
  constructor() {
    NeverOpens.made++;
  }
  send(): void {
    throw new Error('not open');
  }
  close(): void {}
}

test('client: send while not connected queues in order in storage; a new client on the same storage sees the queue', async () => {
  const storage = new MemoryStorage();
  const c1 = new ConfabClient({ url: 'http://127.0.0.1:9', token: 't', WebSocket: NeverOpens, storage, watchNetwork: false });
  await assert.rejects(c1.send('lobby', 'x'), (e: { code?: string }) => e.code === 'not_joined');
  void c1.join('lobby').catch(() => {});
  const p1 = c1.send('lobby', 'first');
  const p2 = c1.send('lobby', 'second');
  const p3 = c1.alert('alert!');
  assert.deepEqual(c1.pending.map((e) => [e.kind, e.room, e.text]), [
    ['msg', 'lobby', 'first'],
    ['msg', 'lobby', 'second'],
    ['alert', '_alerts', 'alert!'],
  ]);
  c1.close();
  await assert.rejects(p1, (e: { code?: string }) => e.code === 'closed');
  await assert.rejects(p2);
  await assert.rejects(p3);
  const c2 = new ConfabClient({ url: 'http://127.0.0.1:9', token: 't', WebSocket: NeverOpens, storage, watchNetwork: false });
  assert.deepEqual(c2.pending.map((e) => e.text), ['first', 'second', 'alert!'], 'queue survives a "reload"');
  assert.deepEqual(c2.rooms, ['lobby'], 'joined rooms survive too');
  c2.leave('lobby');
  assert.deepEqual(c2.pending.map((e) => e.text), ['alert!'], 'leaving drops that room\'s queue');
  assert.equal(NeverOpens.made, 0, 'nothing connects before connect()');
  c2.close();
});

test('client: join rejects bad room names with a typed error', async () => {
  const c = new ConfabClient({ url: 'http://127.0.0.1:9', token: 't', WebSocket: NeverOpens, watchNetwork: false });
  for (const bad of ['', 'UPPER', '_alerts', 'a'.repeat(40), '__proto__', '<img>']) {
    await assert.rejects(c.join(bad), (e: { code?: string }) => e.code === 'bad_room', bad);
  }
  // without a WebSocket (Node 20 has none), a forced WebSocket transport is refused; 'auto' then uses the HTTP fallback
  assert.throws(() => new ConfabClient({ url: 'http://x', token: 't', transport: 'websocket' }), /WebSocket/);
  assert.equal(new ConfabClient({ url: 'http://x', token: 't', watchNetwork: false }).state, 'idle');
  assert.throws(() => new ConfabClient({ url: 'mailto:x', token: 't', WebSocket: NeverOpens }), TypeError);
  c.close();
});
