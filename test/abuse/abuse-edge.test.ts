/**
 * Abuse at the edge (issue 11, S10): silent TCP sockets beyond the node's connection budget under a
 * lowered open-files limit (`prlimit --nofile=256`), and WebSockets beyond CONFAB_MAX_SOCKETS. The
 * node answers new requests with a typed 503 (`node_full`) instead of running out of descriptors
 * (before: ECONNRESET for everyone), a canary already connected loses nothing, and the node takes
 * new clients again once the attacker leaves.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { connect as tcpConnect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Canary } from '../../src/testkit/canary.js';
import { createSession, spawnGateway, type GatewayProcess } from '../../src/testkit/gateway.js';
import { RawClient } from '../../src/testkit/raw-client.js';
import { waitFor } from '../../src/procs/wait.js';

const NOFILE = 256;

async function status(url: string): Promise<{ status: number; code?: string } | { error: string }> {
  try {
    const res = await fetch(url, { headers: { connection: 'close' } });
    const body = (await res.json().catch(() => ({}))) as { code?: string };
    return { status: res.status, ...(body.code ? { code: body.code } : {}) };
  } catch (e) {
    return { error: String((e as Error).cause ?? e) };
  }
}

describe('abuse: the edge budget under ulimit -n 256', () => {
  let gw: GatewayProcess;
  let canary: Canary | undefined;
  const silent: Socket[] = [];
  before(async () => {
    gw = await spawnGateway(
      {
        CONFAB_HISTORY: 'memory',
        // the attack stands for many addresses: the per-address limits are out of the way, the node budget decides
        CONFAB_MAX_CONN_PER_IP: '100000',
        CONFAB_HEADERS_TIMEOUT_MS: '30000',
        CONFAB_MAX_SOCKETS: '40',
      },
      { nofile: NOFILE },
    );
  });
  after(async () => {
    await canary?.stop(0);
    for (const s of silent) s.destroy();
    await gw.kill();
  });

  it('refuses with a typed 503 before descriptors run out; the canary loses nothing; the node recovers', async (t) => {
    const wsUrl = gw.url.replace(/^http/, 'ws') + '/ws';
    canary = await Canary.start({ url: gw.url, wsUrl }, { intervalMs: 50 });
    // WebSockets beyond CONFAB_MAX_SOCKETS (40): 503 node_full at the upgrade
    const clients: RawClient[] = [];
    let wsRefusal: number | undefined;
    for (let i = 0; i < 45 && wsRefusal === undefined; i++) {
      try {
        clients.push(await RawClient.connect(wsUrl, (await createSession(gw.url, `u${i}`)).token));
      } catch (e) {
        wsRefusal = (e as { status?: number }).status;
      }
    }
    assert.equal(wsRefusal, 503, 'a socket beyond CONFAB_MAX_SOCKETS');
    assert.equal(clients.length, 39, 'the canary and 39 more');
    for (const c of clients) c.close();

    // silent TCP sockets, 50 at a time, until the node answers one of them 503 (at accept, before any request):
    // past the budget (256 - what the process holds - 64) they are answered or dropped, never accepted into EMFILE
    const u = new URL(gw.url);
    let dropped = 0;
    let answered = '';
    const open = () =>
      new Promise<void>((resolve) => {
        const sock = tcpConnect(Number(u.port), u.hostname);
        silent.push(sock);
        sock.on('error', () => {});
        sock.on('data', (d) => (answered ||= d.toString()));
        sock.once('connect', () => resolve());
        sock.once('close', () => {
          dropped++;
          resolve();
        });
      });
    for (let batch = 0; batch < 12 && !answered; batch++) await Promise.all(Array.from({ length: 50 }, open));
    assert.match(answered, /^HTTP\/1\.1 503 [^]*"code":"node_full"/, 'a silent socket past the budget is answered 503 node_full');
    // a new request meanwhile is refused with the typed answer too (or dropped at accept while refusals are in flight)
    let refusal: Awaited<ReturnType<typeof status>> | undefined;
    await waitFor(async () => {
      // the attacker keeps at it (idle keep-alive connections of the sessions above expire and free slots)
      await Promise.all(Array.from({ length: 20 }, open));
      refusal = await status(`${gw.url}/healthz`);
      return 'status' in refusal && refusal.status === 503;
    }, { timeoutMs: 15_000, intervalMs: 200, what: '503 node_full for a new request' }).catch((e: Error) => {
      throw new Error(`${e.message}; last answer ${JSON.stringify(refusal)}, gateway descriptors ${readdirSync(`/proc/${gw.pid}/fd`).length}`);
    });
    assert.deepEqual(refusal, { status: 503, code: 'node_full' });
    const fds = readdirSync(`/proc/${gw.pid}/fd`).length;
    t.diagnostic(`gateway descriptors: ${fds} of ${NOFILE}; silent sockets opened ${silent.length}, dropped or cut ${dropped}; refusal ${JSON.stringify(refusal)}`);
    assert.ok(fds < NOFILE - 16, `descriptors stay below the limit with headroom (${fds})`);

    for (const x of silent) x.destroy();
    await waitFor(async () => {
      const r = await status(`${gw.url}/healthz`);
      return 'status' in r && r.status === 200;
    }, { timeoutMs: 15_000, intervalMs: 100, what: 'the node to answer again' });
    const back = await RawClient.session({ url: gw.url, wsUrl }, 'after');
    back.c.close();

    const report = await canary.stop();
    canary = undefined;
    t.diagnostic(`canary: ${JSON.stringify(report)}`);
    assert.equal(report.lost, 0, 'the canary lost nothing');
    assert.equal(report.duplicated + report.reordered, 0);
    assert.deepEqual(report.errors, []);
    assert.equal(report.closeCode, undefined, 'the canary was never closed');
    assert.doesNotMatch(gw.output(), /EMFILE|too many open files/i);
  });
});
