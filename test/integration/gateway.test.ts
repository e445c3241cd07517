import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createSession, startTestGateway, type TestGateway } from '../../src/testkit/gateway.js';
import { RawClient } from '../../src/testkit/raw-client.js';
import { waitFor } from '../../src/procs/wait.js';

for (const cache of ['256', '0'])
describe(`gateway: one node, raw protocol (room cache ${cache}: joins answered ${cache === '0' ? 'from history' : 'from memory where it reaches'})`, () => {
  let t: TestGateway;
  const clients: RawClient[] = [];
  const connect = async (handle: string) => {
    const s = await createSession(t.url, handle);
    const c = await RawClient.connect(t.wsUrl, s.token);
    clients.push(c);
    return { c, s };
  };
  before(async () => {
    t = await startTestGateway({ env: { CONFAB_RECENT_ON_JOIN: '5', CONFAB_PRESENCE_GRACE_MS: '0', CONFAB_ROOM_CACHE: cache } });
  });
  after(async () => {
    for (const c of clients) c.close();
    await t.close();
  });

  it('welcomes with server identity and limits', async () => {
    const { c, s } = await connect('alice');
    const w = c.all('welcome')[0]!;
    assert.equal(w.v, 1);
    assert.equal(w.node, t.config.node);
    assert.equal(w.region, 'local');
    assert.deepEqual(w.user, s.user);
    assert.ok(w.rooms.includes('lobby'));
    assert.equal(w.limits.maxTextChars, t.config.maxTextChars);
  });

  it('stores, acks and delivers in one order to every member, stamping identity from the session', async () => {
    const { c: a, s: sa } = await connect('ann');
    const { c: b } = await connect('bob');
    a.send({ t: 'join', room: 'order' });
    b.send({ t: 'join', room: 'order' });
    await a.next('joined', (f) => f.room === 'order');
    await b.next('joined', (f) => f.room === 'order');
    for (let i = 0; i < 30; i++) (i % 2 ? a : b).send({ t: 'pub', id: `m${i}`, room: 'order', text: `hello ${i}` });
    await waitFor(() => a.msgs('order').length === 30 && b.msgs('order').length === 30, { what: '30 messages each' });
    const oa = a.msgs('order').map((m) => m.offset);
    assert.deepEqual(oa, b.msgs('order').map((m) => m.offset));
    assert.deepEqual(oa, Array.from({ length: 30 }, (_, i) => i + 1));
    const mine = a.msgs('order').find((m) => m.id === 'm1')!;
    assert.deepEqual(mine.from, { user: sa.user.id, handle: 'ann', node: t.config.node, region: 'local' });
    const ack = await a.next('ack', (f) => f.id === 'm1');
    assert.equal(ack.offset, mine.offset);
    assert.equal(ack.dup, false);
  });

  it('stores a resent id once and acks it with the same offset (G3)', async () => {
    const { c } = await connect('resender');
    c.send({ t: 'join', room: 'dedupe' });
    await c.next('joined');
    c.send({ t: 'pub', id: 'once', room: 'dedupe', text: 'x' });
    const a1 = await c.next('ack', (f) => f.id === 'once');
    c.send({ t: 'pub', id: 'once', room: 'dedupe', text: 'x' }); // the same message again (another text would be duplicate_id_conflict)
    const a2 = await c.next('ack', (f) => f.id === 'once');
    assert.equal(a2.offset, a1.offset);
    assert.equal(a2.dup, true);
    c.send({ t: 'pub', id: 'marker', room: 'dedupe', text: 'm' });
    await c.next('ack', (f) => f.id === 'marker');
    await waitFor(() => c.msgs('dedupe').length === 2);
    assert.deepEqual(c.msgs('dedupe').map((m) => m.text), ['x', 'm']);
  });

  it('replays recent history on join, and exactly the missed messages on resume (G2)', async () => {
    const { c: w } = await connect('writer');
    w.send({ t: 'join', room: 'resume' });
    await w.next('joined');
    for (let i = 1; i <= 8; i++) {
      w.send({ t: 'pub', id: `r${i}`, room: 'resume', text: `r${i}` });
      await w.next('ack', (f) => f.id === `r${i}`);
    }
    const { c: fresh } = await connect('fresh');
    fresh.send({ t: 'join', room: 'resume' });
    const j = await fresh.next('joined');
    assert.equal(j.recovered, false);
    assert.equal(j.last, 8);
    await waitFor(() => fresh.msgs('resume').length === 5);
    assert.deepEqual(fresh.msgs('resume').map((m) => m.offset), [4, 5, 6, 7, 8], 'the 5 most recent');

    const { c: back } = await connect('back');
    back.send({ t: 'join', room: 'resume', since: { epoch: j.epoch, offset: 3 } });
    const j2 = await back.next('joined');
    assert.equal(j2.recovered, true);
    assert.equal(j2.gap, undefined);
    w.send({ t: 'pub', id: 'r9', room: 'resume', text: 'r9' });
    await waitFor(() => back.msgs('resume').length === 6);
    assert.deepEqual(back.msgs('resume').map((m) => m.offset), [4, 5, 6, 7, 8, 9]);

    const { c: old } = await connect('old');
    old.send({ t: 'join', room: 'resume', since: { epoch: 'another-epoch', offset: 3 } });
    const j3 = await old.next('joined');
    assert.equal(j3.reset, true);
    assert.equal(j3.recovered, false);

    const { c: ahead } = await connect('ahead');
    ahead.send({ t: 'join', room: 'resume', since: { epoch: j.epoch, offset: 1000 } });
    const j4 = await ahead.next('joined');
    assert.equal(j4.reset, true, 'an offset this history never had is a reset, not a silent recovery');
    await waitFor(() => ahead.msgs('resume').length === 5);
  });

  it('shows presence join and leave to other members', async () => {
    const { c: a } = await connect('pam');
    const { c: b, s: sb } = await connect('pete');
    a.send({ t: 'join', room: 'pres' });
    await a.next('joined');
    b.send({ t: 'join', room: 'pres' });
    const jb = await b.next('joined');
    assert.deepEqual(jb.members.map((m) => m.handle).sort(), ['pam', 'pete']);
    assert.equal(jb.count, 2);
    const pj = await a.next('presence', (f) => f.room === 'pres');
    assert.deepEqual(pj, { t: 'presence', room: 'pres', event: 'join', user: sb.user });
    b.send({ t: 'typing', room: 'pres' });
    const ty = await a.next('typing');
    assert.equal(ty.user.handle, 'pete');
    b.send({ t: 'leave', room: 'pres' });
    await b.next('left');
    const pl = await a.next('presence', (f) => f.event === 'leave');
    assert.equal(pl.user.id, sb.user.id);
  });

  it('sends alerts to every connection that joined _alerts, with node and region', async () => {
    const { c: a } = await connect('al1');
    const { c: b } = await connect('al2');
    for (const c of [a, b]) {
      c.send({ t: 'join', room: '_alerts' });
      await c.next('joined', (f) => f.room === '_alerts');
    }
    a.send({ t: 'alert', id: 'al', text: 'fire drill' });
    const got = await b.next('msg', (m) => m.room === '_alerts' && m.id === 'al');
    assert.equal(got.kind, 'alert');
    assert.equal(got.from.handle, 'al1');
    assert.equal(got.from.node, t.config.node);
    a.send({ t: 'pub', id: 'no', room: '_alerts', text: 'x' });
    assert.equal((await a.next('error', (e) => e.id === 'no')).code, 'forbidden_room');
  });

  it('refuses sessions with bad or taken handles', async () => {
    const bad = await fetch(`${t.url}/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ handle: '<script>' }) });
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { code: string }).code, 'bad_handle');
    await connect('taken');
    const dup = await fetch(`${t.url}/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ handle: 'TAKEN' }) });
    assert.equal(dup.status, 409);
  });

  it('keeps the user id when a session is renewed with its token', async () => {
    const s1 = await createSession(t.url, 'renewer');
    const s2 = await createSession(t.url, 'renewer', s1.token);
    assert.equal(s2.user.id, s1.user.id);
  });

  it('answers health, readiness and metrics', async () => {
    assert.equal((await fetch(`${t.url}/healthz`)).status, 200);
    const ready = await fetch(`${t.url}/readyz`);
    assert.equal(ready.status, 200);
    const metrics = await (await fetch(`${t.url}/metrics`)).text();
    assert.match(metrics, /confab_connections\{[^}]*\} \d+/);
    assert.match(metrics, /confab_messages_in_total\{[^}]*\} [1-9]\d*/);
    assert.match(metrics, /confab_publish_latency_seconds_bucket/);
  });
});
