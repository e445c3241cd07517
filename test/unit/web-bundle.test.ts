import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from '../../src/testkit/gateway.js';

test('the browser bundle builds without the server-side schema library and stays small', () => {
  execFileSync(process.execPath, [join(REPO_ROOT, 'scripts/build-web.mjs')], { cwd: REPO_ROOT, stdio: 'pipe' });
  const file = join(REPO_ROOT, 'dist/web/app.js');
  const js = readFileSync(file, 'utf8');
  assert.ok(!js.includes('ZodError'), 'zod leaked into the browser bundle');
  assert.ok(statSync(file).size < 100 * 1024, `bundle is ${statSync(file).size} bytes`);
  assert.ok(js.includes('confab.v1'), 'the bundle speaks the protocol');
});
