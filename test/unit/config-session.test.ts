import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/config.js';
import { SessionSigner } from '../../src/gateway/session.js';
import { TokenBucket } from '../../src/gateway/limits.js';

describe('config', () => {
  it('has safe defaults and honours the seed variables', () => {
    const c = loadConfig({});
    assert.equal(c.port, 8080);
    assert.equal(c.bus, 'memory');
    assert.equal(c.region, 'local');
    assert.match(c.node, /^[0-9a-f]{8}$/);
    assert.equal(c.dataDir, './data');
    const f = loadConfig({ PORT: '9000', FLY_ALLOC_ID: 'abc123', FLY_REGION: 'ams', NATS_URL: 'nats://a:4222', CONFAB_SECRET: 'x'.repeat(16) });
    assert.equal(f.port, 9000);
    assert.equal(f.node, 'abc123');
    assert.equal(f.region, 'ams');
    assert.equal(f.bus, 'nats');
  });

  it('fails fast naming the bad variable', () => {
    const bad: [Record<string, string>, string][] = [
      [{ PORT: 'eighty' }, 'PORT'],
      [{ PORT: '70000' }, 'PORT'],
      [{ CONFAB_MAX_FRAME_BYTES: '10' }, 'CONFAB_MAX_FRAME_BYTES'],
      [{ CONFAB_BUS: 'kafka' }, 'CONFAB_BUS'],
      [{ NATS_URL: 'nats://x:4222' }, 'CONFAB_SECRET'],
      [{ CONFAB_SECRET: 'short' }, 'CONFAB_SECRET'],
      [{ CONFAB_ROOMS: 'lobby,Bad Room' }, 'CONFAB_ROOMS'],
      [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
      [{ FLY_REGION: 'a b' }, 'FLY_REGION'],
    ];
    for (const [env, name] of bad) {
      assert.throws(() => loadConfig(env), (e: unknown) => e instanceof ConfigError && e.variable === name && e.message.includes(name), JSON.stringify(env));
    }
  });
});

describe('sessions', () => {
  const s = new SessionSigner('secret-0123456789abcdef', 3600);
  it('round-trips and refuses tampering, expiry and garbage', () => {
    const { token } = s.issue({ id: 'u1', handle: 'ann' });
    const v = s.verify(token);
    assert.deepEqual({ id: v?.id, handle: v?.handle, kind: v?.kind }, { id: 'u1', handle: 'ann', kind: 'anon' });
    const [body, sig] = token.split('.');
    const evil = Buffer.from(JSON.stringify({ u: 'u1', h: 'admin', e: 9e9 })).toString('base64url');
    assert.equal(s.verify(`${evil}.${sig}`), undefined);
    assert.equal(s.verify(`${body}.`), undefined);
    assert.equal(s.verify(''), undefined);
    assert.equal(s.verify(undefined), undefined);
    assert.equal(s.verify('a.b.c'), undefined);
    assert.equal(s.verify(token, Date.now() + 3601_000), undefined);
  });
});

describe('token bucket', () => {
  it('allows the burst, then the rate', () => {
    const b = new TokenBucket(10, 5, 0);
    let ok = 0;
    for (let i = 0; i < 20; i++) if (b.take(0)) ok++;
    assert.equal(ok, 5);
    assert.equal(b.take(50), false);
    assert.equal(b.take(100), true);
  });
});

describe('client address behind proxies', async () => {
  const { clientIp } = await import('../../src/gateway/index.js');
  const req = (peer: string, xff?: string) => ({ socket: { remoteAddress: peer }, headers: xff ? { 'x-forwarded-for': xff } : {} }) as never;
  it('believes X-Forwarded-For only from trusted proxies, taking the right-most untrusted hop', () => {
    const plain = loadConfig({});
    assert.equal(clientIp(plain, req('10.0.0.5', '1.2.3.4')), '10.0.0.5', 'no trusted proxies: the peer');
    const c = loadConfig({ CONFAB_TRUSTED_PROXIES: '127.0.0.1,10.0.0.2' });
    assert.equal(clientIp(c, req('::ffff:127.0.0.1', '6.6.6.6, 1.2.3.4')), '1.2.3.4', 'a client cannot pick its address by prepending');
    assert.equal(clientIp(c, req('127.0.0.1', '1.2.3.4, 10.0.0.2')), '1.2.3.4');
    assert.equal(clientIp(c, req('9.9.9.9', '1.2.3.4')), '9.9.9.9', 'an untrusted peer is not believed');
    assert.equal(clientIp(c, req('127.0.0.1')), '127.0.0.1');
  });
});
