/**
 * The `--check` modes of the generators, run as the processes CI runs: `npm run docs:config -- --check`
 * (the configuration tables of README.md and docs/, test/unit/config-docs.test.ts checks them in-process)
 * and `npm run schema -- --check` (docs/protocol.schema.json, test/unit/schema.test.ts in-process).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { REPO_ROOT } from '../../src/testkit/gateway.js';

describe('environment variable docs', () => {
  it('npm run docs:config -- --check agrees', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'scripts/config-docs.mjs'), '--check'], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });
});

describe('docs/protocol.schema.json', () => {
  it('npm run schema -- --check agrees', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'scripts/schema.mjs'), '--check'], { cwd: REPO_ROOT, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr + r.stdout);
  });
});
