/**
 * `confab load`: run the load generator (src/load/) against your own gateways,
 * print a summary table, optionally write the full report as JSON, and exit
 * non-zero when anything acknowledged was lost, duplicated or reordered.
 * See docs/load.md.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { LoadError, formatReport, runLoad, type LoadOptions, type LoadProgress } from '../load/index.js';

export const LOAD_USAGE = `usage: confab load [options]

  --url URL          gateway base URL; repeat or comma-separate for several
                     (default http://127.0.0.1:8080); clients are spread round-robin
                     and fail over to the others
  --clients N        SDK clients, each with its own session (default 200)
  --rooms N          rooms load0..load<N-1>, clients spread over them (default 10)
  --one-room         put every client in load0 instead
  --publishers N     clients that publish, spread over the rooms (default 10)
  --rate N           messages per second, all publishers together (default 100)
  --duration S       seconds of sending (default 30)
  --size N           message length in characters (default 100)
  --tail S           after sending, wait at most this long for what is owed (default 10)
  --json FILE        write the full report as JSON
  --quiet            no progress lines
exit status: 0 all good, 1 acknowledged messages lost/duplicated/reordered,
             2 bad usage, 3 the run could not be set up (sessions, sockets, fd limit)
`;

/** A command-line mistake: exit 2 with the usage. */
export class LoadUsageError extends Error {}

export interface LoadCliArgs {
  options: LoadOptions;
  json?: string;
  quiet: boolean;
  help: boolean;
}

function num(name: string, v: string | undefined, def: number, integer = true): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) throw new LoadUsageError(`--${name}: expected a positive ${integer ? 'integer' : 'number'}, got ${JSON.stringify(v)}`);
  return n;
}

/** Parse `confab load` flags into generator options; throws LoadUsageError naming the flag. */
export function parseLoadArgs(argv: string[]): LoadCliArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        url: { type: 'string', multiple: true },
        clients: { type: 'string' },
        rooms: { type: 'string' },
        'one-room': { type: 'boolean' },
        publishers: { type: 'string' },
        rate: { type: 'string' },
        duration: { type: 'string' },
        size: { type: 'string' },
        tail: { type: 'string' },
        json: { type: 'string' },
        quiet: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    throw new LoadUsageError((e as Error).message);
  }
  const v = parsed.values;
  const urls = (v.url ?? ['http://127.0.0.1:8080']).flatMap((u) => u.split(',')).map((u) => u.trim()).filter(Boolean);
  if (urls.length === 0) throw new LoadUsageError('--url: empty');
  for (const u of urls) {
    let p: URL;
    try {
      p = new URL(u);
    } catch {
      throw new LoadUsageError(`--url: not a URL: ${JSON.stringify(u)}`);
    }
    if (!['http:', 'https:', 'ws:', 'wss:'].includes(p.protocol)) throw new LoadUsageError(`--url: expected http(s):// or ws(s)://, got ${JSON.stringify(u)}`);
  }
  const tail = v.tail === '0' ? 0 : num('tail', v.tail, 10, false);
  const options: LoadOptions = {
    urls,
    clients: num('clients', v.clients, 200),
    rooms: num('rooms', v.rooms, 10),
    layout: v['one-room'] ? 'one' : 'spread',
    publishers: num('publishers', v.publishers, 10),
    rate: num('rate', v.rate, 100, false),
    durationMs: Math.round(num('duration', v.duration, 30, false) * 1000),
    payloadBytes: num('size', v.size, 100),
    tailMs: Math.round(tail * 1000),
  };
  return { options, json: v.json, quiet: !!v.quiet, help: !!v.help };
}

function progressLine(p: LoadProgress): string {
  return `[${(p.elapsedMs / 1000).toFixed(0).padStart(4)} s] ${p.phase.padEnd(7)} connected ${p.connected} · sent ${p.scheduled} · acked ${p.acked} · delivered ${p.delivered} · owed ${p.missing} · reconnecting ${p.reconnecting}\n`;
}

/** `confab load …`: returns after setting process.exitCode (0, 1, 2 or 3). */
export async function runLoadCli(argv: string[]): Promise<void> {
  let args: LoadCliArgs;
  try {
    args = parseLoadArgs(argv);
  } catch (e) {
    process.stderr.write(`confab load: ${(e as Error).message}\n${LOAD_USAGE}`);
    process.exitCode = 2;
    return;
  }
  if (args.help) {
    process.stdout.write(LOAD_USAGE);
    return;
  }
  const abort = new AbortController();
  const onSigint = () => {
    if (abort.signal.aborted) process.exit(130);
    process.stderr.write('confab load: stopping early (Ctrl-C again to quit at once)\n');
    abort.abort();
  };
  process.on('SIGINT', onSigint);
  try {
    const report = await runLoad({
      ...args.options,
      signal: abort.signal,
      onProgress: args.quiet ? undefined : (p) => process.stderr.write(progressLine(p)),
    });
    process.stdout.write(formatReport(report));
    if (args.json) writeFileSync(args.json, JSON.stringify(report, null, 2) + '\n');
    process.exitCode = report.ok ? 0 : 1;
  } catch (e) {
    if (e instanceof LoadError) {
      process.stderr.write(`confab load: ${e.code}: ${e.message}\n`);
      process.exitCode = e.code === 'bad_option' ? 2 : 3;
      return;
    }
    throw e;
  } finally {
    process.off('SIGINT', onSigint);
  }
}
