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
import { REPO_ROOT, type GatewayProcess } from '../../src/testkit/gateway.js';
import { startPubSubEmulator, type PubSubEmulator } from '../../src/testkit/pubsub-emulator.js';
import { joinRoom } from '../../src/testkit/raw-client.js';
import { startPostgres, type PostgresServer } from '../../src/testkit/postgres.js';
import { waitFor } from '../../src/procs/wait.js';
import { killAndResume, publishConcurrently, twoGateways, type GatewayFixture } from '../../src/testkit/two-gateways.js';

const run = promisify(execFile);

describe('gateway processes on the Pub/Sub bus (emulator) with PostgreSQL history', () => {
  let emu: PubSubEmulator;
  let pgs: PostgresServer;
  let ps: PubSub;
  let fx: GatewayFixture<GatewayProcess>;
  const tag = `ps${process.pid}`;
  const topic = `confab-${tag}`;

  const env = (node: string): Record<string, string> => ({
    ...emu.env(),
    CONFAB_BUS: 'pubsub',
    CONFAB_HISTORY: 'postgres',
    DATABASE_URL: pgs.url,
    CONFAB_PUBSUB_TOPIC: topic,
    CONFAB_PUBSUB_HEALTH_MS: '500',
    CONFAB_PUBSUB_TIMEOUT_MS: '2000',
    CONFAB_NODE_ID: node,
    CONFAB_RATE_BURST: '500',
    CONFAB_RATE_PER_SEC: '500',
  });
  const connect = (p: GatewayProcess, handle: string) => fx.connect(p, handle);
  const ready = (p: GatewayProcess) => fx.ready(p);
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
    fx = await twoGateways(env, ['psA', 'psB']);
    [gwA, gwB] = fx.gws as [GatewayProcess, GatewayProcess];
  });
  after(async () => {
    await fx?.close();
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
    const msgs = await publishConcurrently(members, 'busy', 30);
    for (let i = 0; i < members.length; i++) {
      assert.ok(msgs.filter((m) => m.id.startsWith(`n${i}k`)).every((m) => m.from.node === (i === 0 ? 'psA' : 'psB')), 'node stamped by the server');
    }
  });

  it('kill -9 of a gateway: readers resume on the other exactly, a resend is stored once; its subscription is left behind and `confab pubsub gc` deletes it (G2, G3)', async () => {
    await killAndResume(fx, gwA, gwB, { readers: 4 });

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
    gwA = await fx.add('psA2');
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
