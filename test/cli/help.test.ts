/**
 * `--help` on every command and subcommand prints its usage and starts nothing: the
 * process ends by itself with exit 0 (a gateway or cluster that started would not end).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../../src/cli/confab.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'confab-help-'));

function run(args: string[]): { status: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 30_000, env: { ...process.env, PORT: '0', CONFAB_DATA_DIR: join(tmp, 'data') } });
  return { status: r.status, out: r.stdout, err: r.stderr };
}

const commands = [['start'], ['cluster'], ['cluster', 'up'], ['cluster', 'roll'], ['cluster', 'status'], ['cluster', 'down'], ['nats-config'], ['load'], ['conformance'], ['pubsub'], ['pubsub', 'gc']];

for (const cmd of commands) {
  test(`confab ${cmd.join(' ')} --help prints its usage and starts nothing`, () => {
    for (const flag of ['--help', '-h']) {
      const r = run([...cmd, flag]);
      assert.equal(r.status, 0, `${cmd.join(' ')} ${flag}: exit ${r.status}\n${r.err}`);
      assert.match(r.out, /^usage: confab /, `${cmd.join(' ')} ${flag} printed: ${r.out.slice(0, 200)}`);
      assert.doesNotMatch(r.out, /listening/);
    }
  });
}

test('confab start with an argument it does not take is a usage error (exit 2), not a start', () => {
  const r = run(['start', '--port', '9000']);
  assert.equal(r.status, 2);
  assert.match(r.err, /unexpected argument "--port"/);
});
