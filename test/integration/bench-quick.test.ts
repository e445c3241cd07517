// test:serial: it runs the benchmark: its figures are only worth printing on a machine nobody else is using
/**
 * Runs `npm run bench -- --quick` once (the compiled dist/bench/run.js) into a
 * temporary directory: it must exit 0 and write its JSON, markdown and charts,
 * every system must have been measured, and no delivery may be duplicated or
 * reordered. No assertion is about speed.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const runJs = path.join(root, 'dist', 'bench', 'run.js');

interface Rec {
  scenario: string;
  system: string;
  error?: string;
  result: { steps?: { received: number; dup: number; outOfOrder: number }[] } | null;
}

describe('npm run bench -- --quick', () => {
  const out = mkdtempSync(path.join(tmpdir(), 'confab-bench-test-'));
  after(() => rmSync(out, { recursive: true, force: true }));

  it('exits 0 and writes JSON, markdown and SVG charts for every system', { timeout: 240_000 }, async () => {
    if (!existsSync(runJs)) {
      const b = spawnSync(process.execPath, [path.join(root, 'node_modules', 'typescript-native', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
      assert.equal(b.status, 0, 'tsc build failed');
    }
    let stdout = '';
    let stderr = '';
    const code = await new Promise<number | null>((resolve) => {
      const p = spawn(process.execPath, [runJs, '--quick', '--out', out], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
      p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      p.on('exit', (c) => resolve(c));
    });
    assert.equal(code, 0, `bench exited ${code}:\n${stderr.slice(-3000)}`);
    assert.match(stdout, /QUICK MODE/);
    assert.match(stdout, /Fan-out: one room of 500 clients/);

    const files = readdirSync(out);
    for (const f of ['quick.json', 'quick.md', 'quick-room-500.svg', 'quick-groups.svg']) assert.ok(files.includes(f), `missing ${f} in ${files.join(', ')}`);
    const svg = readFileSync(path.join(out, 'quick-room-500.svg'), 'utf8');
    assert.match(svg, /^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    assert.match(svg, /<path d="M/);
    assert.match(readFileSync(path.join(out, 'quick.md'), 'utf8'), /^# Benchmarks/);

    const json = JSON.parse(readFileSync(path.join(out, 'quick.json'), 'utf8')) as { meta: { systems: string[]; quick: boolean }; records: Rec[] };
    assert.equal(json.meta.quick, true);
    const expected = existsSync(path.join(root, 'dist', 'cli', 'confab.js')) ? ['raw', 'sio', 'confab'] : ['raw', 'sio'];
    assert.deepEqual([...json.meta.systems].sort(), [...expected].sort());
    for (const sys of expected) {
      const fan = json.records.filter((r) => r.scenario === 'room-500' && r.system === sys);
      assert.equal(fan.length, 1, `one room-500 record for ${sys}`);
      assert.equal(fan[0]!.error, undefined, `room-500 ${sys} failed: ${fan[0]!.error}`);
      const steps = fan[0]!.result?.steps ?? [];
      assert.ok(steps.length > 0 && steps[0]!.received > 0, `${sys} delivered nothing`);
    }
    if (expected.includes('confab')) {
      // the HTTP fallback's delivery cost beside WebSocket's (issue 14): both measured, every delivery made
      const fb = json.records.filter((r) => r.scenario === 'fallback');
      assert.equal(fb.length, 1, 'one fallback record');
      assert.equal(fb[0]!.error, undefined, `fallback scenario failed: ${fb[0]!.error}`);
      const rows = (fb[0]!.result as unknown as { rows: { transport: string; delivered: number; expected: number }[] }).rows;
      assert.deepEqual(rows.map((r) => r.transport), ['websocket', 'fallback']);
      for (const r of rows) assert.equal(r.delivered, r.expected, `${r.transport}: every delivery made`);
      assert.match(stdout, /HTTP fallback \(Server-Sent Events\) vs WebSocket/);
    }
    for (const r of json.records)
      for (const st of r.result?.steps ?? []) {
        assert.equal(st.dup, 0, `${r.scenario} ${r.system}: duplicates delivered`);
        assert.equal(st.outOfOrder, 0, `${r.scenario} ${r.system}: deliveries out of order`);
      }
  });
});
