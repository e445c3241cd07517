/**
 * Security suite, sessions that end (G12): before this suite an open socket outlived its token
 * (an expired token's socket kept publishing), a stolen token could be renewed for ever, and
 * nothing could sign a session out. Now:
 *  - the server asks for a fresh token (`refresh`) before expiry and closes a socket that does not
 *    send one with 4500 `session_expired`; one that does (`auth`) goes on undisturbed;
 *  - `DELETE /api/session` revokes the session on every node: its sockets close with 4501 and its
 *    tokens are refused at every gateway (upgrade and renewal);
 *  - renewal ends at the chain's maximum lifetime; a rename replaces the old session (4502);
 *  - the SDK renews by itself across expiries without dropping a message.
 * Runs on the embedded default and on two gateways over NATS.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { ConfabClient } from '../../src/client/index.js';
import { joinRoom } from '../../src/testkit/raw-client.js';
import { waitFor } from '../../src/procs/wait.js';
import { deleteSession, postSession, RawClient, startSetup, tryUpgrade, type Setup, type SetupName } from './kit.js';

/** Token lifetime in these tests (the refresh comes about a second before the end). */
const TTL_S = 3;

for (const name of ['embedded', 'nats'] as SetupName[]) {
  describe(`sessions end (${name})`, () => {
    let s: Setup;
    const clients: RawClient[] = [];
    before(async () => {
      s = await startSetup(name, { config: { sessionTtlSec: TTL_S, sessionMaxSec: 3600 } });
    });
    after(async () => {
      for (const c of clients) c.close();
      await s?.stop();
    });

    it('a socket that misses its refresh is closed with 4500 at expiry and can publish nothing after', async () => {
      const sess = await postSession(s.a.url, { handle: 'expiring' });
      const c = await RawClient.connect(s.a.wsUrl, sess.body.token as string);
      clients.push(c);
      const welcome = c.all('welcome')[0]!;
      assert.equal(welcome.exp, sess.body.expiresAt / 1000);
      const refresh = await c.next('refresh', () => true, TTL_S * 1000 + 2000);
      assert.equal(refresh.exp, welcome.exp);
      assert.ok(Date.now() < refresh.exp * 1000, 'refresh comes before the expiry');
      assert.equal(await c.closed(TTL_S * 1000 + 3000), 4500);
      assert.ok(Date.now() >= welcome.exp * 1000 - 50, 'not closed before the expiry');
      assert.match(c.closeReason ?? '', /session_expired/);
      // the expired token opens nothing either
      const r = await tryUpgrade(s.b.wsUrl, sess.body.token as string);
      assert.equal(r.status, 401);
      assert.equal(r.body?.code, 'session_expired');
    });

    it('an auth frame with a fresh token keeps the socket past the old expiry, undisturbed', async () => {
      let sess = await postSession(s.a.url, { handle: 'renewer2' });
      const c = await RawClient.connect(s.b.wsUrl, sess.body.token as string);
      clients.push(c);
      await joinRoom(c, 'renewals');
      const firstExp = c.all('welcome')[0]!.exp;
      for (let round = 0; round < 2; round++) {
        await c.next('refresh', () => true, TTL_S * 1000 + 2000);
        sess = await postSession(s.a.url, { handle: 'renewer2', token: sess.body.token });
        assert.equal(sess.status, 200);
        c.send({ t: 'auth', token: sess.body.token as string });
        const authed = await c.next('authed');
        assert.equal(authed.exp, sess.body.expiresAt / 1000);
        assert.deepEqual(authed.perms, { alert: true });
      }
      assert.ok(Date.now() > firstExp * 1000 + 500, 'alive past the first token expiry');
      c.send({ t: 'pub', id: 'after-renewal', room: 'renewals', text: 'still here' });
      const ack = await c.next('ack', (a) => a.id === 'after-renewal');
      assert.ok(ack.offset > 0);
      assert.equal(c.closeCode, undefined);
      // a token of another user is refused on this socket
      const other = await postSession(s.a.url, { handle: 'someone.else' });
      c.send({ t: 'auth', token: other.body.token as string });
      const err = await c.next('error', (e) => e.code === 'unauthorized');
      assert.match(err.message, /another user/);
    });

    it('sign-out revokes the session on every node: sockets closed with 4501, tokens refused everywhere', async () => {
      const sess = await postSession(s.a.url, { handle: 'leaver' });
      const token = sess.body.token as string;
      const onB = await RawClient.connect(s.b.wsUrl, token);
      const onA = await RawClient.connect(s.a.wsUrl, token);
      clients.push(onA, onB);
      assert.equal(await deleteSession(s.a.url, token), 204);
      assert.equal(await onB.closed(5000), 4501);
      assert.equal(await onA.closed(5000), 4501);
      for (const g of [s.a, s.b]) {
        const r = await tryUpgrade(g.wsUrl, token);
        assert.equal(r.status, 401);
        assert.equal(r.body?.code, 'session_revoked');
        const renew = await postSession(g.url, { handle: 'leaver', token });
        assert.equal(renew.status, 401);
        assert.equal(renew.body.code, 'session_revoked');
      }
    });

    it('a rename replaces the old session: its sockets close with 4502', async () => {
      const sess = await postSession(s.a.url, { handle: 'oldname' });
      const c = await RawClient.connect(s.b.wsUrl, sess.body.token as string);
      clients.push(c);
      const renamed = await postSession(s.a.url, { handle: 'newname', token: sess.body.token });
      assert.equal(renamed.status, 200);
      assert.equal(await c.closed(5000), 4502);
      assert.equal((await tryUpgrade(s.a.wsUrl, sess.body.token as string)).status, 401);
      assert.equal((await postSession(s.b.url, { handle: 'oldname' })).status, 200, 'the old handle is free');
    });

    it('the SDK renews by itself across an expiry and loses nothing', async () => {
      const sess = await postSession(s.a.url, { handle: 'sdk.user' });
      const c = new ConfabClient({ url: s.b.url, token: sess.body.token as string, WebSocket: WebSocket as never, pingIntervalMs: 0, probe: false });
      const tokens: string[] = [];
      c.on('token', (t) => tokens.push(t.token));
      const states: string[] = [];
      c.on('state', (st) => states.push(st.state));
      try {
        c.connect();
        await c.join('sdkroom');
        const acks: number[] = [];
        const deadline = Date.now() + TTL_S * 1000 + 1500; // past the first token's expiry
        let i = 0;
        while (Date.now() < deadline) {
          acks.push((await c.send('sdkroom', `m${i++}`)).offset);
          await new Promise((r) => setTimeout(r, 100));
        }
        assert.ok(tokens.length >= 1, `renewed ${tokens.length} times`);
        assert.deepEqual(states, ['connecting', 'connected'], 'never dropped');
        assert.equal(acks.length, i);
        await waitFor(() => c.pending.length === 0, { what: 'outbox empty' });
      } finally {
        c.close();
      }
    });
  });
}

describe('renewal chains end (embedded)', () => {
  let s: Setup;
  before(async () => {
    s = await startSetup('embedded', { config: { sessionTtlSec: 2, sessionMaxSec: 3 } });
  });
  after(() => s?.stop());

  it('a stolen token cannot be renewed past the maximum lifetime', async () => {
    let sess = await postSession(s.a.url, { handle: 'chained' });
    const end = sess.body.maxExpiresAt as number;
    assert.ok(end - Date.now() <= 3000 + 1000);
    let last = sess;
    while (Date.now() < end + 100) {
      sess = await postSession(s.a.url, { handle: 'chained', token: sess.body.token });
      if (sess.status !== 200) break;
      assert.ok(sess.body.expiresAt <= end, 'never beyond the chain end');
      last = sess;
      await new Promise((r) => setTimeout(r, 300));
    }
    assert.equal(sess.status, 401);
    assert.equal(sess.body.code, 'session_expired');
    assert.match(String(sess.body.message), /maximum lifetime|expired/);
    assert.ok(last.body.expiresAt <= end);
  });
});
