import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { REPO_ROOT } from '../../src/testkit/gateway.js';

// built into a temporary directory: dist/web may be served by a gateway of another test file running at the same time
const out = mkdtempSync(join(tmpdir(), 'confab-web-bundle-'));
after(() => rmSync(out, { recursive: true, force: true }));

test('the browser bundle builds without the server-side schema library and stays small', () => {
  execFileSync(process.execPath, [join(REPO_ROOT, 'scripts/build-web.mjs'), '--out', out], { cwd: REPO_ROOT, stdio: 'pipe' });
  const file = join(out, 'app.js');
  const js = readFileSync(file, 'utf8');
  assert.ok(!js.includes('ZodError'), 'zod leaked into the browser bundle');
  assert.ok(statSync(file).size < 100 * 1024, `bundle is ${statSync(file).size} bytes`);
  assert.ok(js.includes('confab.v1'), 'the bundle speaks the protocol');
});
