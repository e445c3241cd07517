/**
 * Security suite, access (S1, G12). Before: every room was open to anyone, `rooms` listed every
 * room in use on the cluster, any anonymous user could alert everyone, JWTs from an application
 * were not accepted at all, and an HTTP-API message with `"handle": "alice"` looked like alice's.
 * Now:
 *  - app tokens (JWT, HS256 here) are accepted, and refused with a wrong key, `alg: none`, another
 *    algorithm, expired, or missing a claim;
 *  - an app token's handle is held by its user: another user's token with that name gets 409;
 *  - private rooms (`private-*`) need a grant; joining without one is `forbidden`, and `rooms`
 *    does not list them; a read grant does not allow publishing;
 *  - alerts need the alert permission (app tokens), and are rate-limited per user (anonymous);
 *  - messages of the HTTP publish API carry `from.kind: "api"`.
 * Runs on the embedded default and on two gateways over NATS.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SignJWT, base64url } from 'jose';
import { joinRoom } from '../../src/testkit/raw-client.js';
import { postSession, RawClient, startSetup, tryUpgrade, type Setup, type SetupName } from './kit.js';

const JWT_SECRET = 'app-shared-secret-0123456789abcdef-xyz';
const key = new TextEncoder().encode(JWT_SECRET);
const API_KEY = 'api-key-0123456789abcdef';

/** An app token as a back end mints one (docs/auth.md). */
function mint(claims: Record<string, unknown>, opts: { alg?: string; key?: Uint8Array; exp?: number | string } = {}): Promise<string> {
  const j = new SignJWT(claims).setProtectedHeader({ alg: opts.alg ?? 'HS256' }).setIssuedAt();
  if (opts.exp !== undefined) j.setExpirationTime(opts.exp);
  else if (!('noexp' in claims)) j.setExpirationTime('10m');
  return j.sign(opts.key ?? key);
}

/** An unsigned token (`alg: none`), as an attacker would send it. */
function unsigned(claims: Record<string, unknown>): string {
  const enc = (o: object) => base64url.encode(JSON.stringify(o));
  return `${enc({ alg: 'none', typ: 'JWT' })}.${enc({ exp: Math.floor(Date.now() / 1000) + 600, ...claims })}.`;
}

for (const name of ['embedded', 'nats'] as SetupName[]) {
  describe(`access (${name})`, () => {
    let s: Setup;
    const clients: RawClient[] = [];
    const open = async (wsUrl: string, token: string) => {
      const c = await RawClient.connect(wsUrl, token);
      clients.push(c);
      return c;
    };
    before(async () => {
      s = await startSetup(name, { env: { CONFAB_JWT_SECRET: JWT_SECRET, CONFAB_API_KEY: API_KEY, CONFAB_ALERT_RATE_PER_MIN: '3' } });
    });
    after(async () => {
      for (const c of clients) c.close();
      await s?.stop();
    });

    it('app tokens: accepted when well signed, refused with a wrong key, alg none, another alg, expired or a claim missing', async () => {
      const good = await mint({ sub: 'user-17', name: 'ann.app', alert: true });
      const c = await open(s.b.wsUrl, good);
      const w = c.all('welcome')[0]!;
      assert.deepEqual(w.user, { id: 'user-17', handle: 'ann.app' });
      assert.deepEqual(w.perms, { alert: true });
      const cases: [string, string, string][] = [
        ['a wrong key', await mint({ sub: 'x1', name: 'x1' }, { key: new TextEncoder().encode('another-secret-0123456789abcdef-xyz') }), 'unauthorized'],
        ['alg none', unsigned({ sub: 'x2', name: 'x2' }), 'unauthorized'],
        ['another algorithm (HS512, same secret)', await mint({ sub: 'x3', name: 'x3' }, { alg: 'HS512' }), 'unauthorized'],
        ['expired', await mint({ sub: 'x4', name: 'x4' }, { exp: Math.floor(Date.now() / 1000) - 60 }), 'session_expired'],
        ['no sub', await mint({ name: 'x5' }), 'unauthorized'],
        ['no name', await mint({ sub: 'x6' }), 'unauthorized'],
        ['no exp', await mint({ sub: 'x7', name: 'x7', noexp: true }), 'unauthorized'],
        ['a name that is not a handle', await mint({ sub: 'x8', name: '<script>' }), 'unauthorized'],
        ['rooms that are not room patterns', await mint({ sub: 'x9', name: 'x9', rooms: ['../etc'] }), 'unauthorized'],
      ];
      for (const [what, token, code] of cases) {
        for (const g of [s.a, s.b]) {
          const r = await tryUpgrade(g.wsUrl, token);
          assert.equal(r.status, 401, `${what}: ${JSON.stringify(r.body)}`);
          assert.equal(r.body?.code, code, what);
        }
      }
    });

    it("an app token's handle is held by its user: another user with that name is refused (409), anonymous too", async () => {
      const zed = await mint({ sub: 'user-zed', name: 'zed' });
      await open(s.a.wsUrl, zed);
      const impostor = await mint({ sub: 'user-other', name: 'zed' });
      for (const g of [s.a, s.b]) {
        const r = await tryUpgrade(g.wsUrl, impostor);
        assert.equal(r.status, 409);
        assert.equal(r.body?.code, 'handle_taken');
        assert.match(r.body?.message ?? '', /zed/);
      }
      assert.equal((await postSession(s.b.url, { handle: 'ZED' })).status, 409, 'an anonymous session cannot take it either');
      // the same user on another node is fine
      await open(s.b.wsUrl, await mint({ sub: 'user-zed', name: 'zed' }));
    });

    it('private rooms need a grant; rooms lists only what the session may join; read grants cannot publish', async () => {
      const member = await open(s.a.wsUrl, await mint({ sub: 'team-1', name: 'teamer', rooms: ['*', 'private-team*'] }));
      const joined = await joinRoom(member, 'private-team');
      assert.equal(joined.room, 'private-team');
      member.send({ t: 'pub', id: 'secret-1', room: 'private-team', text: 'the plan' });
      await member.next('ack', (a) => a.id === 'secret-1');
      // an anonymous user: forbidden, told nothing about the room, and it is not listed
      const anon = await postSession(s.b.url, { handle: 'outsider' });
      const out = await open(s.b.wsUrl, anon.body.token as string);
      for (const room of ['private-team', 'private-nobody-uses-this']) {
        out.send({ t: 'join', room });
        const e = await out.next('error', (f) => f.room === room);
        assert.equal(e.code, 'forbidden');
        assert.equal(e.retry, 'never');
      }
      out.send({ t: 'rooms' });
      const listed = (await out.next('rooms')).rooms.map((r) => r.name);
      assert.ok(!listed.some((r) => r.startsWith('private-')), JSON.stringify(listed));
      assert.equal(out.all('msg').filter((m) => m.room === 'private-team').length, 0);
      // the member sees it listed
      member.send({ t: 'rooms' });
      assert.ok((await member.next('rooms')).rooms.some((r) => r.name === 'private-team'));
      // a bare * does not grant private rooms
      const star = await open(s.b.wsUrl, await mint({ sub: 'star-1', name: 'starry', rooms: ['*'] }));
      star.send({ t: 'join', room: 'private-team' });
      assert.equal((await star.next('error', (f) => f.room === 'private-team')).code, 'forbidden');
      // a read grant: joins and reads, cannot publish
      const reader = await open(s.b.wsUrl, await mint({ sub: 'reader-1', name: 'reader', read: ['private-team'] }));
      const rj = await joinRoom(reader, 'private-team');
      assert.ok(rj.last > 0);
      reader.send({ t: 'pub', id: 'r1', room: 'private-team', text: 'let me in' });
      assert.equal((await reader.next('error', (f) => f.id === 'r1')).code, 'forbidden');
      // with rooms named, other public rooms are not open either
      reader.send({ t: 'join', room: 'lobby' });
      assert.equal((await reader.next('error', (f) => f.room === 'lobby')).code, 'forbidden');
    });

    it('alerts need the permission (app tokens) and are rate-limited per user (anonymous demo mode)', async () => {
      const noAlert = await open(s.a.wsUrl, await mint({ sub: 'plain-1', name: 'plain' }));
      assert.deepEqual(noAlert.all('welcome')[0]!.perms, { alert: false });
      noAlert.send({ t: 'alert', id: 'a1', text: 'everyone look' });
      const e = await noAlert.next('error', (f) => f.id === 'a1');
      assert.equal(e.code, 'forbidden');
      const allowed = await open(s.b.wsUrl, await mint({ sub: 'ops-1', name: 'ops', alert: true }));
      allowed.send({ t: 'alert', id: 'a2', text: 'maintenance at noon' });
      assert.equal((await allowed.next('ack', (a) => a.id === 'a2')).room, '_alerts');
      // anonymous: allowed (CONFAB_ANON_ALERTS=1), at most the burst, then rate_limited — across the user's sockets
      const anon = await postSession(s.a.url, { handle: 'alerter' });
      assert.deepEqual(anon.body.perms, { alert: true });
      const c1 = await open(s.a.wsUrl, anon.body.token as string);
      const c2 = await open(s.a.wsUrl, anon.body.token as string);
      const answers: string[] = [];
      for (let i = 0; i < 5; i++) {
        const c = i % 2 ? c2 : c1;
        c.send({ t: 'alert', id: `x${i}`, text: `alert ${i}` });
        const f = await Promise.race([c.next('ack', (a) => a.id === `x${i}`).then(() => 'ack'), c.next('error', (f) => f.id === `x${i}`).then((f) => f.code)]);
        answers.push(f);
      }
      assert.deepEqual(answers, ['ack', 'ack', 'ack', 'rate_limited', 'rate_limited']);
    });

    it('messages of the HTTP publish API are marked as the API, whatever handle they name', async () => {
      const sess = await postSession(s.a.url, { handle: 'watcher' });
      const c = await open(s.a.wsUrl, sess.body.token as string);
      await joinRoom(c, 'apiroom');
      const res = await fetch(`${s.b.url}/api/rooms/apiroom/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` },
        body: JSON.stringify({ text: 'I am totally alice', handle: 'watcher', id: 'api-1' }),
      });
      assert.equal(res.status, 201);
      const m = await c.next('msg', (f) => f.id === 'api-1');
      assert.equal(m.from.kind, 'api');
      assert.equal(m.from.user, 'api:watcher');
      assert.notEqual(m.from.user, sess.body.user.id);
      const wrong = await fetch(`${s.b.url}/api/alerts`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY.slice(0, -1)}x` }, body: '{"text":"x"}' });
      assert.equal(wrong.status, 401);
    });
  });
}
