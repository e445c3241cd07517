/**
 * R6: resume at the edges of the history window. A client is never told
 * `recovered` when messages it missed are gone; the lost range is exact.
 * Runs with the room cache on and off (memory and history answer alike).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createSession, startTestGateway, type TestGateway } from '../../src/testkit/gateway.js';
import { RawClient } from '../../src/testkit/raw-client.js';
import { waitFor } from '../../src/procs/wait.js';

for (const cache of ['256', '0']) {
  describe(`resume at the edges of the history window (room cache ${cache})`, () => {
    let t: TestGateway;
    const clients: RawClient[] = [];
    let epoch = '';
    let n = 0;
    const connect = async () => {
      const c = await RawClient.connect(t.wsUrl, (await createSession(t.url, `edge${n++}`)).token);
      clients.push(c);
      return c;
    };
    before(async () => {
      t = await startTestGateway({ env: { CONFAB_HISTORY_LIMIT: '5', CONFAB_ROOM_CACHE: cache, CONFAB_RATE_BURST: '100' } });
      const w = await connect();
      w.send({ t: 'join', room: 'edge' });
      epoch = (await w.next('joined')).epoch;
      for (let i = 1; i <= 12; i++) w.send({ t: 'pub', id: `e${i}`, room: 'edge', text: `e${i}` });
      await w.next('ack', (a) => a.id === 'e12');
    });
    after(async () => {
      for (const c of clients) c.close();
      await t.close();
    });
    const resume = async (offset: number) => {
      const c = await connect();
      c.send({ t: 'join', room: 'edge', since: { epoch, offset } });
      const j = await c.next('joined');
      await waitFor(() => c.msgs('edge').at(-1)?.offset === 12 || (j.last === offset && c.msgs('edge').length === 0), { what: 'replay to the end' });
      return { j, offsets: c.msgs('edge').map((m) => m.offset) };
    };

    it('reports the exact lost range and delivers what remains when history no longer reaches back', async () => {
      const { j, offsets } = await resume(3);
      assert.equal(j.recovered, false);
      assert.deepEqual(j.gap, { from: 4, to: 7 });
      assert.deepEqual(offsets, [8, 9, 10, 11, 12]);
    });

    it('recovers fully from the oldest kept edge', async () => {
      const { j, offsets } = await resume(7);
      assert.equal(j.recovered, true);
      assert.equal(j.gap, undefined);
      assert.deepEqual(offsets, [8, 9, 10, 11, 12]);
    });

    it('names a one-message hole just past the edge', async () => {
      const { j } = await resume(6);
      assert.equal(j.recovered, false);
      assert.deepEqual(j.gap, { from: 7, to: 7 });
    });

    it('recovers with nothing to replay at the newest offset', async () => {
      const { j, offsets } = await resume(12);
      assert.equal(j.recovered, true);
      assert.deepEqual(offsets, []);
    });
  });
}
