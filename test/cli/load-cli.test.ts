/** `confab load`: flag parsing, and the exit status of real runs (0 good, 2 bad usage, 3 could not set up). */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { LoadUsageError, parseLoadArgs } from '../../src/cli/load.js';
import { REPO_ROOT, startTestGateway } from '../../src/testkit/gateway.js';

/** Run `confab load …` as a child process (asynchronously: the gateway it targets lives in this process). */
function confabLoad(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'src/cli/confab.ts'), 'load', ...args], { cwd: REPO_ROOT });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d));
  child.stderr.on('data', (d: Buffer) => (err += d));
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, out, err })));
}

describe('confab load flags', () => {
  it('with no flags: one local gateway, 200 clients in 10 rooms, 10 publishers at 100 msg/s for 30 s', () => {
    const a = parseLoadArgs([]);
    assert.deepEqual(a.options, { urls: ['http://127.0.0.1:8080'], clients: 200, rooms: 10, layout: 'spread', publishers: 10, rate: 100, durationMs: 30_000, payloadBytes: 100, tailMs: 10_000 });
    assert.equal(a.json, undefined);
  });
  it('--url repeats and comma lists; numbers; --one-room; --json', () => {
    const a = parseLoadArgs(['--url', 'http://127.0.0.1:1,http://127.0.0.1:2', '--url', 'ws://127.0.0.1:3', '--clients', '1000', '--rooms', '20', '--publishers', '20', '--rate', '62.5', '--duration', '1.5', '--one-room', '--json', 'out.json', '--tail', '0']);
    assert.deepEqual(a.options.urls, ['http://127.0.0.1:1', 'http://127.0.0.1:2', 'ws://127.0.0.1:3']);
    assert.equal(a.options.clients, 1000);
    assert.equal(a.options.rate, 62.5);
    assert.equal(a.options.durationMs, 1500);
    assert.equal(a.options.layout, 'one');
    assert.equal(a.options.tailMs, 0);
    assert.equal(a.json, 'out.json');
  });
  it('mistakes are usage errors naming the flag', () => {
    const bad: [string[], RegExp][] = [
      [['--clients', 'many'], /--clients/],
      [['--clients', '1.5'], /--clients/],
      [['--rate', '0'], /--rate/],
      [['--duration', '-3'], /--duration/],
      [['--url', 'ftp://x'], /--url/],
      [['--url', 'not a url'], /--url/],
      [['--bogus'], /bogus/],
      [['extra'], /extra|positional/i],
    ];
    for (const [argv, re] of bad) assert.throws(() => parseLoadArgs(argv), (e: unknown) => e instanceof LoadUsageError && re.test(e.message), argv.join(' '));
  });
});

describe('confab load runs', () => {
  const closers: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of closers) await c();
  });

  it('a clean run exits 0, prints the table and writes the JSON report', async () => {
    const gw = await startTestGateway();
    closers.push(() => gw.close());
    const json = join(mkdtempSync(join(tmpdir(), 'confab-load-')), 'r.json');
    const r = await confabLoad(['--url', gw.url, '--clients', '12', '--rooms', '3', '--publishers', '3', '--rate', '30', '--duration', '1', '--json', json]);
    assert.equal(r.code, 0, r.out + r.err);
    for (const row of ['delivered', 'latency', 'lost', 'duplicates', 'order', 'gaps', 'reconnects']) assert.match(r.out, new RegExp(`^  ${row}\\s`, 'm'), row);
    assert.match(r.out, /result: OK/);
    assert.match(r.err, /\] (send|tail) /, 'progress lines on stderr');
    const report = JSON.parse(readFileSync(json, 'utf8')) as { ok: boolean; acked: number; delivered: number; expected: number };
    assert.equal(report.ok, true);
    assert.equal(report.acked, 30);
    assert.equal(report.delivered, report.expected);
    assert.equal(report.expected, 30 * 4);
  });

  it('bad usage exits 2 with the usage; a closed port exits 3 with a typed reason; --help lists every flag', async () => {
    const gw = await startTestGateway();
    const url = gw.url;
    await gw.close();
    const [bad, down, help] = await Promise.all([
      confabLoad(['--clients', 'x']),
      confabLoad(['--url', url, '--clients', '2', '--publishers', '1', '--rooms', '1', '--duration', '1', '--quiet']),
      confabLoad(['--help']),
    ]);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /usage: confab load/);
    assert.equal(down.code, 3, down.err);
    assert.match(down.err, /session_failed: .*ECONNREFUSED/);
    assert.equal(help.code, 0);
    for (const f of ['--url', '--clients', '--rooms', '--publishers', '--rate', '--duration', '--json']) assert.ok(help.out.includes(f), f);
  });
});
