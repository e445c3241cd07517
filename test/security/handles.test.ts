/**
 * Security suite, handles (S9, G12): one owner per handle from the session's issue until it ends,
 * on every node and every bus. Each case names the attack and what it did before this suite:
 *  - pre-minted token: before, a handle was checked against the users online only, so a token
 *    minted for `alice` while alice was offline opened a socket beside her (two `alice`s);
 *  - takeover within the presence grace: before, a handle was free during the 5 s after its
 *    owner's socket closed;
 *  - look-alikes: before, `b0b.smith` and `bob.smlth` were different handles from `bob.smith`;
 *  - forced sign-out: before, the attacker holding `alice` made alice's renewal answer 409 and
 *    the web client signed her out;
 *  - renewal with a dead token: before, an expired or forged token was ignored and a new user id
 *    silently minted.
 * Runs on the embedded default, on two gateways over NATS and on two gateways over Redis.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SessionSigner } from '../../src/auth/tokens.js';
import { TEST_SECRET } from '../../src/testkit/gateway.js';
import { deleteSession, postSession, RawClient, startSetup, tryUpgrade, type Setup, type SetupName } from './kit.js';

for (const name of ['embedded', 'nats', 'redis'] as SetupName[]) {
  describe(`handles have one owner (${name})`, () => {
    let s: Setup;
    const clients: RawClient[] = [];
    before(async () => {
      s = await startSetup(name);
    });
    after(async () => {
      for (const c of clients) c.close();
      await s?.stop();
    });

    it('a token cannot be pre-minted for a handle whose session lives, on any node, online or not', async () => {
      const alice = await postSession(s.a.url, { handle: 'alice' });
      assert.equal(alice.status, 200);
      // alice is not even connected: her session holds the handle
      for (const g of [s.a, s.b]) {
        const attacker = await postSession(g.url, { handle: 'alice' });
        assert.equal(attacker.status, 409, `${g.url}: ${JSON.stringify(attacker.body)}`);
        assert.equal(attacker.body.code, 'handle_taken');
        assert.match(String(attacker.body.message), /alice/);
        const other = await postSession(g.url, { handle: 'ALICE' });
        assert.equal(other.status, 409, 'case does not make another handle');
      }
      // alice herself connects on both nodes (two sockets of one user are fine)
      const c1 = await RawClient.connect(s.a.wsUrl, alice.body.token as string);
      const c2 = await RawClient.connect(s.b.wsUrl, alice.body.token as string);
      clients.push(c1, c2);
      assert.equal(c1.all('welcome')[0]!.user.id, alice.body.user.id);
      assert.equal(c2.all('welcome')[0]!.user.handle, 'alice');
    });

    it('a handle is not free during the grace after its owner left', async () => {
      const bob = await postSession(s.a.url, { handle: 'bob' });
      const c = await RawClient.connect(s.a.wsUrl, bob.body.token as string);
      c.close();
      await c.closed();
      const taker = await postSession(s.b.url, { handle: 'bob' });
      assert.equal(taker.status, 409);
    });

    it('look-alike handles (confusable skeletons) belong to the holder of the original', async () => {
      const owner = await postSession(s.a.url, { handle: 'bob.smith' });
      assert.equal(owner.status, 200);
      for (const lookalike of ['bob.smlth', 'b0b.smith', 'BOB_SMITH', 'bob-smith', 'bob.srnith', 'b0b.smIth']) {
        const r = await postSession(s.b.url, { handle: lookalike });
        assert.equal(r.status, 409, `${lookalike}: ${JSON.stringify(r.body)}`);
        assert.equal(r.body.code, 'handle_taken');
      }
      // the owner may take a look-alike of their own handle
      const renamed = await postSession(s.b.url, { handle: 'Bob.Smith', token: owner.body.token });
      assert.equal(renamed.status, 200, JSON.stringify(renamed.body));
      assert.equal(renamed.body.user.id, owner.body.user.id);
      // and an unrelated handle is free
      assert.equal((await postSession(s.b.url, { handle: 'bob.smithers' })).status, 200);
    });

    it('the owner cannot be signed out by another user, and keeps renewing', async () => {
      const carol = await postSession(s.a.url, { handle: 'carol' });
      const mallory = await postSession(s.b.url, { handle: 'mallory' });
      // mallory's own token signs mallory out, not carol
      assert.equal(await deleteSession(s.b.url, mallory.body.token as string), 204);
      // a forged token signs nobody out
      const forged = new SessionSigner('another-secret-0123456789abcdef', 3600).issue({ id: carol.body.user.id as string, handle: 'carol' }).token;
      assert.equal(await deleteSession(s.b.url, forged), 401);
      const renewed = await postSession(s.b.url, { handle: 'carol', token: carol.body.token });
      assert.equal(renewed.status, 200);
      assert.equal(renewed.body.user.id, carol.body.user.id);
      // mallory signed out: the handle is free again, and mallory's token is dead
      assert.equal((await tryUpgrade(s.a.wsUrl, mallory.body.token as string)).status, 401);
      assert.equal((await postSession(s.a.url, { handle: 'mallory' })).status, 200);
    });

    it('renewing with an expired or forged token says so and mints no new identity', async () => {
      const expired = new SessionSigner(TEST_SECRET, 60).issue({ id: 'u0123456789abcdef', handle: 'dave' }, Date.now() - 3_600_000).token;
      const r1 = await postSession(s.a.url, { handle: 'dave', token: expired });
      assert.equal(r1.status, 401);
      assert.equal(r1.body.code, 'session_expired');
      assert.equal(r1.body.token, undefined);
      const r2 = await postSession(s.b.url, { handle: 'dave', token: 'bm90LmEudG9rZW4.AAAA' });
      assert.equal(r2.status, 401);
      assert.equal(r2.body.code, 'unauthorized');
    });

    it('concurrent claims of one handle on two nodes: exactly one user gets it', async () => {
      const results = await Promise.all(Array.from({ length: 8 }, (_, i) => postSession(i % 2 ? s.a.url : s.b.url, { handle: 'race.winner' })));
      assert.equal(results.filter((r) => r.status === 200).length, 1, JSON.stringify(results.map((r) => r.status)));
      assert.ok(results.every((r) => r.status === 200 || r.body.code === 'handle_taken'));
    });
  });
}
