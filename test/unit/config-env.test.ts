/**
 * The env schema (src/config/env.ts): unset and blank mean the default, values are trimmed (a
 * password is not), and a bad value is a ConfigError naming the variable with the same message
 * the parsers gave before they read through the schema.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/config.js';
import { envValue, parseEnvValue, readEnv } from '../../src/config/env.js';
import { readNatsSettings } from '../../src/nats/options.js';
import { readRedisSettings } from '../../src/redis/options.js';

function fails(fn: () => unknown, variable: string, message: string): void {
  assert.throws(fn, (e: unknown) => e instanceof ConfigError && e.variable === variable && e.message === `invalid ${variable}: ${message}`, `${variable}: ${message}`);
}

describe('env schema', () => {
  it('unset or blank is the default; values are trimmed; a password is taken as is', () => {
    assert.equal(readEnv({}, 'PORT'), 8080);
    assert.equal(readEnv({ PORT: '  ' }, 'PORT'), 8080);
    assert.equal(readEnv({ PORT: ' 9000 ' }, 'PORT'), 9000);
    assert.equal(readEnv({}, 'CONFAB_PING_TIMEOUT_MS'), undefined, 'a derived default is left to the reader');
    assert.deepEqual(readEnv({}, 'CONFAB_ROOMS'), ['lobby', 'random']);
    assert.deepEqual(readEnv({ CONFAB_ROOMS: ' a , b ,' }, 'CONFAB_ROOMS'), ['a', 'b']);
    assert.equal(readEnv({ NATS_PASS: ' p ' }, 'NATS_PASS'), ' p ');
    assert.equal(readEnv({ NATS_PASS: '' }, 'NATS_PASS'), undefined);
    assert.equal(envValue({ NATS_URL: ' nats://a ' }, 'NATS_URL'), 'nats://a', 'envValue: as set, not parsed');
  });

  it('bad values: the messages the parsers always gave, naming the variable', () => {
    fails(() => readEnv({ PORT: 'eighty' }, 'PORT'), 'PORT', 'expected an integer, got "eighty"');
    fails(() => readEnv({ PORT: '70000' }, 'PORT'), 'PORT', 'must be between 0 and 65535, got 70000');
    fails(() => readEnv({ CONFAB_DURABILITY: 'fast' }, 'CONFAB_DURABILITY'), 'CONFAB_DURABILITY', 'expected flush or commit, got "fast"');
    fails(() => readEnv({ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'), 'LOG_LEVEL', 'unknown level loud');
    fails(() => readEnv({ CONFAB_SECRET: 'short' }, 'CONFAB_SECRET'), 'CONFAB_SECRET', 'must be at least 16 characters');
    fails(() => readEnv({ CONFAB_ROOMS: 'lobby,Bad Room' }, 'CONFAB_ROOMS'), 'CONFAB_ROOMS', 'bad room name "Bad Room"');
    fails(() => readEnv({ CONFAB_STREAM_MAX_BYTES: '0' }, 'CONFAB_STREAM_MAX_BYTES'), 'CONFAB_STREAM_MAX_BYTES', 'use -1 for unlimited, or a positive size');
    fails(() => readEnv({ NATS_CREDS: '/no/such/file' }, 'NATS_CREDS'), 'NATS_CREDS', 'file not found: /no/such/file');
    fails(() => parseEnvValue('NATS_URL', 'http://x:1'), 'NATS_URL', 'scheme must be nats:// or tls://, got http:');
    fails(() => parseEnvValue('REDIS_URL', 'redis://u:secret@h/x'), 'REDIS_URL', 'database must be a number, got "x"');
    fails(() => loadConfig({ CONFAB_PUBLIC_URLS: 'http://a' }), 'CONFAB_PUBLIC_URLS', 'expected ws:// or wss://, got "http://a"');
  });

  it('the parsers keep their defaults and cross-variable rules', () => {
    const c = loadConfig({ CONFAB_PING_INTERVAL_MS: '5000' });
    assert.equal(c.pingTimeoutMs, 5000, 'ping timeout: min(10000, interval)');
    assert.equal(loadConfig({}).pingTimeoutMs, 10_000);
    assert.equal(loadConfig({ CONFAB_REGION: 'ams' }).region, 'ams');
    assert.equal(loadConfig({ FLY_REGION: 'ord', CONFAB_REGION: 'not read' }).region, 'ord', 'the fallback is not read when FLY_REGION is set');
    fails(() => loadConfig({ CONFAB_REGION: 'a b' }), 'CONFAB_REGION', 'must be 1-32 chars of [A-Za-z0-9_-]');
    assert.equal(loadConfig({ LOG_LEVEL: 'loud' }, { logLevel: 'warn' }).logLevel, 'warn', 'an overridden level does not read LOG_LEVEL');
    fails(() => loadConfig({}, { logLevel: 'loud' }), 'LOG_LEVEL', 'unknown level loud');
    const base = { natsUrl: 'nats://127.0.0.1:4222', natsAppHost: undefined, historyLimit: 100 };
    assert.equal(readNatsSettings(base, { CONFAB_STREAM_MAX_AGE_S: '60' }).stream.duplicateWindowSec, 60);
    assert.equal(readNatsSettings(base, {}).stream.duplicateWindowSec, 900, 'CONFAB_DEDUPE_WINDOW_S (default 900 s)');
    assert.equal(readNatsSettings(base, {}).stream.maxAgeSec, 30 * 24 * 3600, 'CONFAB_HISTORY_MAX_AGE_S (default 30 days)');
    fails(() => readNatsSettings(base, { CONFAB_STREAM_MAX_AGE_S: '60', CONFAB_STREAM_DUPLICATE_WINDOW_S: '120' }), 'CONFAB_STREAM_DUPLICATE_WINDOW_S', 'must not exceed CONFAB_STREAM_MAX_AGE_S (60)');
    assert.deepEqual(readNatsSettings({ ...base, natsUrl: 'h:4222, tls://b:1' }, {}).servers, ['nats://h:4222', 'tls://b:1']);
    fails(() => readRedisSettings({ redisUrl: undefined, historyLimit: 1 }, {}), 'REDIS_URL', 'required with the redis bus');
    const r = readRedisSettings({ redisUrl: 'redis://127.0.0.1:6379', historyLimit: 1 }, {});
    assert.deepEqual([r.prefix, r.epochPolicy, r.retention.dedupeWindowMs, r.pingMs], ['confab', 'auto', 900_000, 5000]);
    assert.equal(readRedisSettings({ redisUrl: 'redis://127.0.0.1:6379', historyLimit: 1 }, { CONFAB_REDIS_DEDUPE_S: '3600' }).retention.dedupeWindowMs, 3_600_000);
  });
});
