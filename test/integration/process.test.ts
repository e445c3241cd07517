/**
 * The gateway as a real process on the embedded default (in-process bus, LMDB):
 * kill -9 and restart keep every acknowledged message and resume exactly;
 * SIGTERM drains: readiness fails before any socket closes, clients are told to
 * move with a retry hint, in-flight publishes finish, the process exits 0.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createSession, spawnGateway, type GatewayProcess } from '../../src/testkit/gateway.js';
import { RawClient } from '../../src/testkit/raw-client.js';
import { waitFor } from '../../src/procs/wait.js';

const wsOf = (url: string) => url.replace(/^http/, 'ws') + '/ws';

describe('gateway process on the embedded default', () => {
  const dirs: string[] = [];
  const procs: GatewayProcess[] = [];
  const clients: RawClient[] = [];
  after(async () => {
    for (const c of clients) c.close();
    for (const p of procs) await p.kill();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  const tmp = () => {
    const d = mkdtempSync(join(tmpdir(), 'confab-proc-'));
    dirs.push(d);
    return d;
  };

  it('keeps acknowledged messages across kill -9 and resumes exactly after restart (G2, G8)', async () => {
    const dir = tmp();
    const env = { CONFAB_DATA_DIR: dir };
    const p1 = await spawnGateway(env);
    procs.push(p1);
    const sa = await createSession(p1.url, 'crash-a');
    const sb = await createSession(p1.url, 'crash-b');
    const a = await RawClient.connect(wsOf(p1.url), sa.token);
    const b = await RawClient.connect(wsOf(p1.url), sb.token);
    clients.push(a, b);
    for (const c of [a, b]) {
      c.send({ t: 'join', room: 'lobby' });
      await c.next('joined');
    }
    const j = b.all('joined')[0]!;
    for (let i = 0; i < 10; i++) a.send({ t: 'pub', id: `pre${i}`, room: 'lobby', text: `pre ${i}` });
    await a.next('ack', (x) => x.id === 'pre9');
    await waitFor(() => b.msgs('lobby').length === 10);
    const seen = b.msgs('lobby').at(-1)!.offset;
    await p1.kill();
    await waitFor(() => b.closeCode !== undefined, { what: 'client sees the crash' });

    const p2 = await spawnGateway({ ...env, PORT: new URL(p1.url).port }); // restart on the same port
    procs.push(p2);
    const a2 = await RawClient.connect(wsOf(p2.url), sa.token);
    clients.push(a2);
    a2.send({ t: 'join', room: 'lobby', since: { epoch: j.epoch, offset: seen } });
    await a2.next('joined');
    for (let i = 0; i < 5; i++) a2.send({ t: 'pub', id: `post${i}`, room: 'lobby', text: `post ${i}` });
    a2.send({ t: 'pub', id: 'pre3', room: 'lobby', text: 'pre 3' }); // resent after a lost ack (another text would be duplicate_id_conflict)
    const dup = await a2.next('ack', (x) => x.id === 'pre3');
    assert.equal(dup.dup, true, 'a resend after the crash is stored once (G3)');
    const b2 = await RawClient.connect(wsOf(p2.url), sb.token);
    clients.push(b2);
    b2.send({ t: 'join', room: 'lobby', since: { epoch: j.epoch, offset: seen } });
    const j2 = await b2.next('joined');
    assert.equal(j2.recovered, true);
    assert.equal(j2.epoch, j.epoch, 'the epoch survives a restart');
    await waitFor(() => b2.msgs('lobby').length === 5);
    assert.deepEqual(b2.msgs('lobby').map((m) => m.text), ['post 0', 'post 1', 'post 2', 'post 3', 'post 4']);
    assert.equal(b2.msgs('lobby')[0]!.prev, seen, 'no hole at the seam');
  });

  it('drains on SIGTERM: not ready first, then clients moved with a retry hint, publishes finished, exit 0 (G5)', async () => {
    const dir = tmp();
    const p = await spawnGateway({ CONFAB_DATA_DIR: dir, CONFAB_DRAIN_READY_DELAY_MS: '300', CONFAB_DRAIN_WINDOW_MS: '600' });
    procs.push(p);
    const cs: RawClient[] = [];
    for (let i = 0; i < 6; i++) {
      const c = await RawClient.connect(wsOf(p.url), (await createSession(p.url, `drain${i}`)).token);
      c.send({ t: 'join', room: 'lobby' });
      await c.next('joined');
      cs.push(c);
    }
    clients.push(...cs);
    let notReadyAt = 0;
    let polling = true;
    const poll = (async () => {
      while (polling && !notReadyAt) {
        const r = await fetch(`${p.url}/readyz`).catch(() => undefined);
        if (r && r.status === 503) notReadyAt = Date.now();
        await r?.arrayBuffer();
      }
    })();
    const firstClose = new Promise<number>((resolve) => cs.forEach((c) => c.ws.once('close', () => resolve(Date.now()))));
    const exit = p.stop();
    // a publish right as the drain starts is either stored and acknowledged, or refused with a typed error
    cs[0]!.send({ t: 'pub', id: 'inflight', room: 'lobby', text: 'during drain' });
    const closedAt = await firstClose;
    polling = false;
    await poll;
    assert.ok(notReadyAt > 0 && notReadyAt <= closedAt, 'readiness failed before the first socket closed');
    const codes = await Promise.all(cs.map((c) => c.closed()));
    assert.deepEqual(new Set(codes), new Set([4000]));
    for (const c of cs) {
      const reason = JSON.parse(c.closeReason!) as { code: string; retryMs: number };
      assert.equal(reason.code, 'draining');
      assert.ok(reason.retryMs >= 0 && reason.retryMs < 1000);
    }
    const answered = cs[0]!.all('ack').some((a) => a.id === 'inflight') || cs[0]!.all('error').some((e) => e.id === 'inflight');
    assert.ok(answered, 'the in-flight publish was answered before the close');
    assert.equal(await exit, 0);
  });
});
