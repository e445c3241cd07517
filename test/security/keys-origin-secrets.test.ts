/**
 * Security suite: keys, origins, secrets, metrics (issue 10 items 3, 5, 6).
 *  - RS256 with a PEM public key and ES256 with a JWKS file: accepted; a token signed by another
 *    key, and the algorithm-confusion attack (an HS256 token whose HMAC key is the public PEM) refused;
 *  - DNS rebinding: before, `Origin: http://evil.example` with `Host: evil.example` passed the
 *    Origin check (it compared with Host); now origins are compared with the configured ones only;
 *  - secret files that are empty, short or readable by others are refused; a generated secret is
 *    0600 in a 0700 directory;
 *  - /metrics on its own port (and off the public one), or behind a bearer token;
 *  - the confusable skeletons the handle owner check uses.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { skeleton } from '../../src/auth/skeleton.js';
import { loadOrCreateSecret, readSecretFile } from '../../src/auth/secrets.js';
import { ConfigError } from '../../src/config/config.js';
import { LmdbHistory } from '../../src/history/lmdb.js';
import { startTestGateway, type TestGateway } from '../../src/testkit/gateway.js';
import { tryUpgrade } from './kit.js';

const dir = mkdtempSync(join(tmpdir(), 'confab-sec-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('app tokens signed with public keys', () => {
  const gws: TestGateway[] = [];
  let rsa: Awaited<ReturnType<typeof generateKeyPair>>;
  let ec: Awaited<ReturnType<typeof generateKeyPair>>;
  let pemFile: string;
  before(async () => {
    rsa = await generateKeyPair('RS256', { extractable: true });
    ec = await generateKeyPair('ES256', { extractable: true });
    pemFile = join(dir, 'app.pem');
    writeFileSync(pemFile, await exportSPKI(rsa.publicKey));
    const jwksFile = join(dir, 'app.jwks.json');
    writeFileSync(jwksFile, JSON.stringify({ keys: [{ ...(await exportJWK(ec.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] }));
    gws.push(await startTestGateway({ env: { CONFAB_JWT_PUBLIC_KEY: pemFile, CONFAB_JWT_ISSUER: 'https://app.example' } }));
    gws.push(await startTestGateway({ env: { CONFAB_JWT_JWKS: jwksFile, CONFAB_ANONYMOUS: '0' } }));
  });
  after(async () => {
    for (const g of gws) await g.close();
  });

  it('RS256 (PEM): accepted; another key, another issuer and the HS256-with-the-public-key confusion refused', async () => {
    const [g] = gws;
    const sign = (alg: string, key: Parameters<SignJWT['sign']>[0], iss = 'https://app.example') =>
      new SignJWT({ sub: 'r1', name: 'rsa.user' }).setProtectedHeader({ alg }).setIssuer(iss).setExpirationTime('5m').sign(key);
    assert.equal((await tryUpgrade(g!.wsUrl, await sign('RS256', rsa.privateKey))).status, 101);
    const other = await generateKeyPair('RS256');
    assert.equal((await tryUpgrade(g!.wsUrl, await sign('RS256', other.privateKey))).body?.code, 'unauthorized');
    assert.equal((await tryUpgrade(g!.wsUrl, await sign('RS256', rsa.privateKey, 'https://evil.example'))).body?.code, 'unauthorized');
    const confused = await sign('HS256', new TextEncoder().encode(await exportSPKI(rsa.publicKey)));
    const r = await tryUpgrade(g!.wsUrl, confused);
    assert.equal(r.status, 401);
    assert.match(r.body?.message ?? '', /algorithm/);
  });

  it('ES256 (JWKS): accepted; anonymous sessions off means POST /api/session is forbidden and confab tokens refused', async () => {
    const g = gws[1]!;
    const token = await new SignJWT({ sub: 'e1', name: 'ec.user' }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setExpirationTime('5m').sign(ec.privateKey);
    assert.equal((await tryUpgrade(g.wsUrl, token)).status, 101);
    const res = await fetch(`${g.url}/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"handle":"anon"}' });
    assert.equal(res.status, 403);
    assert.equal(((await res.json()) as { code: string }).code, 'forbidden');
    const anonToken = await (await fetch(`${gws[0]!.url}/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"handle":"anon"}' })).json() as { token: string };
    const r = await tryUpgrade(g.wsUrl, anonToken.token);
    assert.equal(r.status, 401);
    assert.match(r.body?.message ?? '', /anonymous sessions are off/);
  });
});

describe('Origin and metrics', () => {
  let open: TestGateway;
  let configured: TestGateway;
  before(async () => {
    open = await startTestGateway({ env: { CONFAB_METRICS_TOKEN: 'metrics-token-0123456789' } });
    configured = await startTestGateway({ env: { CONFAB_ALLOWED_ORIGINS: 'https://chat.example', CONFAB_METRICS_PORT: '0' } });
  });
  after(async () => {
    await open?.close();
    await configured?.close();
  });

  const session = async (g: TestGateway, handle: string) => {
    const res = await fetch(`${g.url}/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ handle }) });
    return ((await res.json()) as { token: string }).token;
  };

  it('DNS rebinding: an Origin that matches only the Host header is refused; loopback pages and configured origins pass', async () => {
    const t = await session(open, 'origin.user');
    const rebinding = await tryUpgrade(open.wsUrl, t, { origin: 'http://evil.example:8080', host: 'evil.example:8080' });
    assert.equal(rebinding.status, 403);
    assert.equal(rebinding.body?.code, 'forbidden_origin');
    assert.equal((await tryUpgrade(open.wsUrl, t, { origin: open.url })).status, 101, 'the page on a loopback host');
    assert.equal((await tryUpgrade(open.wsUrl, t, { origin: 'http://localhost:3000' })).status, 101);
    const t2 = await session(configured, 'origin.user2');
    assert.equal((await tryUpgrade(configured.wsUrl, t2, { origin: 'https://chat.example' })).status, 101);
    assert.equal((await tryUpgrade(configured.wsUrl, t2, { origin: configured.url })).status, 403, 'with origins configured, not even loopback');
    assert.equal((await tryUpgrade(configured.wsUrl, t2, { origin: 'https://chat.example.evil.example', host: 'chat.example.evil.example' })).status, 403);
  });

  it('/metrics: behind a bearer token, or on its own port and not on the public one', async () => {
    assert.equal((await fetch(`${open.url}/metrics`)).status, 401);
    assert.equal((await fetch(`${open.url}/metrics`, { headers: { authorization: 'Bearer wrong' } })).status, 401);
    const ok = await fetch(`${open.url}/metrics`, { headers: { authorization: 'Bearer metrics-token-0123456789' } });
    assert.equal(ok.status, 200);
    assert.match(await ok.text(), /confab_connections/);
    assert.equal((await fetch(`${configured.url}/metrics`)).status, 404);
    const port = configured.gw.metricsPort;
    assert.ok(port && port !== configured.gw.port);
    const m = await fetch(`http://127.0.0.1:${port}/metrics`);
    assert.equal(m.status, 200);
    assert.match(await m.text(), /confab_connections/);
  });
});

describe('secret files', () => {
  it('refuses a secret file that is empty, short or readable by others, naming the variable', () => {
    const f = join(dir, 'secret-file');
    const cases: [string, number, RegExp][] = [
      ['', 0o600, /empty/],
      ['short', 0o600, /at least 16/],
      ['x'.repeat(32), 0o644, /readable by group or others/],
      ['x'.repeat(32), 0o640, /readable by group or others/],
    ];
    for (const [content, mode, why] of cases) {
      rmSync(f, { force: true });
      writeFileSync(f, content);
      chmodSync(f, mode);
      assert.throws(() => readSecretFile(f, 'CONFAB_SECRET_FILE'), (e: unknown) => e instanceof ConfigError && e.variable === 'CONFAB_SECRET_FILE' && why.test(e.message), `${mode.toString(8)} ${content.length}`);
    }
    rmSync(f, { force: true });
    writeFileSync(f, `${'s'.repeat(32)}\n`, { mode: 0o600 });
    assert.equal(loadOrCreateSecret(undefined, join(dir, 'unused'), f), 's'.repeat(32));
  });

  it('generates the embedded secret 0600 in a data dir created 0700, and reads it back', () => {
    const data = join(dir, 'data', 'nested');
    const s = loadOrCreateSecret(undefined, data);
    assert.ok(s.length >= 32);
    assert.equal(statSync(data).mode & 0o777, 0o700);
    assert.equal(statSync(join(data, 'secret')).mode & 0o777, 0o600);
    assert.equal(loadOrCreateSecret(undefined, data), s);
    chmodSync(join(data, 'secret'), 0o644);
    assert.throws(() => loadOrCreateSecret(undefined, data), /readable by group or others/);
  });

  it('the embedded history is created 0700 with files 0600, also when it creates CONFAB_DATA_DIR first', async () => {
    const data = join(dir, 'lmdb-data');
    const h = new LmdbHistory({ dataDir: data, limit: 10, durability: 'commit' });
    try {
      assert.equal(statSync(data).mode & 0o777, 0o700);
      const files = readdirSync(join(data, 'history'));
      assert.ok(files.length > 0);
      for (const f of files) assert.equal(statSync(join(data, 'history', f)).mode & 0o777, 0o600, f);
    } finally {
      await h.close();
    }
  });
});

describe('confusable skeletons', () => {
  it('map look-alikes together and keep different handles apart', () => {
    const same = [
      ['bob.smith', 'bob.smlth', 'b0b.smith', 'BOB_SMITH', 'bob-smith', 'bob.srnith', 'bob..smith', 'bоb.smith' /* Cyrillic о */, 'βob.smith'],
      ['paypal', 'paypa1', 'PAYPAI', 'pаypаl' /* Cyrillic а */],
      ['william', 'wiiliam', 'vvilliam', 'wi11iam'],
    ];
    for (const group of same) for (const h of group) assert.equal(skeleton(h), skeleton(group[0]!), `${h} ~ ${group[0]}`);
    const apart = [['alice', 'alicia'], ['bob', 'rob'], ['ann', 'anne'], ['zed', 'zoe']];
    for (const [a, b] of apart) assert.notEqual(skeleton(a!), skeleton(b!), `${a} vs ${b}`);
  });
});
