/**
 * The client's connection state machine (issue 8 item 6): every change goes through one
 * transition function checked against one table (src/client/state.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { allowed, IllegalTransition, transition, TRANSITIONS } from '../../src/client/state.js';
import { CONNECTION_STATES, type ConnectionState } from '../../src/client/types.js';

test('the table names every state, and only known states', () => {
  assert.deepEqual(Object.keys(TRANSITIONS).sort(), [...CONNECTION_STATES].sort());
  for (const to of Object.values(TRANSITIONS).flat()) assert.ok(CONNECTION_STATES.includes(to), to);
});

test('transition returns the new state for every pair the table holds, and throws for every other pair', () => {
  let ok = 0;
  let refused = 0;
  for (const from of CONNECTION_STATES) {
    for (const to of CONNECTION_STATES) {
      if (TRANSITIONS[from].includes(to)) {
        assert.equal(transition(from, to), to);
        assert.equal(allowed(from, to), true);
        ok++;
      } else {
        assert.throws(() => transition(from, to), (e: unknown) => e instanceof IllegalTransition && e.from === from && e.to === to);
        refused++;
      }
    }
  }
  assert.equal(ok + refused, CONNECTION_STATES.length ** 2);
  assert.ok(refused > 0 && ok > 0);
});

test('the lifecycle the SDK promises is in the table', () => {
  const path: ConnectionState[] = ['idle', 'connecting', 'connected', 'reconnecting', 'connecting', 'connected', 'offline', 'connecting', 'closed', 'connecting'];
  let s = path[0]!;
  for (const next of path.slice(1)) s = transition(s, next);
  assert.equal(s, 'connecting');
  // no state changes to itself, and nothing reaches `idle` again
  for (const st of CONNECTION_STATES) assert.equal(allowed(st, st), false, st);
  for (const st of CONNECTION_STATES) assert.equal(allowed(st, 'idle'), false, st);
  // close() works from every state but closed
  for (const st of CONNECTION_STATES) assert.equal(allowed(st, 'closed'), st !== 'closed', st);
});

test('one state object per room: a new connection clears what belonged to the old one and keeps the rest', async () => {
  const { RoomStates } = await import('../../src/client/room-state.js');
  const r = new RoomStates();
  const waiter = { resolve: () => {}, reject: () => {} };
  r.setJoin('a', 'sent');
  r.setJoined('b', { t: 'joined', room: 'b', epoch: 'e', last: 0, recovered: false, members: [], count: 0 } as never);
  r.setHeld('b', 'waiting');
  r.addLeave('c');
  r.addWaiter('a', waiter);
  r.setTypingAt('b', 123);
  r.setRejoinAttempts('d', 2);
  assert.equal(r.size, 4);
  r.resetConnection();
  assert.equal(r.join('a'), undefined);
  assert.equal(r.joined('b'), undefined);
  assert.equal(r.held('b'), undefined);
  assert.equal(r.takeLeave('c'), false);
  assert.equal(r.typingAt('b'), 123, 'the typing throttle outlives a reconnect');
  assert.equal(r.rejoinAttempts('d'), 2);
  assert.deepEqual(r.takeWaiters('a'), [waiter], 'join() callers keep waiting across a reconnect');
  assert.equal(r.size, 2, 'rooms with nothing left are forgotten (c, a)');
  r.setTypingAt('b', 0);
  r.setRejoinAttempts('d', 0);
  assert.equal(r.size, 0);
  assert.deepEqual(r.heldRooms(), []);
});
