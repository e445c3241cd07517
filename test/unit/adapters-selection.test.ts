/**
 * Bus and history chosen independently (CONFAB_BUS, CONFAB_HISTORY): every pair is
 * accepted or refused with its message, the defaults are what they were before the
 * two were separate, and a missing broker URL names it. No broker or process is started
 * here: `confab start` turning a refused pair into exit 2 is test/cli/start-refused-pair.test.ts,
 * the pairs on real brokers are test/contract/mixed.test.ts and test/integration/mixed-*.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { createAdapters, StoreGatedBus } from '../../src/adapters.js';
import { MemoryBus } from '../../src/bus/memory.js';
import { ConfigError, loadConfig, selectBusHistory, type Env } from '../../src/config/config.js';
import { LmdbHistory } from '../../src/history/lmdb.js';
import { MemoryHistory } from '../../src/history/memory.js';

const BOTH: Env = { NATS_URL: 'nats://127.0.0.1:4222', REDIS_URL: 'redis://127.0.0.1:6379' };
const REFUSED = /^invalid CONFAB_HISTORY: (lmdb|memory) history cannot be used with (CONFAB_BUS=(nats|redis)|NATS_URL \(the nats bus\)|REDIS_URL \(the redis bus\)): it lives inside one gateway, .*a client resuming on another gateway would get other messages under the same offsets\. Use CONFAB_HISTORY=jetstream or redis .*, or CONFAB_BUS=memory for a single gateway$/;

/** What each pair gives with both NATS_URL and REDIS_URL set: [bus, history] or 'refused'. Written out, not derived. */
const MATRIX: Record<string, Record<string, [string, string] | 'refused'>> = {
  '(unset)': { '(unset)': ['nats', 'jetstream'], lmdb: 'refused', memory: 'refused', jetstream: ['nats', 'jetstream'], redis: ['nats', 'redis'] },
  memory: { '(unset)': ['memory', 'lmdb'], lmdb: ['memory', 'lmdb'], memory: ['memory', 'memory'], jetstream: ['memory', 'jetstream'], redis: ['memory', 'redis'] },
  nats: { '(unset)': ['nats', 'jetstream'], lmdb: 'refused', memory: 'refused', jetstream: ['nats', 'jetstream'], redis: ['nats', 'redis'] },
  redis: { '(unset)': ['redis', 'redis'], lmdb: 'refused', memory: 'refused', jetstream: ['redis', 'jetstream'], redis: ['redis', 'redis'] },
};

function pairEnv(bus: string, history: string, base: Env = BOTH): Env {
  return { ...base, ...(bus === '(unset)' ? {} : { CONFAB_BUS: bus }), ...(history === '(unset)' ? {} : { CONFAB_HISTORY: history }) };
}

function refusal(env: Env): ConfigError {
  try {
    selectBusHistory(env);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  assert.fail(`accepted ${JSON.stringify(env)}`);
}

describe('bus × history selection', () => {
  for (const [bus, row] of Object.entries(MATRIX)) {
    for (const [history, want] of Object.entries(row)) {
      it(`CONFAB_BUS=${bus} CONFAB_HISTORY=${history} (NATS_URL and REDIS_URL set): ${want === 'refused' ? 'refused' : want.join(' + ')}`, () => {
        const env = pairEnv(bus, history);
        if (want === 'refused') {
          const e = refusal(env);
          assert.equal(e.variable, 'CONFAB_HISTORY');
          assert.match(e.message, REFUSED);
          assert.ok(e.message.startsWith(`invalid CONFAB_HISTORY: ${history} history`), e.message);
          assert.throws(() => loadConfig({ ...env, CONFAB_SECRET: 'x'.repeat(16) }), (x: unknown) => x instanceof ConfigError && x.variable === 'CONFAB_HISTORY');
          return;
        }
        assert.deepEqual(selectBusHistory(env), { bus: want[0], history: want[1] });
        const c = loadConfig({ ...env, CONFAB_SECRET: 'x'.repeat(16) });
        assert.deepEqual([c.bus, c.history], want);
      });
    }
  }

  it('names how the bus was chosen in a refusal', () => {
    assert.match(refusal({ NATS_URL: 'nats://a:4222', CONFAB_HISTORY: 'lmdb' }).message, /with NATS_URL \(the nats bus\)/);
    assert.match(refusal({ NATSAPPHOST: 'nats-app', CONFAB_HISTORY: 'memory' }).message, /with NATSAPPHOST \(the nats bus\)/);
    assert.match(refusal({ REDIS_URL: 'redis://a:6379', CONFAB_HISTORY: 'lmdb' }).message, /with REDIS_URL \(the redis bus\)/);
    assert.match(refusal({ ...BOTH, CONFAB_BUS: 'redis', CONFAB_HISTORY: 'memory' }).message, /with CONFAB_BUS=redis:/);
  });

  it('defaults: what the broker variables chose before, history following the bus', () => {
    const cases: [Env, [string, string]][] = [
      [{}, ['memory', 'lmdb']],
      [{ NATS_URL: 'nats://a:4222' }, ['nats', 'jetstream']],
      [{ NATSAPPHOST: 'nats-app' }, ['nats', 'jetstream']],
      [{ REDIS_URL: 'redis://a:6379' }, ['redis', 'redis']],
      [BOTH, ['nats', 'jetstream']],
      [{ ...BOTH, CONFAB_BUS: 'redis' }, ['redis', 'redis']],
      [{ NATS_URL: 'nats://a:4222', CONFAB_BUS: 'memory' }, ['memory', 'lmdb']],
      [{ CONFAB_HISTORY: 'memory' }, ['memory', 'memory']],
      [{ REDIS_URL: 'redis://a:6379', CONFAB_HISTORY: 'redis' }, ['redis', 'redis']],
      [{ REDIS_URL: 'redis://a:6379', CONFAB_BUS: 'memory', CONFAB_HISTORY: 'redis' }, ['memory', 'redis']],
      [{ CONFAB_BUS: 'pubsub', DATABASE_URL: 'postgres://a/b' }, ['pubsub', 'postgres']],
      [{ CONFAB_BUS: 'pubsub', REDIS_URL: 'redis://a:6379', CONFAB_HISTORY: 'redis' }, ['pubsub', 'redis']],
    ];
    for (const [env, want] of cases) assert.deepEqual(Object.values(selectBusHistory(env)), want, JSON.stringify(env));
  });

  it('a pair whose broker has no URL names the URL variable', () => {
    const cases: [Env, string, RegExp][] = [
      [{ CONFAB_BUS: 'nats' }, 'NATS_URL', /CONFAB_BUS=nats needs NATS_URL or NATSAPPHOST/],
      [{ CONFAB_BUS: 'redis' }, 'REDIS_URL', /CONFAB_BUS=redis needs REDIS_URL/],
      [{ CONFAB_HISTORY: 'jetstream' }, 'NATS_URL', /CONFAB_HISTORY=jetstream needs NATS_URL or NATSAPPHOST/],
      [{ CONFAB_HISTORY: 'redis' }, 'REDIS_URL', /CONFAB_HISTORY=redis needs REDIS_URL/],
      [{ NATS_URL: 'nats://a:4222', CONFAB_HISTORY: 'redis' }, 'REDIS_URL', /CONFAB_HISTORY=redis needs REDIS_URL/],
      [{ REDIS_URL: 'redis://a:6379', CONFAB_HISTORY: 'jetstream' }, 'NATS_URL', /CONFAB_HISTORY=jetstream needs NATS_URL/],
      [{ NATS_URL: 'nats://a:4222', CONFAB_BUS: 'redis', CONFAB_HISTORY: 'jetstream' }, 'REDIS_URL', /CONFAB_BUS=redis needs REDIS_URL/],
      [{ CONFAB_BUS: 'pubsub' }, 'DATABASE_URL', /CONFAB_HISTORY=postgres needs DATABASE_URL/],
      [{ CONFAB_BUS: 'pubsub', CONFAB_HISTORY: 'lmdb' }, 'CONFAB_HISTORY', /lmdb history cannot be used with CONFAB_BUS=pubsub/],
      [{ CONFAB_BUS: 'pubsub', CONFAB_HISTORY: 'memory' }, 'CONFAB_HISTORY', /memory history cannot be used with CONFAB_BUS=pubsub/],
    ];
    for (const [env, variable, message] of cases) {
      const e = refusal(env);
      assert.equal(e.variable, variable, JSON.stringify(env));
      assert.match(e.message, message);
    }
  });

  it('unknown values name their variable', () => {
    assert.equal(refusal({ CONFAB_BUS: 'kafka' }).variable, 'CONFAB_BUS');
    const e = refusal({ CONFAB_HISTORY: 'cassandra' });
    assert.equal(e.variable, 'CONFAB_HISTORY');
    assert.match(e.message, /expected lmdb, memory, jetstream, redis or postgres, got "cassandra"/);
    assert.equal(refusal({ CONFAB_HISTORY: 'postgres' }).variable, 'DATABASE_URL', 'postgres history without DATABASE_URL names it');
    assert.equal(refusal({ CONFAB_HISTORY: 'postgres', DATABASE_URL: 'mysql://x/y' }).variable, 'DATABASE_URL');
  });

  it('a multi-node bus still needs CONFAB_SECRET, whatever the history', () => {
    assert.throws(() => loadConfig({ ...BOTH, CONFAB_HISTORY: 'redis' }), (e: unknown) => e instanceof ConfigError && e.variable === 'CONFAB_SECRET');
    assert.throws(() => loadConfig({ ...BOTH, CONFAB_BUS: 'redis', CONFAB_HISTORY: 'jetstream' }), (e: unknown) => e instanceof ConfigError && e.variable === 'CONFAB_SECRET');
    assert.equal(loadConfig({ REDIS_URL: 'redis://a:6379', CONFAB_BUS: 'memory', CONFAB_HISTORY: 'redis' }).history, 'redis', 'one gateway: a generated secret is fine');
  });
});

describe('in-process pairs open without a broker', () => {
  const dir = mkdtempSync(join(tmpdir(), 'confab-sel-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const log = pino({ level: 'silent' });

  it('memory + lmdb (the default) and memory + memory: the plain in-process bus, no status gate', async () => {
    for (const [history, cls] of [['lmdb', LmdbHistory], ['memory', MemoryHistory]] as const) {
      const a = await createAdapters(loadConfig({ CONFAB_HISTORY: history, CONFAB_DATA_DIR: join(dir, history) }), log);
      try {
        assert.ok(a.bus instanceof MemoryBus && !(a.bus instanceof StoreGatedBus), history);
        assert.ok(a.history instanceof cls, history);
      } finally {
        await a.bus.close();
        await a.history.close();
      }
    }
  });
});
