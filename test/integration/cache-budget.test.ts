/**
 * Issue 11 item 1 (room cache): with a small CONFAB_CACHE_BYTES, a busy room pushes a quieter
 * room's cache out (least recently used first); joins and resumes of the evicted room are then
 * answered from history, exactly as from memory. The node's accounted cache bytes stay within
 * the budget and are exported as confab_room_cache_bytes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestGateway, type TestGateway } from '../../src/testkit/gateway.js';
import { RawClient } from '../../src/testkit/raw-client.js';
import { waitFor } from '../../src/procs/wait.js';

const BUDGET = 20_000; // about 30 messages of 200 characters

describe('node-wide room cache budget', () => {
  let t: TestGateway;
  const clients: RawClient[] = [];
  let epoch = '';
  before(async () => {
    t = await startTestGateway({ env: { CONFAB_CACHE_BYTES: String(BUDGET), CONFAB_RATE_BURST: '200', CONFAB_RATE_PER_SEC: '200' } });
    const { c: w } = await RawClient.session(t, 'writer', clients);
    w.send({ t: 'join', room: 'quiet' });
    w.send({ t: 'join', room: 'busy' });
    epoch = (await w.next('joined', (j) => j.room === 'quiet')).epoch;
    await w.next('joined', (j) => j.room === 'busy');
    for (let i = 1; i <= 30; i++) w.send({ t: 'pub', id: `q${i}`, room: 'quiet', text: `q${i} ${'.'.repeat(200)}` });
    await w.next('ack', (a) => a.id === 'q30');
    assert.ok(t.gw.core.hub.cachedAfter('quiet', 10) !== undefined, 'cached while it was the room in use');
    for (let i = 1; i <= 40; i++) w.send({ t: 'pub', id: `b${i}`, room: 'busy', text: `b${i} ${'.'.repeat(200)}` });
    await w.next('ack', (a) => a.id === 'b40');
  });
  after(async () => {
    for (const c of clients) c.close();
    await t?.close();
  });

  it('keeps every room\'s cache within the budget, the busy room\'s newest first', async () => {
    const bytes = t.gw.core.hub.budget.bytes;
    assert.ok(bytes <= BUDGET && bytes > BUDGET / 2, `accounted ${bytes} of ${BUDGET}`);
    assert.equal(t.gw.core.hub.cachedAfter('quiet', 10), undefined, 'the least recently used room gave its entries up');
    assert.deepEqual(t.gw.core.hub.cachedAfter('busy', 35)?.msgs.map((m) => m.offset), [36, 37, 38, 39, 40]);
    const metrics = await (await fetch(`${t.url}/metrics`)).text();
    const line = metrics.split('\n').find((l) => l.startsWith('confab_room_cache_bytes'));
    assert.ok(line && Number(line.split(' ').at(-1)) <= BUDGET, `metric: ${line}`);
  });

  it('a resume and a fresh join of the evicted room replay exactly what they should, from history', async () => {
    const { c: r } = await RawClient.session(t, 'resumer', clients);
    r.send({ t: 'join', room: 'quiet', since: { epoch, offset: 10 } });
    const j = await r.next('joined');
    assert.deepEqual([j.recovered, j.gap, j.missed, j.last], [true, undefined, undefined, 30]);
    await waitFor(() => r.msgs('quiet').length === 20, { what: 'the replay' });
    assert.deepEqual(r.msgs('quiet').map((m) => m.id), Array.from({ length: 20 }, (_, i) => `q${i + 11}`));
    const { c: f } = await RawClient.session(t, 'fresh', clients);
    f.send({ t: 'join', room: 'quiet' });
    await f.next('joined');
    await waitFor(() => f.msgs('quiet').length === 30, { what: 'the recent messages' });
    assert.deepEqual(f.msgs('quiet').map((m) => m.offset), Array.from({ length: 30 }, (_, i) => i + 1));
    // live delivery after the replay goes on with no seam
    const { c: w2 } = await RawClient.session(t, 'writer2', clients);
    w2.send({ t: 'join', room: 'quiet' });
    await w2.next('joined');
    w2.send({ t: 'pub', id: 'q31', room: 'quiet', text: 'q31' });
    await waitFor(() => r.msgs('quiet').length === 21 && f.msgs('quiet').length === 31, { what: 'the live message' });
    assert.equal(r.msgs('quiet').at(-1)!.offset, 31);
  });
});
