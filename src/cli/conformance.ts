/**
 * `confab conformance <url>`: check a running confab deployment against docs/protocol.md
 * (src/conformance/), print a table of pass / fail / skip per check, optionally write the
 * report as JSON, and exit non-zero on any failure. See docs/conformance.md.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { CHECKS, formatConformanceReport, runConformance, SCHEMA_CHECK, type ConformanceOptions } from '../conformance/index.js';

export const CONFORMANCE_USAGE = `usage: confab conformance <url> [options]

  <url>              base URL of the deployment, http(s)://host:port
  --peer URL         a second gateway of the same deployment (same CONFAB_SECRET and bus):
                     also checks sessions, delivery, resume and resends across the two
  --alerts           also check alerts (sends one alert to every connected user)
  --only ID,…        run only checks whose id starts with one of these (and what they need)
  --timeout MS       longest wait for one answer (default 5000)
  --transport T      websocket (default) or fallback: the checks' sockets use the HTTP fallback
                     (GET /fallback as Server-Sent Events, POSTs); the upgrade.* checks still test /ws
  --json FILE        write the full report as JSON
  --list             list the checks and exit
exit status: 0 every check passed or was skipped, 1 a check failed, 2 bad usage
`;

export class ConformanceUsageError extends Error {}

export interface ConformanceCliArgs {
  options: ConformanceOptions;
  json?: string;
  list: boolean;
  help: boolean;
}

function baseUrl(flag: string, v: string): string {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new ConformanceUsageError(`${flag}: not a URL: ${JSON.stringify(v)}`);
  }
  if (!['http:', 'https:', 'ws:', 'wss:'].includes(u.protocol)) throw new ConformanceUsageError(`${flag}: expected http(s)://host:port, got ${JSON.stringify(v)}`);
  return v;
}

export function parseConformanceArgs(argv: string[]): ConformanceCliArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: true,
      options: {
        peer: { type: 'string' },
        alerts: { type: 'boolean' },
        only: { type: 'string', multiple: true },
        timeout: { type: 'string' },
        transport: { type: 'string' },
        json: { type: 'string' },
        list: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    throw new ConformanceUsageError((e as Error).message);
  }
  const v = parsed.values;
  const help = v.help ?? false;
  const list = v.list ?? false;
  if (parsed.positionals.length > 1) throw new ConformanceUsageError(`one URL, got ${parsed.positionals.length}: ${parsed.positionals.join(' ')}`);
  const url = parsed.positionals[0];
  if (url === undefined && !help && !list) throw new ConformanceUsageError('the deployment URL is missing');
  let timeoutMs: number | undefined;
  if (v.timeout !== undefined) {
    timeoutMs = Number(v.timeout);
    if (!Number.isInteger(timeoutMs) || timeoutMs < 100 || timeoutMs > 120_000) throw new ConformanceUsageError(`--timeout: expected milliseconds 100-120000, got ${JSON.stringify(v.timeout)}`);
  }
  if (v.transport !== undefined && v.transport !== 'websocket' && v.transport !== 'fallback') throw new ConformanceUsageError(`--transport: websocket or fallback, got ${JSON.stringify(v.transport)}`);
  const only = v.only?.flatMap((o) => o.split(',')).map((o) => o.trim()).filter(Boolean);
  if (only) {
    const unknown = only.filter((o) => !CHECKS.some((c) => c.id.startsWith(o)));
    if (unknown.length > 0) throw new ConformanceUsageError(`--only: no check id starts with ${unknown.join(', ')} (see --list)`);
  }
  return {
    options: {
      url: url === undefined ? '' : baseUrl('<url>', url),
      ...(v.peer !== undefined ? { peer: baseUrl('--peer', v.peer) } : {}),
      alerts: v.alerts ?? false,
      ...(only && only.length > 0 ? { only } : {}),
      ...(timeoutMs !== undefined ? { timeoutMs } : {}),
      ...(v.transport !== undefined ? { transport: v.transport } : {}),
    },
    ...(v.json !== undefined ? { json: v.json } : {}),
    list,
    help,
  };
}

export function listChecks(): string {
  const rows = [...CHECKS.map((c) => [c.id, c.section, c.name]), [SCHEMA_CHECK.id, SCHEMA_CHECK.section, SCHEMA_CHECK.name]];
  const w0 = Math.max(...rows.map((r) => r[0]!.length));
  const w1 = Math.max(...rows.map((r) => r[1]!.length));
  return rows.map((r) => `${r[0]!.padEnd(w0)}  ${r[1]!.padEnd(w1)}  ${r[2]}`).join('\n') + '\n';
}

export async function runConformanceCli(argv: string[]): Promise<void> {
  let args: ConformanceCliArgs;
  try {
    args = parseConformanceArgs(argv);
  } catch (e) {
    if (!(e instanceof ConformanceUsageError)) throw e;
    process.stderr.write(`confab conformance: ${e.message}\n${CONFORMANCE_USAGE}`);
    process.exitCode = 2;
    return;
  }
  if (args.help) {
    process.stdout.write(CONFORMANCE_USAGE);
    return;
  }
  if (args.list) {
    process.stdout.write(listChecks());
    return;
  }
  const report = await runConformance({
    ...args.options,
    onResult: (r) => process.stderr.write(`${r.status === 'pass' ? 'ok  ' : r.status === 'fail' ? 'FAIL' : 'skip'} ${r.id}\n`),
  });
  process.stdout.write(formatConformanceReport(report));
  if (args.json) writeFileSync(args.json, JSON.stringify(report, null, 2) + '\n');
  process.exitCode = report.ok ? 0 : 1;
}
