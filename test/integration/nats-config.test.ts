/**
 * NATS configuration: env validation (typed ConfigError naming the variable),
 * NATSAPPHOST discovery, credentials against a real server, and the
 * nats-server config generator (validated by `nats-server -t`, and a generated
 * standalone config actually turning healthy).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { nkeys } from '@nats-io/transport-node';
import { ConfigError, loadConfig } from '../../src/config/config.js';
import { ConfabError } from '../../src/protocol/codes.js';
import { candidateNames, resolveAppHost } from '../../src/nats/discovery.js';
import { createNatsAdapters, readNatsSettings, renderNatsConfig, writeNatsConfigAtomic } from '../../src/nats/index.js';
import { NATS_SERVER_BIN, runNatsOnConfig, startNats } from '../../src/procs/nats.js';
import { waitFor } from '../../src/procs/wait.js';

const log = pino({ level: 'silent' });
const dir = mkdtempSync(join(tmpdir(), 'confab-natscfg-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const base = { natsUrl: 'nats://127.0.0.1:4222', natsAppHost: undefined, historyLimit: 100 };
/** Client credentials every generated config requires. */
const AUTH = { NATS_USER: 'confab', NATS_PASS: 'test-password-0123' };
function throwsVar(fn: () => unknown, variable: string): void {
  assert.throws(fn, (e: unknown) => e instanceof ConfigError && e.variable === variable, `expected ConfigError for ${variable}`);
}
type Adapters = Awaited<ReturnType<typeof createNatsAdapters>>;
/** Close what an open gave (every NATS client here reconnects forever: one left open keeps the file from ever exiting). */
async function closeAll(a: Adapters): Promise<void> {
  await a.bus.close();
  await a.history.close();
}
/** For an open that must fail: if it opens after all, close it (so the assertion fails, and nothing is left reconnecting). */
async function closedIfOpened(p: Promise<Adapters>): Promise<void> {
  await closeAll(await p);
}

describe('NATS settings from env', () => {
  it('has safe defaults', () => {
    const s = readNatsSettings({ ...base, natsUrl: 'nats://a:4222, b:4223' }, {});
    assert.deepEqual(s.servers, ['nats://a:4222', 'nats://b:4223']);
    assert.equal(s.stream.name, 'CONFAB');
    assert.equal(s.stream.replicas, 1);
    assert.equal(s.stream.storage, 'file');
    assert.equal(s.stream.perRoom, 100);
    assert.equal(s.stream.maxAgeSec, 30 * 24 * 3600, 'CONFAB_HISTORY_MAX_AGE_S by default');
    assert.equal(s.stream.maxBytes, -1);
    assert.equal(s.auth.kind, 'none');
    assert.equal(s.prefix, 'confab');
  });

  it('rejects bad values with a ConfigError naming the variable', () => {
    throwsVar(() => readNatsSettings({ ...base, natsUrl: 'http://x:1' }, {}), 'NATS_URL');
    throwsVar(() => readNatsSettings(base, { CONFAB_STREAM_REPLICAS: '7' }), 'CONFAB_STREAM_REPLICAS');
    throwsVar(() => readNatsSettings(base, { CONFAB_STREAM_REPLICAS: 'three' }), 'CONFAB_STREAM_REPLICAS');
    throwsVar(() => readNatsSettings(base, { CONFAB_STREAM_STORAGE: 'disk' }), 'CONFAB_STREAM_STORAGE');
    throwsVar(() => readNatsSettings(base, { CONFAB_STREAM_NAME: 'a.b' }), 'CONFAB_STREAM_NAME');
    throwsVar(() => readNatsSettings(base, { CONFAB_STREAM_MAX_AGE_S: '60', CONFAB_STREAM_DUPLICATE_WINDOW_S: '120' }), 'CONFAB_STREAM_DUPLICATE_WINDOW_S');
    throwsVar(() => readNatsSettings(base, { CONFAB_STREAM_MAX_BYTES: '0' }), 'CONFAB_STREAM_MAX_BYTES');
    throwsVar(() => readNatsSettings(base, { NATS_USER: 'a' }), 'NATS_PASS');
    throwsVar(() => readNatsSettings(base, { NATS_PASS: 'a' }), 'NATS_USER');
    throwsVar(() => readNatsSettings(base, { NATS_USER: 'a', NATS_PASS: 'b', NATS_TOKEN: 't' }), 'NATS_TOKEN');
    throwsVar(() => readNatsSettings(base, { NATS_CREDS: join(dir, 'missing.creds') }), 'NATS_CREDS');
    const notCreds = join(dir, 'bad.creds');
    writeFileSync(notCreds, 'hello');
    throwsVar(() => readNatsSettings(base, { NATS_CREDS: notCreds }), 'NATS_CREDS');
    throwsVar(() => readNatsSettings(base, { NATS_NKEY: notCreds }), 'NATS_NKEY');
    throwsVar(() => readNatsSettings(base, { NATS_TLS_CERT: notCreds }), 'NATS_TLS_KEY');
    throwsVar(() => readNatsSettings(base, { NATS_TLS_CA: join(dir, 'nope.pem') }), 'NATS_TLS_CA');
    throwsVar(() => readNatsSettings({ ...base, natsUrl: undefined, natsAppHost: 'bad host!' }, {}), 'NATSAPPHOST');
    throwsVar(() => readNatsSettings(base, { NATS_PORT: '70000' }), 'NATS_PORT');
  });
});

describe('NATSAPPHOST discovery', () => {
  it('tries <name>.internal first, then the name; a dotted name is used as given', () => {
    assert.deepEqual(candidateNames('chat-nats'), ['chat-nats.internal', 'chat-nats']);
    assert.deepEqual(candidateNames('nats.example.org'), ['nats.example.org']);
  });

  it('connects to every address the name resolves to (IPv6 in brackets)', async () => {
    const asked: string[] = [];
    const urls = await resolveAppHost('myclusterapp', 4222, async (h) => {
      asked.push(h);
      if (h !== 'myclusterapp.internal') throw Object.assign(new Error('nx'), { code: 'ENOTFOUND' });
      return [{ address: 'fdaa:0:1::2', family: 6 }, { address: 'fdaa:0:1::3', family: 6 }, { address: 'fdaa:0:1::3', family: 6 }];
    });
    assert.deepEqual(asked, ['myclusterapp.internal']);
    assert.deepEqual(urls, ['nats://[fdaa:0:1::2]:4222', 'nats://[fdaa:0:1::3]:4222']);
  });

  it('fails with a ConfigError naming NATSAPPHOST when nothing resolves', async () => {
    await assert.rejects(resolveAppHost('no-such-host-confab', 4222, async () => {
      throw Object.assign(new Error('nx'), { code: 'ENOTFOUND' });
    }), (e: unknown) => e instanceof ConfigError && e.variable === 'NATSAPPHOST');
  });

  it('NATSAPPHOST=localhost with NATS_PORT reaches a real server', async (t) => {
    const s = await startNats();
    t.after(() => s.close());
    const env = { NATSAPPHOST: 'localhost', NATS_PORT: String(s.port), CONFAB_SECRET: 'x'.repeat(20), CONFAB_NODE_ID: 'disc1' };
    const config = loadConfig(env);
    assert.equal(config.bus, 'nats');
    // real DNS: localhost.internal does not resolve, localhost does (maybe to ::1 as well, where nothing
    // listens: the client tries every resolved address)
    const a = await createNatsAdapters(config, log, { env });
    try {
      const got: string[] = [];
      a.bus.subscribe('room.disc', (d) => got.push(new TextDecoder().decode(d)));
      await a.bus.flush();
      a.bus.publish('room.disc', new TextEncoder().encode('hi'));
      await waitFor(() => got.length === 1, { what: 'delivery' });
      const conns = await s.monitor('/connz');
      assert.ok(conns.body.connections.some((c: { name?: string }) => c.name === 'confab-disc1'), 'connection is named after the node');
    } finally {
      await a.bus.close();
      await a.history.close();
    }
  });
});

describe('NATS credentials against a real server', () => {
  it('user/password and token: right ones connect, wrong ones fail with bus_unavailable', async (t) => {
    const up = await startNats({ extraConfig: 'authorization { user: confab, password: s3cret-pass }' });
    t.after(() => up.close());
    const env = (extra: Record<string, string>) => ({ NATS_URL: up.url, CONFAB_SECRET: 'x'.repeat(20), NATS_CONNECT_TIMEOUT_MS: '2000', ...extra });
    const ok = await createNatsAdapters(loadConfig(env({})), log, { env: env({ NATS_USER: 'confab', NATS_PASS: 's3cret-pass' }) });
    t.after(() => closeAll(ok)); // on a failed assertion (closing is idempotent)
    assert.equal(ok.bus.status, 'up');
    await closeAll(ok);
    await assert.rejects(closedIfOpened(createNatsAdapters(loadConfig(env({})), log, { env: env({ NATS_USER: 'confab', NATS_PASS: 'wrong' }) })), (e: unknown) => e instanceof ConfabError && e.code === 'bus_unavailable');

    const tok = await startNats({ extraConfig: 'authorization { token: tok-123456 }' });
    t.after(() => tok.close());
    const tenv = (extra: Record<string, string>) => ({ NATS_URL: tok.url, CONFAB_SECRET: 'x'.repeat(20), NATS_CONNECT_TIMEOUT_MS: '2000', ...extra });
    await closeAll(await createNatsAdapters(loadConfig(tenv({})), log, { env: tenv({ NATS_TOKEN: 'tok-123456' }) }));
    await assert.rejects(closedIfOpened(createNatsAdapters(loadConfig(tenv({})), log, { env: tenv({ NATS_TOKEN: 'nope' }) })), (e: unknown) => e instanceof ConfabError && e.code === 'bus_unavailable');
  });
});

describe('NATS nkey and TLS against a real server', () => {
  const envFor = (url: string, extra: Record<string, string>) => ({ NATS_URL: url, CONFAB_SECRET: 'x'.repeat(20), NATS_CONNECT_TIMEOUT_MS: '2000', ...extra });
  const tryOpen = async (url: string, extra: Record<string, string>) => {
    const e = envFor(url, extra);
    await closedIfOpened(createNatsAdapters(loadConfig(e), log, { env: e }));
  };

  it('NATS_NKEY: the right seed connects, another one is refused', async (t) => {
    const user = nkeys.createUser();
    const other = nkeys.createUser();
    const s = await startNats({ extraConfig: `authorization { users: [ { nkey: ${user.getPublicKey()} } ] }` });
    t.after(() => s.close());
    const seedFile = join(dir, 'user.nk');
    writeFileSync(seedFile, new TextDecoder().decode(user.getSeed()));
    const otherFile = join(dir, 'other.nk');
    writeFileSync(otherFile, new TextDecoder().decode(other.getSeed()));
    await tryOpen(s.url, { NATS_NKEY: seedFile });
    await assert.rejects(tryOpen(s.url, { NATS_NKEY: otherFile }), (e: unknown) => e instanceof ConfabError && e.code === 'bus_unavailable');
  });

  it('TLS with a private CA and client certificates (mutual TLS)', async (t) => {
    const ssl = (...args: string[]) => {
      const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
    };
    ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=confab test CA');
    writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
    for (const who of ['server', 'client']) {
      ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${who}.key`, '-out', `${who}.csr`, '-subj', `/CN=${who}`);
      ssl('x509', '-req', '-in', `${who}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${who}.pem`, '-days', '1', '-extfile', 'san.ext');
    }
    const f = (n: string) => join(dir, n);
    const s = await startNats({ extraConfig: `tls { cert_file: "${f('server.pem')}", key_file: "${f('server.key')}", ca_file: "${f('ca.pem')}", verify: true, timeout: 2 }` });
    t.after(() => s.close());
    const url = `tls://127.0.0.1:${s.port}`;
    await tryOpen(url, { NATS_TLS_CA: f('ca.pem'), NATS_TLS_CERT: f('client.pem'), NATS_TLS_KEY: f('client.key') });
    await assert.rejects(tryOpen(url, { NATS_TLS_CA: f('ca.pem') }), (e: unknown) => e instanceof ConfabError && e.code === 'bus_unavailable', 'no client certificate: refused');
  });
});

describe('history stream settings', () => {
  it('are applied at start by every node, idempotently: created once, updated when settings change', async (t) => {
    const s = await startNats();
    t.after(() => s.close());
    const env = (extra: Record<string, string>) => ({ NATS_URL: s.url, CONFAB_SECRET: 'x'.repeat(20), CONFAB_STREAM_NAME: 'SETTINGS', CONFAB_NATS_PREFIX: 'settings', ...extra });
    const open = async (extra: Record<string, string>) => {
      const e = env(extra);
      const a = await createNatsAdapters(loadConfig(e), log, { env: e });
      await a.bus.close();
      return a.history;
    };
    // two nodes starting at once with the same settings: one stream, one epoch
    const [h1, h2] = await Promise.all([open({ CONFAB_HISTORY_LIMIT: '50' }), open({ CONFAB_HISTORY_LIMIT: '50' })]);
    // closed here on success; on a failed assertion by these hooks (close is idempotent), or the file never exits
    t.after(() => h1.close());
    t.after(() => h2.close());
    assert.equal(h1.epoch, h2.epoch);
    const first = await h1.append({ room: 'lobby', id: 'a', kind: 'msg', text: 'a', from: { user: 'u', handle: 'u', node: 'n', region: 'r' }, ts: 1 });
    await h1.close();
    await h2.close();
    const h3 = await open({ CONFAB_HISTORY_LIMIT: '70', CONFAB_STREAM_MAX_AGE_S: '3600', CONFAB_STREAM_MAX_BYTES: '10000000', CONFAB_STREAM_DUPLICATE_WINDOW_S: '60' });
    t.after(() => h3.close());
    assert.equal(h3.epoch, h1.epoch, 'an update keeps the epoch');
    assert.equal((await h3.read('lobby', 0, 10)).messages[0]?.offset, first.message.offset, 'an update keeps the messages');
    const info = (await (await s.monitor('/jsz?streams=1&config=1')).body) as { account_details?: { stream_detail?: { name: string; config: Record<string, number> }[] }[] };
    const cfg = info.account_details?.flatMap((a) => a.stream_detail ?? []).find((d) => d.name === 'SETTINGS')?.config;
    assert.ok(cfg, 'stream visible in /jsz');
    assert.equal(cfg.max_msgs_per_subject, 70);
    assert.equal(cfg.max_age, 3600 * 1e9);
    assert.equal(cfg.max_bytes, 10_000_000);
    assert.equal(cfg.duplicate_window, 60 * 1e9);
  });
});

describe('nats-server config generator', () => {
  const check = (text: string): { status: number | null; out: string } => {
    const f = join(dir, `check-${Math.random().toString(36).slice(2)}.conf`);
    writeNatsConfigAtomic(f, text);
    const r = spawnSync(NATS_SERVER_BIN, ['-t', '-c', f], { encoding: 'utf8' });
    return { status: r.status, out: `${r.stdout}${r.stderr}` };
  };

  it('renders the seed cluster layout (DNS routes, gateways per region, JetStream, monitoring) and nats-server accepts it', () => {
    const text = renderNatsConfig({
      ...AUTH,
      FLY_APP_NAME: 'confab-nats',
      FLY_REGION: 'ord',
      FLY_ALLOC_ID: 'abc123',
      NATS_GATEWAYS: 'ord,syd,cdg',
      NATS_STORE_DIR: join(dir, 'store'),
      NATS_MAX_FILE_STORE: '10GB',
      NATS_MAX_MEM_STORE: '256MB',
      NATS_APPEND_CONFIG: Buffer.from('max_payload: 2MB\n').toString('base64'),
    });
    assert.match(text, /server_name: "ord-abc123"/);
    assert.match(text, /nats-route:\/\/ord\.confab-nats\.internal:4248/);
    assert.match(text, /name: "syd", urls: \["nats:\/\/syd\.confab-nats\.internal:7222"\]/);
    assert.match(text, /http: "\[::\]:8222"/);
    assert.match(text, /max_file_store: 10GB/);
    assert.match(text, /max_payload: 2MB/);
    assert.match(text, /authorization \{\n  user: "confab"\n  password: "test-password-0123"\n\}/);
    const r = check(text);
    assert.equal(r.status, 0, r.out);
  });

  it('renders explicit routes and gateway URLs', () => {
    const text = renderNatsConfig({
      ...AUTH,
      NATS_SERVER_NAME: 'n2',
      NATS_CLUSTER_NAME: 'east',
      NATS_ROUTES: 'n1:4248, nats-route://10.0.0.3:4248, n4',
      NATS_GATEWAYS: 'west=nats://w1:7222|nats://w2:7222',
      NATS_STORE_DIR: join(dir, 'store2'),
    });
    assert.match(text, /"nats-route:\/\/n1:4248"/);
    assert.match(text, /"nats-route:\/\/10\.0\.0\.3:4248"/);
    assert.match(text, /"nats-route:\/\/n4:4248"/);
    assert.match(text, /name: "west", urls: \["nats:\/\/w1:7222", "nats:\/\/w2:7222"\]/);
    assert.equal(check(text).status, 0);
  });

  it('rejects bad env with a ConfigError naming the variable', () => {
    throwsVar(() => renderNatsConfig({ NATS_MAX_FILE_STORE: 'lots' }), 'NATS_MAX_FILE_STORE');
    throwsVar(() => renderNatsConfig({ NATS_PORT: '0' }), 'NATS_PORT');
    throwsVar(() => renderNatsConfig({ NATS_GATEWAYS: 'ord' }), 'NATS_GATEWAYS');
    throwsVar(() => renderNatsConfig({ NATS_SERVER_NAME: 'has space' }), 'NATS_SERVER_NAME');
    throwsVar(() => renderNatsConfig({ NATS_APPEND_CONFIG: '!!not base64!!' }), 'NATS_APPEND_CONFIG');
    // the bus is not open: a config without client credentials is refused unless asked for in so many words
    throwsVar(() => renderNatsConfig({}), 'NATS_USER');
    throwsVar(() => renderNatsConfig({ NATS_USER: 'confab' }), 'NATS_PASS');
    throwsVar(() => renderNatsConfig({ NATS_USER: 'confab', NATS_PASS: 'short' }), 'NATS_PASS');
    assert.doesNotMatch(renderNatsConfig({ NATS_NO_AUTH: '1' }), /authorization/);
  });

  it('writes atomically: the target is whole at every moment and no temp file is left', () => {
    const f = join(dir, 'atomic.conf');
    writeNatsConfigAtomic(f, 'a: 1\n');
    writeNatsConfigAtomic(f, 'b: 2\n');
    assert.equal(readFileSync(f, 'utf8'), 'b: 2\n');
    assert.deepEqual(readdirSync(dir).filter((n) => n.startsWith('atomic.conf.tmp')), []);
  });

  it('a generated single-node config (no routes) turns healthy with JetStream', async (t) => {
    const f = join(dir, 'single.conf');
    // rendered with fixed ports; the server runs it with kernel ports instead (-p -1 -m -1), read back from its ports file
    writeNatsConfigAtomic(f, renderNatsConfig({ ...AUTH, NATS_SERVER_NAME: 'solo', NATS_LISTEN_HOST: '127.0.0.1', NATS_PORT: '4222', NATS_HTTP_PORT: '8222', NATS_STORE_DIR: join(dir, 'solo-store'), NATS_MAX_MEM_STORE: '64MB' }));
    const server = await runNatsOnConfig(f);
    t.after(() => server.close());
    await server.waitHealthy(15_000);
    const jsz = (await server.monitor('/jsz')).body as { config?: { store_dir?: string } };
    assert.ok(jsz.config?.store_dir?.includes('solo-store'), 'JetStream is enabled on the store dir');
  });
});
