/**
 * The sender's echo (docs/protocol.md §3): by default the sender gets its own message as `msg`
 * before its `ack`; with `/ws?echo=0` it gets the `ack` alone, which carries everything the
 * message had that the sender did not know (offset, prev, epoch, ts). Other members, and the
 * same user's other sockets, always get the `msg`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createSession, startTestGateway, type TestGateway } from '../../src/testkit/gateway.js';
import { RawClient } from '../../src/testkit/raw-client.js';

describe('the sender echo', () => {
  let t: TestGateway;
  const clients: RawClient[] = [];
  before(async () => {
    t = await startTestGateway();
  });
  after(async () => {
    for (const c of clients) c.ws.terminate();
    await t?.close();
  });

  it('echo on (default): own msg before the ack; echo=0: the ack alone, with prev and ts; others always get the msg', async () => {
    const s = await createSession(t.url, 'echoer');
    const quiet = await RawClient.connect(`${t.wsUrl}?echo=0`, s.token);
    const loud = await RawClient.connect(t.wsUrl, s.token); // the same user on another socket
    const { c: other } = await RawClient.session(t, 'listener', clients);
    clients.push(quiet, loud);
    for (const c of [quiet, loud, other]) {
      c.send({ t: 'join', room: 'echo' });
      await c.next('joined');
    }
    loud.send({ t: 'pub', id: 'e1', room: 'echo', text: 'with echo' });
    const a1 = await loud.next('ack', (a) => a.id === 'e1');
    const i1 = loud.frames.findIndex((f) => f.t === 'msg' && f.id === 'e1');
    assert.ok(i1 >= 0 && i1 < loud.frames.indexOf(a1), 'the echo comes before the ack');

    quiet.send({ t: 'pub', id: 'e2', room: 'echo', text: 'no echo' });
    const a2 = await quiet.next('ack', (a) => a.id === 'e2');
    assert.equal(a2.prev, a1.offset, 'the ack names the previous offset');
    assert.ok(a2.ts > 0);
    const m2 = await other.next('msg', (m) => m.id === 'e2');
    assert.deepEqual([m2.offset, m2.prev, m2.epoch, m2.ts], [a2.offset, a2.prev, a2.epoch, a2.ts], 'the ack carries what the msg had');
    await loud.next('msg', (m) => m.id === 'e2'); // the same user's other socket still sees it
    other.send({ t: 'pub', id: 'e3', room: 'echo', text: 'from someone else' });
    await quiet.next('msg', (m) => m.id === 'e3');
    assert.equal(quiet.frames.filter((f) => f.t === 'msg' && f.id === 'e2').length, 0, 'no echo of its own message');
    assert.deepEqual(quiet.msgs('echo').map((m) => m.id), ['e1', 'e3']);
  });
});
