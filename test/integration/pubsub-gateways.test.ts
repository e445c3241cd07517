/**
 * Gateway processes on the Google Cloud Pub/Sub bus (the real emulator) with PostgreSQL history (the
 * issue's pairing), configured only by the environment (CONFAB_BUS=pubsub, CONFAB_HISTORY, DATABASE_URL):
 *
 * 1. each gateway made its own `ID_<node>` subscription on the topic at start;
 * 2. publishers on both gateways at once: every member sees one order, no hole, each sender's order kept (G1);
 * 3. kill -9 of a gateway: its readers resume on the other with exactly what they missed, a resend of what it
 *    acknowledged is stored once (G2, G3); its subscription is left behind, `confab pubsub gc --dry-run`
 *    reports it and keeps it (a dry run), `confab pubsub gc` deletes it and keeps the live gateway's;
 * 4. the emulator frozen (SIGSTOP) for a while: readiness fails, members are told the bus is down, a publish
 *    gets a typed error, and everything returns by itself after SIGCONT (G10). The emulator killed and
 *    restarted empty (every topic and subscription lost, made again by the bus) is the contract's outage
 *    (test/contract/pubsub.test.ts);
 * 5. a drained gateway (SIGTERM) deletes its subscription (G5).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { PubSub } from '@google-cloud/pubsub';
import { gcSubscriptions } from '../../src/pubsub/gc.js';
import { createSession, REPO_ROOT, spawnGateway, type GatewayProcess } from '../../src/testkit/gateway.js';
import { startPubSubEmulator, type PubSubEmulator } from '../../src/testkit/pubsub-emulator.js';
import { joinRoom, RawClient } from '../../src/testkit/raw-client.js';
import { startPostgres, type PostgresServer } from '../../src/testkit/postgres.js';
import { waitFor } from '../../src/procs/wait.js';

const wsOf = (url: string) => url.replace(/^http/, 'ws') + '/ws';
const run = promisify(execFile);

type Msg = { offset: number; prev: number; id: string; epoch: string };

function assertChain(msgs: Msg[], what: string): void {
  for (let i = 1; i < msgs.length; i++) assert.equal(msgs[i]!.prev, msgs[i - 1]!.offset, `${what}: no hole before offset ${msgs[i]!.offset}`);
  assert.equal(new Set(msgs.map((m) => m.id)).size, msgs.length, `${what}: no duplicate`);
}

describe('gateway processes on the Pub/Sub bus (emulator) with PostgreSQL history', () => {
  let emu: PubSubEmulator;
  let pgs: PostgresServer;
  let ps: PubSub;
  const procs: GatewayProcess[] = [];
  const clients: RawClient[] = [];
  const tag = `ps${process.pid}`;
  const topic = `confab-${tag}`;

  const env = (node: string): Record<string, string> => ({
    ...emu.env(),
    PORT: '0',
    CONFAB_BUS: 'pubsub',
    CONFAB_HISTORY: 'postgres',
    DATABASE_URL: pgs.url,
    CONFAB_PUBSUB_TOPIC: topic,
    CONFAB_PUBSUB_HEALTH_MS: '500',
    CONFAB_PUBSUB_TIMEOUT_MS: '2000',
    CONFAB_NODE_ID: node,
    CONFAB_DRAIN_READY_DELAY_MS: '0',
    CONFAB_DRAIN_WINDOW_MS: '200',
    CONFAB_RATE_BURST: '500',
    CONFAB_RATE_PER_SEC: '500',
  });
  const spawn = async (node: string) => {
    const p = await spawnGateway(env(node), { timeoutMs: 30_000 });
    procs.push(p);
    return p;
  };
  const connect = async (p: GatewayProcess, handle: string, token?: string) => {
    const session = await createSession(p.url, handle, token);
    const c = await RawClient.connect(wsOf(p.url), session.token);
    clients.push(c);
    return { c, s: session };
  };
  const ready = async (p: GatewayProcess) => (await fetch(`${p.url}/readyz`)).status;
  const subscriptions = async () => {
    const [subs] = await ps.topic(topic).getSubscriptions();
    return subs.map((s) => s.name.slice(s.name.lastIndexOf('/') + 1)).sort();
  };
  const gc = async (...args: string[]) => {
    const r = await run(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'src/cli/confab.ts'), 'pubsub', 'gc', '--window', '3', ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...emu.env(), CONFAB_PUBSUB_TOPIC: topic },
      timeout: 60_000,
    });
    return r.stdout;
  };

  let gwA: GatewayProcess;
  let gwB: GatewayProcess;
  before(async () => {
    [emu, pgs] = await Promise.all([startPubSubEmulator(), startPostgres()]);
    ps = new PubSub({ projectId: emu.projectId, apiEndpoint: emu.host, emulatorMode: true });
    [gwA, gwB] = await Promise.all([spawn('psA'), spawn('psB')]);
  });
  after(async () => {
    for (const c of clients) c.close();
    for (const p of procs) await p.kill();
    await ps?.close();
    await Promise.all([emu?.close(), pgs?.close()]);
  });

  it('starts the pubsub bus + postgres history from CONFAB_BUS / CONFAB_HISTORY, each gateway with its own ID_<node> subscription', async () => {
    for (const p of [gwA, gwB]) {
      assert.match(p.output(), /confab listening on \S+ \(node ps[AB], region local, bus pubsub, history postgres\)/);
      assert.equal(await ready(p), 200);
    }
    assert.deepEqual(await subscriptions(), ['ID_psA', 'ID_psB']);
    const [meta] = await ps.subscription('ID_psA').getMetadata();
    assert.equal(Number(meta.expirationPolicy?.ttl?.seconds), 86_400, 'left-over subscriptions expire after 1 day, not 31');
    assert.equal(meta.enableMessageOrdering, true);
  });

  it('delivers across gateways in one order while both gateways publish at once (G1)', async () => {
    const members = [await connect(gwA, 'pa'), await connect(gwB, 'pb'), await connect(gwB, 'pc')];
    for (const { c } of members) await joinRoom(c, 'busy');
    const per = 30;
    members.forEach(({ c }, i) => {
      for (let k = 0; k < per; k++) c.send({ t: 'pub', id: `n${i}k${k}`, room: 'busy', text: `${i}:${k}` });
    });
    const total = per * members.length;
    await waitFor(() => members.every(({ c }) => c.msgs('busy').length >= total), { what: 'every member has every message', timeoutMs: 20_000 });
    const orders = members.map(({ c }) => c.msgs('busy').map((m) => `${m.offset}:${m.id}`));
    assert.deepEqual(orders[1], orders[0]);
    assert.deepEqual(orders[2], orders[0]);
    const msgs = members[0]!.c.msgs('busy');
    assert.equal(msgs.length, total);
    assertChain(msgs, 'busy');
    for (let i = 0; i < members.length; i++) {
      const mine = msgs.filter((m) => m.id.startsWith(`n${i}k`));
      assert.deepEqual(mine.map((m) => Number(m.id.slice(m.id.indexOf('k') + 1))), Array.from({ length: per }, (_, k) => k), 'each sender keeps its own order');
      assert.ok(mine.every((m) => m.from.node === (i === 0 ? 'psA' : 'psB')), 'node stamped by the server');
    }
  });

  it('kill -9 of a gateway: readers resume on the other exactly, a resend is stored once; its subscription is left behind and `confab pubsub gc` deletes it (G2, G3)', async () => {
    const writer = await connect(gwB, 'writer');
    await joinRoom(writer.c, 'hop');
    const readers = await Promise.all(Array.from({ length: 4 }, async (_, i) => {
      const r = await connect(gwA, `reader${i}`);
      const j = await joinRoom(r.c, 'hop');
      return { ...r, epoch: j.epoch };
    }));
    const doomed = await connect(gwA, 'doomed');
    await joinRoom(doomed.c, 'hop');
    for (let i = 0; i < 5; i++) writer.c.send({ t: 'pub', id: `h${i}`, room: 'hop', text: `h${i}` });
    await writer.c.next('ack', (a) => a.id === 'h4');
    doomed.c.send({ t: 'pub', id: 'd0', room: 'hop', text: 'from the doomed gateway' });
    const firstAck = await doomed.c.next('ack', (a) => a.id === 'd0');
    await waitFor(() => readers.every((r) => r.c.msgs('hop').some((m) => m.id === 'd0')), { what: 'readers have the first six' });
    const seen = readers.map((r) => r.c.msgs('hop').at(-1)!.offset);

    await gwA.kill();
    await waitFor(() => readers.every((r) => r.c.closeCode !== undefined), { what: 'readers see the crash' });
    for (let i = 5; i < 12; i++) writer.c.send({ t: 'pub', id: `h${i}`, room: 'hop', text: `h${i}` });
    await writer.c.next('ack', (a) => a.id === 'h11');

    const resumed = await Promise.all(readers.map(async (r, i) => {
      const c = await RawClient.connect(wsOf(gwB.url), r.s.token);
      clients.push(c);
      const j = await joinRoom(c, 'hop', { epoch: r.epoch, offset: seen[i]! });
      return { c, j };
    }));
    const again = await RawClient.connect(wsOf(gwB.url), doomed.s.token);
    clients.push(again);
    await joinRoom(again, 'hop');
    again.send({ t: 'pub', id: 'd0', room: 'hop', text: 'from the doomed gateway' });
    const dup = await again.next('ack', (a) => a.id === 'd0');
    assert.equal(dup.dup, true, 'the resend is recognised');
    assert.equal(dup.offset, firstAck.offset, 'and answered with the original offset');

    writer.c.send({ t: 'pub', id: 'live', room: 'hop', text: 'live' });
    for (const { c, j } of resumed) {
      assert.equal(j.recovered, true);
      assert.equal(j.gap, undefined);
      await c.next('msg', (m) => m.id === 'live');
      assert.deepEqual(c.msgs('hop').map((m) => m.id), [...Array.from({ length: 7 }, (_, k) => `h${k + 5}`), 'live'], 'exactly the missed messages, then live');
      assertChain(c.msgs('hop'), 'resumed');
      assert.equal(c.msgs('hop')[0]!.prev, seen[0], 'the replay starts right after the last message seen');
    }

    // the killed gateway could not delete its subscription
    assert.deepEqual(await subscriptions(), ['ID_psA', 'ID_psB']);
    const dry = await gcSubscriptions({ client: ps, topic, windowMs: 3000, dryRun: true });
    assert.deepEqual(dry.entries.map((e) => [e.subscription, e.state, e.deleted]), [['ID_psA', 'gone', false], ['ID_psB', 'heard', false]]);
    assert.ok(dry.heard.includes('psB'));
    assert.deepEqual(await subscriptions(), ['ID_psA', 'ID_psB'], 'a dry run deletes nothing');
    const real = await gc();
    assert.match(real, /^ID_psA\tgone \(not heard\), deleted$/m);
    assert.deepEqual(await subscriptions(), ['ID_psB'], 'only the dead gateway\'s subscription is gone (and gc removed its own)');
  });

  it('the emulator frozen (SIGSTOP): not ready, typed errors, back by itself after SIGCONT (G10)', async () => {
    gwA = await spawn('psA2');
    const talk = [await connect(gwA, 'ta'), await connect(gwB, 'tb')];
    for (const { c } of talk) await joinRoom(c, 'talk');
    await waitFor(async () => (await ready(gwA)) === 200, { what: 'psA2 ready' });

    emu.pause();
    await waitFor(async () => (await ready(gwA)) === 503 && (await ready(gwB)) === 503, { what: 'readyz 503 on both gateways', timeoutMs: 15_000 });
    for (const { c } of talk) await c.next('status', (f) => f.bus === 'down', 15_000);
    talk[1]!.c.send({ t: 'pub', id: 'x0', room: 'talk', text: 'while down' });
    const err = await talk[1]!.c.next('error', (e) => e.id === 'x0');
    assert.equal(err.code, 'bus_unavailable');
    for (const p of [gwA, gwB]) assert.equal((await fetch(`${p.url}/healthz`)).status, 200, 'the gateway stays alive');

    emu.resume();
    await waitFor(async () => (await ready(gwA)) === 200 && (await ready(gwB)) === 200, { what: 'ready again', timeoutMs: 30_000 });
    for (const { c } of talk) await c.next('status', (f) => f.bus === 'up', 15_000);
    assert.deepEqual(await subscriptions(), ['ID_psA2', 'ID_psB'], 'both subscriptions still there');
    await waitFor(async () => {
      talk[1]!.c.send({ t: 'pub', id: 'x0', room: 'talk', text: 'while down' });
      return (await talk[1]!.c.next('ack', (a) => a.id === 'x0', 2_000).catch(() => undefined)) !== undefined;
    }, { what: 'the resend acknowledged', timeoutMs: 20_000 });
    talk[0]!.c.send({ t: 'pub', id: 'x1', room: 'talk', text: 'after' });
    await waitFor(() => talk.every(({ c }) => c.msgs('talk').some((m) => m.id === 'x1')), { what: 'both talkers have the message after the outage' });
    const orders = talk.map(({ c }) => c.msgs('talk').map((m) => `${m.offset}:${m.id}`));
    assert.deepEqual(orders[1], orders[0]);
    assert.deepEqual(talk[0]!.c.msgs('talk').map((m) => m.id), ['x0', 'x1']);
  });

  it('a drained gateway (SIGTERM) deletes its subscription (G5)', async () => {
    assert.deepEqual(await subscriptions(), ['ID_psA2', 'ID_psB']);
    const code = await gwA.stop();
    assert.equal(code, 0);
    assert.deepEqual(await subscriptions(), ['ID_psB']);
  });
});
