/**
 * `npm run chaos`: every chaos scenario (or the ones named) at full scale, one
 * fresh cluster each, one after the other; prints each result, writes the table
 * and the evidence into a labelled section of docs/reliability.md, and the full
 * results as JSON. Exit status 0 when every scenario passed, 1 otherwise, 2 on
 * bad usage.
 *
 *   node dist/chaos/main.js [--scale full|ci] [--scenarios a,b] [--label latest]
 *                           [--out docs/reliability.md] [--json FILE] [--keep-logs]
 */
import { execFileSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { renderSection, renderTable, writeSection } from './report.js';
import { runScenario, type ScenarioResult } from './run.js';
import { SCALES, SCENARIOS, scenario, type Scale } from './scenarios.js';

interface Args {
  scale: Scale;
  scenarios: string[];
  label: string;
  out: string;
  json?: string;
  keepLogs: boolean;
  commit?: string;
}

function usage(msg: string): never {
  process.stderr.write(`chaos: ${msg}\nusage: node dist/chaos/main.js [--scale full|ci] [--scenarios ${SCENARIOS.map((s) => s.name).join(',')}] [--label latest] [--out docs/reliability.md] [--json FILE] [--keep-logs] [--commit REV]\n`);
  process.exit(2);
}

function parse(argv: string[]): Args {
  const a: Args = { scale: SCALES.full, scenarios: SCENARIOS.map((s) => s.name), label: 'latest', out: 'docs/reliability.md', keepLogs: false };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const v = () => argv[++i] ?? usage(`${k} needs a value`);
    if (k === '--scale') {
      const s = v();
      if (s !== 'full' && s !== 'ci') usage(`--scale full|ci, got ${s}`);
      a.scale = SCALES[s];
    } else if (k === '--scenarios') {
      a.scenarios = v().split(',').map((x) => x.trim()).filter(Boolean);
      for (const s of a.scenarios) if (!SCENARIOS.some((x) => x.name === s)) usage(`unknown scenario ${s}`);
    } else if (k === '--label') {
      a.label = v();
      if (!/^[a-z0-9-]{1,32}$/.test(a.label)) usage('--label: lowercase letters, digits, dashes');
    } else if (k === '--out') a.out = v();
    else if (k === '--json') a.json = v();
    else if (k === '--keep-logs') a.keepLogs = true;
    else if (k === '--commit') a.commit = v();
    else usage(`unknown argument ${k}`);
  }
  return a;
}

function commit(): string {
  try {
    const rev = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() !== '';
    return dirty ? `${rev} + uncommitted changes` : rev;
  } catch {
    return 'unknown';
  }
}

async function main(): Promise<void> {
  const args = parse(process.argv.slice(2));
  const t0 = performance.now();
  const load0 = loadavg()[0]!.toFixed(1);
  const results: ScenarioResult[] = [];
  const log = (l: string) => process.stderr.write(`[chaos ${new Date().toISOString().slice(11, 19)}] ${l}\n`);
  for (const name of args.scenarios) {
    log(`=== ${name} (${args.scale.name})`);
    const r = await runScenario(scenario(name), args.scale, {
      log,
      keepDir: args.keepLogs,
      onCluster: (c) => {
        if (args.keepLogs) log(`logs of ${name}: ${c.dir}/logs`);
      },
    });
    results.push(r);
    log(`${name}: ${r.pass ? 'pass' : `FAIL: ${r.failures.join('; ')}`}`);
  }
  const info = {
    command: `npm run chaos${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    commit: args.commit ?? commit(),
    scale: `${args.scale.name} (${args.scale.clients} clients, ${args.scale.rooms} rooms, ${args.scale.publishers} publishers × ${args.scale.ratePerPublisher} msg/s)`,
    machine: `${cpus().length} cores, load average ${load0} at the start and ${loadavg()[0]!.toFixed(1)} at the end (shared with other work)`,
    wallMs: performance.now() - t0,
  };
  process.stdout.write('\n' + renderTable(results));
  writeSection(args.out, args.label, renderSection(args.label, info, results));
  log(`wrote section "${args.label}" of ${args.out}`);
  if (args.json) {
    writeFileSync(args.json, JSON.stringify({ info, results }, null, 2) + '\n');
    log(`wrote ${args.json}`);
  }
  process.exitCode = results.every((r) => r.pass) ? 0 : 1;
}

main().catch((e: unknown) => {
  process.stderr.write(`chaos: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
