/**
 * `confab start` turns a bus/history pair that cannot keep the guarantees into exit 2
 * before it connects to anything (the pairs themselves: test/unit/adapters-selection.test.ts).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

describe('confab start with a refused pair', () => {
  it('exits 2 with the message before connecting to anything', () => {
    const cli = fileURLToPath(new URL('../../src/cli/confab.ts', import.meta.url));
    // port 9 (discard) on loopback: nothing is contacted, the pair is refused while reading the config
    const r = spawnSync(process.execPath, ['--import', 'tsx', cli, 'start'], {
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, PORT: '0', HOST: '127.0.0.1', NATS_URL: 'nats://127.0.0.1:9', CONFAB_HISTORY: 'lmdb', CONFAB_SECRET: 'x'.repeat(16) },
    });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /^confab: invalid CONFAB_HISTORY: lmdb history cannot be used with NATS_URL \(the nats bus\)/);
    assert.doesNotMatch(r.stdout, /listening/);
  });
});
