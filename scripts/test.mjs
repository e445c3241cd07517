// Runs test/**/*.test.ts with node's test runner (through tsx), one child
// process per file, several files at once. docs/testing.md explains the tiers.
//
//   node scripts/test.mjs [--fast | --integration | --e2e] [--jobs=N] [--file-timeout=S] [filter...]
//
//   --fast         unit, protocol and the in-process contract suites (no external processes)
//   --integration  everything that is neither fast nor e2e (brokers, gateways, clusters, chaos)
//   --e2e          the Chromium end-to-end tests (test/e2e)
//   --jobs=N       files run at once (default 3; 1 = one after another)
//   --file-timeout=S  a file still running after S seconds is killed and fails (default 300; node's
//                  own --test-timeout=180000 already ends a file after 180 s: in Node 20 it applies
//                  to the file as a whole, so this is the backstop for a runner that hangs)
//   filter...      only files whose path contains one of these substrings
//
// Every file in test/e2e/ (Chromium, hundreds of SDK clients, rate-paced bursts), and
// every file whose first lines hold the marker `// test:serial` (optionally followed
// by `: why`), runs alone, after the concurrent files: the marker is for files that
// measure time or CPU (bench, scale, chaos) and would turn flaky beside others.
//
// Each file's output is buffered and printed whole when the file ends; at the end
// comes a summary: every file's time, every failed, skipped and todo test. Every
// file's process also loads test-exit-guard.mjs: a file that does not exit after
// its last test fails with the list of what is still open. Exit code 1 if any
// file failed. Per-file times are kept in .tmp/test-times.json so the next run
// starts the longest files first.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, readFileSync, readSync, closeSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const GUARD = new URL('./test-exit-guard.mjs', import.meta.url).href;
const REPORTER = new URL('./test-summary-reporter.mjs', import.meta.url).href;
const TIMES_FILE = join(ROOT, '.tmp', 'test-times.json');

/** The fast tier: no external process (no broker, no Chromium, no spawned CLI). */
const FAST = ['test/unit/', 'test/protocol/', 'test/contract/embedded.test.ts'];
const E2E = ['test/e2e/'];
/** Folders whose files always run alone. */
const SERIAL_DIRS = ['test/e2e/'];
const SERIAL_MARKER = /^\s*(?:\/\/|\*|\/\*+)\s*test:serial\b/m;

function usage(msg) {
  if (msg) console.error(`test.mjs: ${msg}`);
  console.error('usage: node scripts/test.mjs [--fast | --integration | --e2e] [--jobs=N] [--file-timeout=S] [filter...]');
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { tier: 'all', jobs: 3, fileTimeoutS: 300, filters: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] = a.startsWith('--') ? a.split(/=(.*)/s, 2) : [a, undefined];
    const value = () => inline ?? argv[++i] ?? usage(`${flag} needs a value`);
    if (flag === '--fast' || flag === '--integration' || flag === '--e2e') {
      if (opts.tier !== 'all') usage('give at most one tier');
      opts.tier = flag.slice(2);
    } else if (flag === '--jobs' || flag === '-j') {
      opts.jobs = Number(value());
      if (!Number.isInteger(opts.jobs) || opts.jobs < 1) usage('--jobs must be a whole number >= 1');
    } else if (flag === '--file-timeout') {
      opts.fileTimeoutS = Number(value());
      if (!(opts.fileTimeoutS > 0)) usage('--file-timeout must be a number of seconds > 0');
    } else if (flag === '--help' || flag === '-h') {
      usage();
    } else if (a.startsWith('-')) {
      usage(`unknown option ${a}`);
    } else {
      opts.filters.push(a);
    }
  }
  return opts;
}

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

function tierOf(file) {
  if (FAST.some((p) => file.startsWith(p))) return 'fast';
  if (E2E.some((p) => file.startsWith(p))) return 'e2e';
  return 'integration';
}

/** True if the file is in a serial folder or declares `// test:serial` in its first 2 KiB. */
function isSerial(file) {
  if (SERIAL_DIRS.some((p) => file.startsWith(p))) return true;
  const fd = openSync(join(ROOT, file), 'r');
  try {
    const buf = Buffer.alloc(2048);
    const n = readSync(fd, buf, 0, buf.length, 0);
    return SERIAL_MARKER.test(buf.subarray(0, n).toString('utf8'));
  } finally {
    closeSync(fd);
  }
}

function loadTimes() {
  try {
    return JSON.parse(readFileSync(TIMES_FILE, 'utf8'));
  } catch {
    return {};
  }
}

const fmtS = (ms) => `${(ms / 1000).toFixed(1)} s`;

/** Run one file in its own `node --test` process; resolves with its result, output buffered. */
function runFile(file, opts, tmp, running) {
  const summaryPath = join(tmp, `${file.replace(/[^\w.-]+/g, '_')}.json`);
  const args = [
    '--import', 'tsx', '--import', GUARD,
    '--test', '--test-concurrency=1', '--test-timeout=180000',
    '--test-reporter=spec', '--test-reporter-destination=stdout',
    `--test-reporter=${REPORTER}`, `--test-reporter-destination=${summaryPath}`,
    file,
  ];
  const started = Date.now();
  // own process group: on Ctrl-C or a file timeout the whole file (and what it started) is stopped by its pgid
  const child = spawn(process.execPath, args, { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_ENV: 'test', FORCE_COLOR: process.stdout.isTTY ? '1' : '0' } });
  const chunks = [];
  child.stdout.on('data', (b) => chunks.push(b));
  child.stderr.on('data', (b) => chunks.push(b));
  const entry = { file, child, chunks, started, timedOut: false };
  running.add(entry);
  const timer = setTimeout(() => {
    entry.timedOut = true;
    chunks.push(Buffer.from(`\n[test.mjs] ${file} still running after ${opts.fileTimeoutS} s: stopped (SIGTERM to its process group)\n`));
    killGroup(child, 'SIGTERM');
    setTimeout(() => killGroup(child, 'SIGKILL'), 10_000).unref();
  }, opts.fileTimeoutS * 1000);
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      running.delete(entry);
      let summary;
      try {
        summary = JSON.parse(readFileSync(summaryPath, 'utf8'));
      } catch {
        summary = undefined;
      }
      const ms = Date.now() - started;
      const failed = code !== 0 || entry.timedOut || (summary?.failed.length ?? 1) > 0;
      resolve({ file, ms, code, signal, failed, timedOut: entry.timedOut, summary, output: Buffer.concat(chunks).toString('utf8') });
    });
  });
}

function killGroup(child, signal) {
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

function printResult(r, serial) {
  const status = r.failed ? 'FAIL' : 'ok';
  const c = r.summary?.counts;
  const counts = c ? `${c.pass} passed${c.fail + c.cancelled ? `, ${c.fail + c.cancelled} failed` : ''}${c.skipped ? `, ${c.skipped} skipped` : ''}${c.todo ? `, ${c.todo} todo` : ''}` : 'no report';
  const line = `── ${status} ${r.file} (${fmtS(r.ms)}, ${counts}${serial ? ', alone' : ''}) `;
  // the header line has the counts: drop node's trailing "ℹ tests 5 / ℹ pass 5 / ..." block
  const output = r.output.trimEnd().replace(/(?:\n\S* ?ℹ (?:tests|suites|pass|fail|cancelled|skipped|todo|duration_ms) [\d.]+\S*)+$/u, '');
  process.stdout.write(`\n${line}${'─'.repeat(Math.max(0, 100 - line.length))}\n${output}\n`);
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const all = walk(join(ROOT, 'test')).map((p) => relative(ROOT, p));
  const files = all.filter((f) => (opts.tier === 'all' || tierOf(f) === opts.tier) && (opts.filters.length === 0 || opts.filters.some((x) => f.includes(x))));
  if (files.length === 0) {
    console.error('no test files matched');
    process.exit(1);
  }
  const times = loadTimes();
  // longest first (times of the last run); files never timed go first, slow folders before fast ones
  const guess = (f) => times[f] ?? (tierOf(f) === 'fast' ? 1e9 : 2e9);
  const byTime = (a, b) => guess(b) - guess(a) || a.localeCompare(b);
  const serial = files.filter(isSerial).sort(byTime);
  const concurrent = files.filter((f) => !serial.includes(f)).sort(byTime);
  const jobs = Math.min(opts.jobs, Math.max(1, concurrent.length));
  console.log(`test.mjs: ${files.length} files (${opts.tier}), ${concurrent.length} up to ${jobs} at a time, then ${serial.length} alone`);

  const tmp = mkdtempSync(join(tmpdir(), 'confab-test-run-'));
  const running = new Set();
  const results = [];
  let stopping = false;
  const stop = (sig) => {
    if (stopping) return;
    stopping = true;
    for (const e of running) {
      process.stdout.write(`\n── stopped ${e.file} after ${fmtS(Date.now() - e.started)}, its output so far:\n${Buffer.concat(e.chunks).toString('utf8')}\n`);
      killGroup(e.child, 'SIGTERM');
    }
    setTimeout(() => process.exit(130), 3000).unref();
    process.exitCode = sig === 'SIGINT' ? 130 : 143;
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));

  const t0 = Date.now();
  const queue = [...concurrent];
  const worker = async () => {
    while (queue.length > 0 && !stopping) {
      const r = await runFile(queue.shift(), opts, tmp, running);
      results.push(r);
      if (!stopping) printResult(r, false);
    }
  };
  await Promise.all(Array.from({ length: jobs }, worker));
  for (const f of serial) {
    if (stopping) break;
    const r = await runFile(f, opts, tmp, running);
    results.push(r);
    if (!stopping) printResult(r, true);
  }
  const wall = Date.now() - t0;
  rmSync(tmp, { recursive: true, force: true });
  if (stopping) return;

  // keep the times for the next run's order
  try {
    mkdirSync(join(ROOT, '.tmp'), { recursive: true });
    const next = { ...times };
    for (const r of results) next[r.file] = r.ms;
    writeFileSync(TIMES_FILE, JSON.stringify(next, null, 1) + '\n');
  } catch {
    // a read-only checkout still runs its tests
  }
  summarize(results, serial, wall, jobs);
  process.exitCode = results.some((r) => r.failed) ? 1 : 0;
}

function summarize(results, serial, wall, jobs) {
  const total = { tests: 0, pass: 0, fail: 0, cancelled: 0, skipped: 0, todo: 0 };
  for (const r of results) for (const k of Object.keys(total)) total[k] += r.summary?.counts[k] ?? 0;
  const out = [];
  out.push('', '═'.repeat(100), 'per file (slowest first):');
  for (const r of [...results].sort((a, b) => b.ms - a.ms)) {
    out.push(`  ${fmtS(r.ms).padStart(8)}  ${r.failed ? 'FAIL' : 'ok  '}  ${r.file}${serial.includes(r.file) ? '  (alone)' : ''}`);
  }
  const skipped = results.flatMap((r) => (r.summary ? [...r.summary.skipped.map((s) => ({ ...s, kind: 'skipped', file: r.file })), ...r.summary.todo.map((s) => ({ ...s, kind: 'todo', file: r.file }))] : []));
  if (skipped.length > 0) {
    out.push('', `skipped / todo (${skipped.length}):`);
    for (const s of skipped) out.push(`  ${s.kind}  ${s.file}: ${s.name}${s.reason ? ` — ${s.reason}` : ''}`);
  }
  const failed = results.filter((r) => r.failed);
  if (failed.length > 0) {
    out.push('', `FAILED (${failed.length} file${failed.length === 1 ? '' : 's'}):`);
    for (const r of failed) {
      const why = r.timedOut ? `killed after the file timeout` : r.signal ? `ended by ${r.signal}` : `exit code ${r.code}`;
      out.push(`  ${r.file} (${why})`);
      for (const t of r.summary?.failed ?? []) out.push(`    ✖ ${t.name}${t.reason ? ` — ${t.reason}` : ''}`);
      if (!r.summary) out.push('    (no test report: the file crashed before node:test reported; see its output above)');
    }
  }
  const sum = results.reduce((s, r) => s + r.ms, 0);
  out.push(
    '',
    `tests ${total.tests}: ${total.pass} passed, ${total.fail + total.cancelled} failed, ${total.skipped} skipped, ${total.todo} todo`,
    `files ${results.length}: ${results.length - failed.length} ok, ${failed.length} failed`,
    `wall ${fmtS(wall)} with up to ${jobs} files at a time (${serial.length} alone); the files' own times add up to ${fmtS(sum)}`,
  );
  console.log(out.join('\n'));
}

await main();
