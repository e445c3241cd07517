/**
 * Issue 11 item 3: a resume replays at most CONFAB_REPLAY_MAX messages; beyond it `joined.missed`
 * names exactly what was skipped on purpose (still stored), and the `history` frame pages it back:
 * 5,000 missed messages of 2,000 characters are caught up with nothing lost or duplicated and no
 * 4001. Also: `history` answers in request order, refuses rooms not joined and bad limits, and the
 * SDK exposes `missed` and `client.history()`. Runs with the room cache on and off.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { ConfabClient, MemoryStorage, type MissedEvent } from '../../src/client/index.js';
import { startTestGateway, type TestGateway } from '../../src/testkit/gateway.js';
import { RawClient } from '../../src/testkit/raw-client.js';
import { waitFor } from '../../src/procs/wait.js';
import { checkServerFrame } from '../../src/protocol/schema.js';

const from = { user: 'u-writer', handle: 'writer', node: 'n', region: 'r' };

describe('a resume of 5,000 missed messages: bounded replay, exact missed, paged catch-up', () => {
  let t: TestGateway;
  const clients: RawClient[] = [];
  before(async () => {
    t = await startTestGateway({ env: { CONFAB_HISTORY_LIMIT: '10000', CONFAB_RATE_BURST: '100', CONFAB_RATE_PER_SEC: '100' } });
  });
  after(async () => {
    for (const c of clients) c.ws.terminate();
    await t?.close();
  });

  it('replays the newest 300, names the 4,700 skipped, and pages them back whole', async () => {
    const { c: reader, s } = await RawClient.session(t, 'returning', clients);
    reader.send({ t: 'join', room: 'long' });
    const joined = await reader.next('joined');
    reader.ws.close();
    const text = 'z'.repeat(2000);
    for (let i = 0; i < 5000; i++) await t.gw.core.history.append({ room: 'long', id: `m${i}`, kind: 'msg', text, from, ts: Date.now() });
    const back = await RawClient.connect(t.wsUrl, s.token);
    clients.push(back);
    back.send({ t: 'join', room: 'long', since: { epoch: joined.epoch, offset: joined.last } });
    const again = await back.next('joined');
    const base = joined.last;
    assert.equal(again.recovered, false, 'not all was replayed: not recovered');
    assert.equal(again.gap, undefined, 'nothing was lost');
    assert.deepEqual(again.missed, { from: base + 1, to: base + 4700 });
    await waitFor(() => back.msgs('long').length === 300, { what: 'the bounded replay' });
    assert.deepEqual(back.msgs('long').map((m) => m.offset), Array.from({ length: 300 }, (_, i) => base + 4701 + i));
    // page the skipped range back, newest first, 200 a page
    const paged: number[] = [];
    let beforeOffset = again.missed!.to + 1;
    for (;;) {
      back.send({ t: 'history', room: 'long', before: beforeOffset, limit: 200 });
      const h = await back.next('history');
      assert.equal(h.before, beforeOffset);
      assert.ok(h.msgs.length > 0 && h.msgs.length <= 200);
      assert.ok(h.msgs.every((m, i) => m.t === 'msg' && m.offset < beforeOffset && (i === 0 || m.offset > h.msgs[i - 1]!.offset)), 'ascending, all older than before');
      paged.unshift(...h.msgs.map((m) => m.offset));
      beforeOffset = h.msgs[0]!.offset;
      if (beforeOffset <= again.missed!.from) {
        assert.equal(h.more, base > 0, 'more only when older messages exist');
        break;
      }
      assert.equal(h.more, true);
    }
    const got = paged.filter((o) => o >= again.missed!.from);
    assert.deepEqual(got, Array.from({ length: 4700 }, (_, i) => base + 1 + i), 'every skipped message once, in order');
    assert.equal(back.closeCode, undefined, 'never closed (no 4001)');
    const one = back.all('history')[0]!;
    assert.ok(checkServerFrame(JSON.stringify(one)).ok, 'the history frame matches the protocol schema');
  });
});

for (const cache of ['256', '0']) {
  describe(`history frames (room cache ${cache})`, () => {
    let t: TestGateway;
    const clients: RawClient[] = [];
    const sdk: ConfabClient[] = [];
    before(async () => {
      t = await startTestGateway({ env: { CONFAB_ROOM_CACHE: cache, CONFAB_REPLAY_MAX: '20', CONFAB_RATE_BURST: '200', CONFAB_RATE_PER_SEC: '200' } });
    });
    after(async () => {
      for (const c of sdk) c.close();
      for (const c of clients) c.ws.terminate();
      await t?.close();
    });

    it('pages older messages in request order; refuses rooms not joined and bad limits', async () => {
      const { c } = await RawClient.session(t, `pager${cache}`, clients);
      c.send({ t: 'join', room: 'pages' });
      await c.next('joined');
      for (let i = 1; i <= 30; i++) c.send({ t: 'pub', id: `p${i}`, room: 'pages', text: `p${i}` });
      await c.next('ack', (a) => a.id === 'p30', 10_000);
      c.send({ t: 'history', room: 'pages' });
      c.send({ t: 'history', room: 'pages', before: 11, limit: 5 });
      c.send({ t: 'history', room: 'pages', before: 3 });
      c.send({ t: 'history', room: 'nowhere' });
      c.send({ t: 'history', room: 'pages', limit: 201 });
      const [h1, h2, h3] = [await c.next('history'), await c.next('history'), await c.next('history')];
      assert.deepEqual([h1.before, h1.msgs.length, h1.msgs[0]!.offset, h1.msgs.at(-1)!.offset, h1.more], [31, 30, 1, 30, false]);
      assert.deepEqual([h2.before, h2.msgs.map((m) => m.offset), h2.more], [11, [6, 7, 8, 9, 10], true]);
      assert.deepEqual([h3.before, h3.msgs.map((m) => m.text), h3.more], [3, ['p1', 'p2'], false]);
      assert.deepEqual(h2.msgs[0], { ...c.msgs('pages').find((m) => m.offset === 6)! }, 'exactly as delivered live');
      const order = c.frames.filter((f) => f.t === 'history').map((f) => (f as { before: number }).before);
      assert.deepEqual(order, [31, 11, 3], 'answers in request order');
      const notJoined = await c.next('error', (e) => e.room === 'nowhere');
      assert.equal(notJoined.code, 'not_joined');
      const bad = await c.next('error', (e) => e.code === 'bad_frame');
      assert.match(bad.message, /limit/);
      // a resume from the start: more than CONFAB_REPLAY_MAX (20) to replay, answered from the cache or history alike
      const { c: r } = await RawClient.session(t, `resumer${cache}`, clients);
      r.send({ t: 'join', room: 'pages', since: { epoch: h1.msgs[0]!.epoch, offset: 0 } });
      const j = await r.next('joined');
      assert.deepEqual([j.recovered, j.missed, j.gap], [false, { from: 1, to: 10 }, undefined]);
      await waitFor(() => r.msgs('pages').length === 20, { what: 'the newest 20' });
      assert.deepEqual(r.msgs('pages').map((m) => m.offset), Array.from({ length: 20 }, (_, i) => 11 + i));
    });

    it('the SDK emits missed on a bounded resume and pages with history()', async () => {
      const s = await (await fetch(`${t.url}/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ handle: `sdk${cache}` }) })).json() as { token: string };
      const client = new ConfabClient({ url: t.url, token: s.token, WebSocket, storage: new MemoryStorage(), backoff: { minMs: 50, maxMs: 200 }, pingIntervalMs: 0 });
      sdk.push(client);
      const missed: MissedEvent[] = [];
      const seen: number[] = [];
      client.on('missed', (m) => missed.push(m));
      client.on('message', (m) => m.room === 'sdk' && seen.push(m.offset));
      client.connect();
      const first = await client.join('sdk');
      assert.equal(first.missed, undefined);
      await t.gw.core.publish({ room: 'sdk', id: 's0', kind: 'msg', text: 's0', from });
      await waitFor(() => seen.length === 1, { what: 'a position to resume from' });
      client.close();
      seen.length = 0;
      for (let i = 1; i <= 100; i++) await t.gw.core.publish({ room: 'sdk', id: `s${i}`, kind: 'msg', text: `s${i}`, from });
      client.connect();
      await waitFor(() => missed.length === 1 && seen.length === 20, { what: 'missed and the bounded replay' });
      assert.deepEqual(missed[0], { room: 'sdk', from: 2, to: 81 });
      assert.deepEqual(seen, Array.from({ length: 20 }, (_, i) => 82 + i), 'only the newest 20, no gap event needed');
      const pages: number[] = [];
      let beforeOffset = missed[0]!.to + 1;
      let more = true;
      while (more) {
        const p = await client.history('sdk', { before: beforeOffset, limit: 30 });
        assert.ok(p.messages.length > 0);
        pages.unshift(...p.messages.map((m) => m.offset));
        assert.equal(p.messages[0]!.from.handle, 'writer');
        beforeOffset = p.messages[0]!.offset;
        more = p.more;
      }
      assert.deepEqual(pages, Array.from({ length: 81 }, (_, i) => i + 1));
      await assert.rejects(client.history('elsewhere'), (e: { code: string }) => e.code === 'not_joined');
      await assert.rejects(client.history('sdk', { limit: 0 }), (e: { code: string }) => e.code === 'bad_frame');
    });
  });
}
