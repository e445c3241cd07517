// Runs every test/**/*.test.ts with node's test runner (through tsx), one file at a time.
// Every file's process also loads test-exit-guard.mjs: a file that does not exit
// after its last test fails with the list of what is still open, instead of
// waiting for the file timeout.
// Usage: node scripts/test.mjs [substring filters...]
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}
const filters = process.argv.slice(2);
const files = walk('test').filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
const guard = new URL('./test-exit-guard.mjs', import.meta.url).href;
const args = ['--import', 'tsx', '--import', guard, '--test', '--test-concurrency=1', '--test-reporter=spec', '--test-timeout=180000', ...files];
const r = spawnSync(process.execPath, args, { stdio: 'inherit', env: { ...process.env, NODE_ENV: 'test' } });
process.exit(r.status ?? 1);
