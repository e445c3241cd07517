/**
 * JetStream per-room byte bound and trimmed-id conflicts with two writers (issue 11, src/nats/room-bounds.ts):
 * two histories on their own connections (two gateways) write one room in turn. Each message carries the
 * room's running byte count, so either writer knows the room's bytes whatever the other stored: the room keeps
 * exactly the newest messages that fit CONFAB_HISTORY_MAX_BYTES. An id whose message was purged is still
 * known with its content hash (the id bucket): the same content is a resend with the original offset, prev
 * and time, other content `duplicate_id_conflict`, whichever node is asked. (The single-writer cases run in
 * the History contract, test/contract/nats.test.ts.)
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { loadConfig } from '../../src/config/config.js';
import { storedBytes } from '../../src/history/common.js';
import type { AppendInput } from '../../src/history/types.js';
import { createJetStreamHistory, type JetStreamHistory } from '../../src/nats/index.js';
import { ConfabError } from '../../src/protocol/codes.js';
import type { ChatMessage } from '../../src/protocol/frames.js';
import { startNats } from '../../src/procs/nats.js';

const log = pino({ level: 'silent' });
const from = { user: 'u1', handle: 'h-u1', node: 'n1', region: 'local' };
const input = (id: string, text: string): AppendInput => ({ room: 'bounded', id, kind: 'msg', text, from, ts: Date.now() });
const ONE = storedBytes(input('b00', 'y'.repeat(200)));

describe('JetStream: per-room byte bound and trimmed ids, two writers', () => {
  let server: Awaited<ReturnType<typeof startNats>>;
  const hs: JetStreamHistory[] = [];
  before(async () => {
    server = await startNats({ jetstream: true });
    for (const node of ['rb0', 'rb1']) {
      const env = { NATS_URL: server.url, CONFAB_SECRET: 'x'.repeat(20), CONFAB_NODE_ID: node, CONFAB_STREAM_NAME: 'RB', CONFAB_NATS_PREFIX: 'rb', CONFAB_HISTORY_LIMIT: '10', CONFAB_HISTORY_MAX_BYTES: String(ONE * 5 + 10) };
      hs.push((await createJetStreamHistory(loadConfig(env), log, { env })).history as JetStreamHistory); // unsharded: the one stream
    }
  });
  after(async () => {
    for (const h of hs) await h.close();
    await server?.close();
  });

  it('keeps the newest messages that fit the byte bound, whichever node wrote them; a purged id is a resend or a conflict by content', async () => {
    const [a, b] = hs as [JetStreamHistory, JetStreamHistory];
    const first = (await a.append(input('x', 'hello'))).message;
    const all: ChatMessage[] = [];
    for (let i = 0; i < 20; i++) all.push((await hs[i % 2]!.append(input(`b${String(i).padStart(2, '0')}`, 'y'.repeat(200)))).message);
    for (const h of hs) {
      const res = await h.read('bounded', 0, 100);
      assert.deepEqual(res.messages.map((m) => m.id), all.slice(15).map((m) => m.id), 'the newest five fit (the count limit is 10)');
      assert.deepEqual(res.gap, { from: 1, to: all[14]!.offset });
    }
    assert.ok(a.bounds.purged + b.bounds.purged >= 16, `purged by bytes: ${a.bounds.purged} + ${b.bounds.purged}`);

    const again = await b.append(input('x', 'hello'));
    assert.equal(again.duplicate, true);
    assert.deepEqual([again.message.offset, again.message.prev, again.message.ts], [first.offset, first.prev, first.ts], 'the original offset, prev and time');
    await assert.rejects(a.append(input('x', 'not what x said')), (e: unknown) => e instanceof ConfabError && e.code === 'duplicate_id_conflict');
    assert.equal((await a.read('bounded', 0, 100)).last, all[19]!.offset, 'nothing stored');
  });
});
