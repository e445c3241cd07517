/**
 * The conformance kit (`confab conformance`, src/conformance/) against real gateways, at their
 * default limits: (a) the embedded default gateway, through the command line as a third party
 * would run it; (b) two `confab start` processes on one nats-server (JetStream), each checked
 * with the other as --peer (sessions, delivery, resume and resends across gateways). Every check
 * must pass, over the WebSocket and over the HTTP fallback. And the kit itself: a server that does not speak the protocol fails it, with a
 * non-zero exit.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseConformanceArgs } from '../../src/cli/conformance.js';
import { CHECKS, runConformance, type ConformanceReport } from '../../src/conformance/index.js';
import { REPO_ROOT, spawnGateway, startTestGateway, TEST_SECRET, type GatewayProcess, type TestGateway } from '../../src/testkit/gateway.js';
import { startNats, type NatsServer } from '../../src/procs/nats.js';

/** `confab conformance …` as a child process (asynchronous: the gateway it checks may live in this process). */
function confabConformance(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'src/cli/confab.ts'), 'conformance', ...args], { cwd: REPO_ROOT });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d));
  child.stderr.on('data', (d: Buffer) => (err += d));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, out, err })));
}

function failures(r: ConformanceReport): string {
  return r.results.filter((x) => x.status !== 'pass').map((x) => `${x.status} ${x.id}: ${x.reason}`).join('\n');
}

function assertAllPass(r: ConformanceReport, expectSkipped: string[] = []): void {
  const notPassed = r.results.filter((x) => x.status !== 'pass');
  assert.deepEqual(notPassed.map((x) => x.id).sort(), [...expectSkipped].sort(), `not passed:\n${failures(r)}`);
  for (const x of notPassed) assert.equal(x.status, 'skip', `${x.id}: ${x.reason}`);
  assert.equal(r.ok, true);
  assert.equal(r.frames.invalid, 0);
  assert.ok(r.frames.received > 100, `only ${r.frames.received} frames received`);
}

const CLUSTER_CHECKS = CHECKS.filter((c) => c.id.startsWith('cluster.')).map((c) => c.id);

describe('confab conformance against the embedded gateway', () => {
  let gw: TestGateway;
  const dir = mkdtempSync(join(tmpdir(), 'confab-conformance-'));
  before(async () => {
    gw = await startTestGateway();
  });
  after(async () => {
    await gw?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the command passes every check (alerts on), prints the table and writes the JSON report', async () => {
    const file = join(dir, 'report.json');
    const t0 = Date.now();
    const r = await confabConformance([gw.url, '--alerts', '--json', file]);
    const report = JSON.parse(readFileSync(file, 'utf8')) as ConformanceReport;
    assertAllPass(report, CLUSTER_CHECKS);
    assert.equal(r.code, 0, `exit ${r.code}\n${r.out}\n${r.err}`);
    for (const c of CHECKS) assert.match(r.out, new RegExp(`^${c.id.replace('.', '\\.')}\\s+(PASS|SKIP)\\s`, 'm'), `table row for ${c.id}`);
    assert.match(r.out, /frames\.schema\s+PASS/);
    assert.match(r.out, /\d+ passed, 0 failed, 4 skipped/);
    assert.ok(report.durationMs < 20_000, `the run took ${report.durationMs} ms`);
    assert.ok(Date.now() - t0 < 40_000);
    for (const x of report.results) assert.ok(x.section.length > 0 && x.name.length > 0, `${x.id} names its doc section`);
  });

  it('over the HTTP fallback (--transport fallback) every check passes but the binary-frame one (no binary frames there)', async () => {
    const r = await confabConformance([gw.url, '--alerts', '--transport', 'fallback']);
    assert.equal(r.code, 0, `exit ${r.code}\n${r.out}\n${r.err}`);
    assert.match(r.out, /over the HTTP fallback/);
    assert.match(r.out, /SKIP error\.bad_frame: binary frames do not exist on the HTTP fallback/);
    assert.match(r.out, /frame\.too_large\s+PASS/);
    assert.match(r.out, /\d+ passed, 0 failed, 5 skipped/);
  });

  it('without --alerts the alert check is skipped, not run', async () => {
    const report = await runConformance({ url: gw.url, only: ['alert'] });
    assert.deepEqual(report.results.map((x) => [x.id, x.status]), [['session.create', 'pass'], ['ws.welcome', 'pass'], ['alert.join', 'pass'], ['alert.send', 'skip'], ['frames.schema', 'pass']]);
    assert.match(report.results[3]!.reason!, /--alerts/);
  });
});

describe('confab conformance: the kit fails what does not conform', () => {
  let server: Server;
  let url: string;
  before(async () => {
    // answers /healthz with text and every other path with 404: not a confab server
    server = createServer((req, res) => {
      if (req.url === '/healthz') return void res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"code":"not_found"}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('fails the checks, skips what depends on them, exits 1', async () => {
    const r = await confabConformance([url]);
    assert.equal(r.code, 1, r.out + r.err);
    assert.match(r.out, /^http\.healthz\s+FAIL\s/m);
    assert.match(r.out, /FAIL http\.healthz: GET \/healthz: content-type should be application\/json/);
    assert.match(r.out, /^session\.create\s+FAIL\s/m);
    assert.match(r.out, /^ws\.welcome\s+SKIP\s/m);
    assert.match(r.out, /SKIP pub\.ack: needs ws\.welcome to pass first/);
  });

  it('usage mistakes exit 2', async () => {
    assert.throws(() => parseConformanceArgs([]), /URL is missing/);
    assert.throws(() => parseConformanceArgs(['ftp://x']), /http\(s\)/);
    assert.throws(() => parseConformanceArgs(['http://x', '--only', 'nope']), /--only/);
    assert.throws(() => parseConformanceArgs(['http://x', '--timeout', '5']), /--timeout/);
    const r = await confabConformance(['--bogus']);
    assert.equal(r.code, 2);
  });
});

describe('confab conformance against two gateway processes on NATS', () => {
  let nats: NatsServer & { close(): Promise<void> };
  const gws: GatewayProcess[] = [];
  const dirs: string[] = [];
  before(async () => {
    nats = await startNats();
    for (const node of ['cfA', 'cfB']) {
      const dataDir = mkdtempSync(join(tmpdir(), 'confab-cf-gw-'));
      dirs.push(dataDir);
      gws.push(await spawnGateway({ PORT: '0', NATS_URL: nats.url, CONFAB_SECRET: TEST_SECRET, CONFAB_NODE_ID: node, CONFAB_DATA_DIR: dataDir, CONFAB_DRAIN_READY_DELAY_MS: '0' }, { timeoutMs: 30_000 }));
    }
  });
  after(async () => {
    for (const g of gws) await g.stop();
    await nats?.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('every check passes on the first gateway, with the second as peer (cross-gateway delivery, resume, resend)', async () => {
    const report = await runConformance({ url: gws[0]!.url, peer: gws[1]!.url, alerts: true });
    assertAllPass(report);
    assert.ok(report.durationMs < 20_000, `the run took ${report.durationMs} ms`);
  });

  it('and on the second gateway, with the first as peer', async () => {
    const report = await runConformance({ url: gws[1]!.url, peer: gws[0]!.url, alerts: true });
    assertAllPass(report);
  });

  it('over the HTTP fallback too, with the peer (cross-gateway checks over the fallback)', async () => {
    const report = await runConformance({ url: gws[0]!.url, peer: gws[1]!.url, alerts: true, transport: 'fallback' });
    assert.equal(report.transport, 'fallback');
    assertAllPass(report, ['error.bad_frame']);
  });
});
