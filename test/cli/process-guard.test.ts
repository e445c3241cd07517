/**
 * The process guard: an unhandled promise rejection is a bug that is logged and counted
 * (the node keeps serving), and fatal (exit 70) under test or with CONFAB_EXIT_ON_BUG=1.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const guard = fileURLToPath(new URL('../../src/gateway/process-guard.ts', import.meta.url));
const script = `
import { installProcessGuard, processFaults } from ${JSON.stringify(guard)};
import { pino } from 'pino';
installProcessGuard(pino({ level: 'error' }));
void Promise.reject(new Error('nobody listens'));
setTimeout(() => { console.log('still serving, counted ' + processFaults.unhandledRejections); }, 50);
`;

function run(env: Record<string, string>): { status: number | null; out: string } {
  const { NODE_ENV: _n, CONFAB_EXIT_ON_BUG: _e, ...base } = process.env;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { env: { ...base, ...env }, encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

test('in production an unhandled rejection is logged as a bug and counted; the process keeps serving', () => {
  const r = run({});
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /BUG: unhandled promise rejection/);
  assert.match(r.out, /still serving, counted 1/);
});

test('under test (NODE_ENV=test) or with CONFAB_EXIT_ON_BUG=1 it ends the process with code 70', () => {
  const envs: Record<string, string>[] = [{ NODE_ENV: 'test' }, { CONFAB_EXIT_ON_BUG: '1' }];
  for (const env of envs) {
    const r = run(env);
    assert.equal(r.status, 70, `${JSON.stringify(env)}: ${r.out}`);
    assert.doesNotMatch(r.out, /still serving/);
  }
});
