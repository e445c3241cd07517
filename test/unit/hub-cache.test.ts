import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryBroker, MemoryBus } from '../../src/bus/memory.js';
import { RoomHub, type RoomMember } from '../../src/gateway/hub.js';
import { MemoryHistory } from '../../src/history/memory.js';
import { framePayload } from '../../src/gateway/wire.js';
import type { ChatMessage } from '../../src/protocol/frames.js';
import { waitFor } from '../../src/procs/wait.js';

const from = { user: 'u', handle: 'h', node: 'n', region: 'r' };

describe('room hub: in-memory cache of delivered messages', () => {
  it('answers resumes it can prove contiguous, and only those', async () => {
    const history = new MemoryHistory();
    const bus = new MemoryBus(new MemoryBroker());
    const hub = new RoomHub({ node: 'n1', bus, history, cacheSize: 5, recentOnJoin: 0 });
    for (let i = 0; i < 3; i++) await history.append({ room: 'r', id: `old${i}`, kind: 'msg', text: 'x', from, ts: 0 });
    const got: ChatMessage[] = [];
    const member: RoomMember = {
      user: { id: 'm', handle: 'm' },
      gone: false,
      write: (frame) => {
        const f = JSON.parse(framePayload(frame).toString()) as { t: string } & ChatMessage;
        if (f.t === 'msg') got.push(f);
      },
      backlog: () => 0,
      drained: async () => {},
      ownEcho: () => false,
      lost: () => {},
    };
    const { last } = await hub.join('r', member);
    assert.equal(last, 3);
    assert.equal(hub.cachedAfter('r', 1), undefined, 'messages from before the room opened here are not cached');
    assert.equal(hub.cachedRecent('r', 2), undefined);
    assert.deepEqual(hub.cachedAfter('r', 3)?.msgs, [], 'already at the end');
    for (let i = 0; i < 12; i++) await hub.published((await history.append({ room: 'r', id: `n${i}`, kind: 'msg', text: `n${i}`, from, ts: 0 })).message);
    await waitFor(() => got.length === 12);
    const after = hub.cachedAfter('r', 12)!;
    assert.deepEqual(after.msgs.map((m) => m.offset), [13, 14, 15]);
    assert.equal(after.last, 15);
    assert.equal(JSON.parse(framePayload(after.msgs[0]!.frame).toString()).text, 'n9');
    assert.equal(hub.cachedAfter('r', 4), undefined, 'older than the kept window: read history');
    assert.equal(hub.cachedAfter('r', 99), undefined, 'ahead of this node: read history');
    assert.deepEqual(hub.cachedRecent('r', 2)!.msgs.map((m) => m.offset), [14, 15]);
    hub.busDown();
    assert.equal(hub.cachedAfter('r', 15), undefined, 'after a bus outage nothing is answered from memory, not even "nothing new"');
    hub.catchUp();
    await waitFor(() => hub.cachedAfter('r', 15) !== undefined, { what: 'cache trusted again once caught up from history' });
    hub.leave('r', member);
    assert.equal(hub.cachedAfter('r', 14), undefined, 'the cache goes with the last member');
    await bus.close();
  });
});
