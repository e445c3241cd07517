/**
 * Three gateways in one process over the in-process broker and one shared
 * history: the multi-node guarantees without any external server.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MemoryBroker, MemoryBus } from '../../src/bus/memory.js';
import { MemoryHistory } from '../../src/history/memory.js';
import { CountingBus } from '../../src/testkit/counting-bus.js';
import { startTestGateway, type TestGateway } from '../../src/testkit/gateway.js';
import { joinRoom, RawClient } from '../../src/testkit/raw-client.js';
import { waitFor } from '../../src/procs/wait.js';
import { publishConcurrently } from '../../src/testkit/two-gateways.js';

describe('three gateways over one bus', () => {
  const broker = new MemoryBroker();
  const history = new MemoryHistory();
  const buses = [0, 1, 2].map(() => new CountingBus(new MemoryBus(broker)));
  let gws: TestGateway[] = [];
  const clients: RawClient[] = [];
  let n = 0;
  const connect = (g: TestGateway, handle = `m${n++}`) => RawClient.session(g, handle, clients);

  before(async () => {
    gws = await Promise.all(buses.map((bus, i) => startTestGateway({ bus, history, env: { CONFAB_NODE_ID: `node${i}`, CONFAB_PRESENCE_GRACE_MS: '3000', CONFAB_RATE_BURST: '500' } })));
  });
  after(async () => {
    for (const c of clients) c.close();
    for (const g of gws) await g.close();
  });

  it('delivers across nodes in one order while publishers on every node write at once (G1)', async () => {
    const members = await Promise.all(gws.map((g) => connect(g)));
    await publishConcurrently(members, 'busy', 40);
  });

  it('subscribes only where there is interest: a node without members receives none of the room', async () => {
    const a = await connect(gws[0]!);
    const b = await connect(gws[1]!);
    await joinRoom(a.c, 'quiet');
    await joinRoom(b.c, 'quiet');
    const before = buses[2]!.count('room.quiet');
    for (let i = 0; i < 20; i++) a.c.send({ t: 'pub', id: `q${i}`, room: 'quiet', text: 'x' });
    await waitFor(() => b.c.msgs('quiet').length === 20);
    assert.equal(buses[2]!.count('room.quiet'), before);
    assert.equal(before, 0);
    assert.ok(buses[1]!.count('room.quiet') >= 20);
    b.c.send({ t: 'leave', room: 'quiet' });
    await b.c.next('left');
    const onB = buses[1]!.count('room.quiet');
    a.c.send({ t: 'pub', id: 'q-after', room: 'quiet', text: 'x' });
    await a.c.next('ack', (f) => f.id === 'q-after');
    await a.c.next('msg', (m) => m.id === 'q-after');
    assert.equal(buses[1]!.count('room.quiet'), onB, 'the subscription is dropped with the last member');
    assert.ok(!gws[1]!.gw.core.hub.localRooms().has('quiet'));
  });

  it('shows presence across nodes, and a user moving node is not shown leaving', async () => {
    const a = await connect(gws[0]!, 'watcher');
    await joinRoom(a.c, 'pres');
    const b = await connect(gws[1]!, 'mover');
    await joinRoom(b.c, 'pres');
    const seen = await a.c.next('presence', (p) => p.user.handle === 'mover');
    assert.equal(seen.event, 'join');
    b.c.close();
    const b2 = await RawClient.connect(gws[2]!.wsUrl, b.s.token);
    clients.push(b2);
    const j = await joinRoom(b2, 'pres');
    assert.ok(j.members.some((m) => m.handle === 'watcher'));
    // marker: a message published after the move reaches the watcher; no leave/join for mover before it
    b2.send({ t: 'pub', id: 'moved', room: 'pres', text: 'I moved' });
    await a.c.next('msg', (m) => m.id === 'moved');
    assert.deepEqual(a.c.all('presence').filter((p) => p.user.handle === 'mover').map((p) => p.event), ['join']);
  });

  it('resumes on another node with exactly the missed messages (G2)', async () => {
    const w = await connect(gws[0]!);
    await joinRoom(w.c, 'hop');
    const r = await connect(gws[1]!);
    const j = await joinRoom(r.c, 'hop');
    for (let i = 0; i < 5; i++) w.c.send({ t: 'pub', id: `h${i}`, room: 'hop', text: `h${i}` });
    await waitFor(() => r.c.msgs('hop').length === 5);
    const lastSeen = r.c.msgs('hop').at(-1)!.offset;
    r.c.close();
    for (let i = 5; i < 12; i++) w.c.send({ t: 'pub', id: `h${i}`, room: 'hop', text: `h${i}` });
    await w.c.next('ack', (a) => a.id === 'h11');
    const r2 = await RawClient.connect(gws[2]!.wsUrl, r.s.token);
    clients.push(r2);
    const j2 = await joinRoom(r2, 'hop', { epoch: j.epoch, offset: lastSeen });
    assert.equal(j2.recovered, true);
    w.c.send({ t: 'pub', id: 'live', room: 'hop', text: 'live' });
    await r2.next('msg', (m) => m.id === 'live');
    assert.deepEqual(r2.msgs('hop').map((m) => m.text), [...Array.from({ length: 7 }, (_, i) => `h${i + 5}`), 'live']);
  });

  it('fills a hole from history when the bus lost a message', async () => {
    const a = await connect(gws[0]!);
    const b = await connect(gws[1]!);
    await joinRoom(a.c, 'lossy');
    await joinRoom(b.c, 'lossy');
    // store a message without fanning it out (as if the bus dropped it), then a normal one
    await history.append({ room: 'lossy', id: 'ghost', kind: 'msg', text: 'only in history', from: { user: 'x', handle: 'x', node: 'x', region: 'x' }, ts: Date.now() });
    a.c.send({ t: 'pub', id: 'next', room: 'lossy', text: 'next' });
    await waitFor(() => b.c.msgs('lossy').length === 2, { what: 'both messages on the other node' });
    assert.deepEqual(b.c.msgs('lossy').map((m) => m.id), ['ghost', 'next']);
  });
});
