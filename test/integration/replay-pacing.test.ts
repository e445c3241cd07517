/**
 * Issue 11 (replays): an honest client resuming a long absence is replayed at the pace it
 * reads, never cut as a slow consumer: 5,000 missed messages of 2,000 characters (~10 MB, ten
 * times the default 1 MiB send buffer) arrive whole and in order, and the socket stays open
 * (the replay bound is raised to 5,000 here; replay-bound.test.ts checks the default bound).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestGateway, type TestGateway } from '../../src/testkit/gateway.js';
import { RawClient } from '../../src/testkit/raw-client.js';
import { waitFor } from '../../src/procs/wait.js';

describe('a long resume is paced, not cut', () => {
  let t: TestGateway;
  const clients: RawClient[] = [];
  before(async () => {
    t = await startTestGateway({ env: { CONFAB_HISTORY_LIMIT: '10000', CONFAB_ROOM_CACHE: '0', CONFAB_REPLAY_MAX: '5000' } });
  });
  after(async () => {
    for (const c of clients) c.ws.terminate();
    await t?.close();
  });

  it('5,000 missed messages of 2,000 characters reach a resuming client whole, in order, with no 4001', async () => {
    const { c: reader, s } = await RawClient.session(t, 'returning', clients);
    reader.send({ t: 'join', room: 'long' });
    const joined = await reader.next('joined');
    reader.ws.close();
    const text = 'y'.repeat(2000);
    const from = { user: 'u-writer', handle: 'writer', node: 'n', region: 'r' };
    for (let i = 0; i < 5000; i++) await t.gw.core.history.append({ room: 'long', id: `m${i}`, kind: 'msg', text, from, ts: Date.now() });
    const back = await RawClient.connect(t.wsUrl, s.token); // the same user, back after a long absence
    clients.push(back);
    back.send({ t: 'join', room: 'long', since: { epoch: joined.epoch, offset: joined.last } });
    const again = await back.next('joined');
    assert.equal(again.recovered, true);
    await waitFor(() => back.msgs('long').length === 5000 || back.closeCode !== undefined, { timeoutMs: 60_000, what: 'the whole replay' });
    assert.equal(back.closeCode, undefined, `not closed (got ${back.closeCode})`);
    const ids = back.msgs('long').map((m) => m.id);
    assert.deepEqual(ids, Array.from({ length: 5000 }, (_, i) => `m${i}`));
  });
});
