/**
 * Issue 11, per user: typing notices are coalesced per user and room on a node, so one user
 * typing on many sockets cannot flood the room's other members.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TYPING_COALESCE_MS } from '../../src/gateway/hub.js';
import { createSession, startTestGateway, type TestGateway } from '../../src/testkit/gateway.js';
import { RawClient } from '../../src/testkit/raw-client.js';
import { waitFor } from '../../src/procs/wait.js';

describe('typing notices are coalesced per user and room', () => {
  let t: TestGateway;
  const clients: RawClient[] = [];
  before(async () => {
    t = await startTestGateway();
  });
  after(async () => {
    for (const c of clients) c.ws.terminate();
    await t?.close();
  });

  it('one user on 10 sockets typing flat out: the victim sees one notice per window; another user is not held back', async () => {
    const s = await createSession(t.url, 'typist');
    const sockets: RawClient[] = [];
    for (let i = 0; i < 10; i++) sockets.push(await RawClient.connect(t.wsUrl, s.token));
    clients.push(...sockets);
    const { c: victim } = await RawClient.session(t, 'victim', clients);
    const { c: other } = await RawClient.session(t, 'other', clients);
    for (const c of [...sockets, victim, other]) {
      c.send({ t: 'join', room: 'keys' });
      await c.next('joined');
    }
    const started = Date.now();
    for (let round = 0; round < 10; round++) for (const c of sockets) c.send({ t: 'typing', room: 'keys' }); // 100 notices, within each socket's burst
    other.send({ t: 'typing', room: 'keys' });
    await victim.next('typing', (f) => f.user.handle === 'typist');
    await victim.next('typing', (f) => f.user.handle === 'other');
    for (const c of sockets) {
      c.send({ t: 'ping' }); // every typing frame of every socket has been handled once its pong is back
      await c.next('pong');
    }
    const within = Date.now() - started;
    const fromTypist = victim.all('typing').filter((f) => f.user.handle === 'typist').length;
    const windows = 1 + Math.floor(within / TYPING_COALESCE_MS); // normally 1: the burst takes a few ms
    assert.ok(fromTypist >= 1 && fromTypist <= windows, `one notice per window for 100 sent in ${within} ms (got ${fromTypist})`);
    // after the window, the next keystroke is announced again
    const lastAt = Date.now();
    await waitFor(() => Date.now() - lastAt > TYPING_COALESCE_MS, { timeoutMs: TYPING_COALESCE_MS + 1000, intervalMs: 100, what: 'the window to pass' });
    sockets[0]!.send({ t: 'typing', room: 'keys' });
    await waitFor(() => victim.all('typing').filter((f) => f.user.handle === 'typist').length === fromTypist + 1, { what: 'the next notice after the window' });
  });
});
