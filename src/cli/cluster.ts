/**
 * `confab cluster up|down|roll|status`: a multi-region confab cluster on
 * 127.0.0.1 (NATS clusters joined by gateways, confab gateways, one HAProxy per
 * region), see docs/cluster.md. `up` is the foreground supervisor; the other
 * commands act on the cluster recorded in `<dir>/cluster.json`.
 */
import { HaproxyAdmin } from '../procs/haproxy.js';
import { alive, cmdline, MARKERS, signalIfOurs, waitGone } from '../procs/pid.js';
import { httpStatus } from '../procs/wait.js';
import { parseCommandArgs } from './args.js';
import { parseClusterArgs, pidsOf, readState, UsageError, type ClusterOptions, type ClusterState } from './cluster-plan.js';
import { renderParts, renderTable, type Health } from './cluster-table.js';
import { clusterUp } from './cluster-up.js';

export const CLUSTER_USAGE = `usage: confab cluster <up|down|roll|status> [options]

  up      [--regions 2] [--nats-per-region 3] [--gateways-per-region 2] [--base-port 14000]
          [--dir .confab-cluster] [--region-names ord,syd,…] [--wan-latency MS] [--wan-loss PCT]
          start everything on 127.0.0.1, print the table, stay in the foreground,
          restart any part that exits on its own (backoff 0.5 s → 10 s);
          --wan-latency/--wan-loss put a delaying proxy on every gateway link between
          regions (MS round trip; PCT of chunks delayed by a retransmission timeout)
          Ctrl-C / SIGTERM stops it (gateways drained first)
  down    [--dir .confab-cluster]   stop the cluster started from that dir (by the PIDs in cluster.json)
  roll    [--dir .confab-cluster]   rolling restart of every gateway, one at a time, no downtime
  status  [--dir .confab-cluster]   every part: pid, state, automatic restarts, live health
`;

const HELP = { help: { type: 'boolean', short: 'h' } } as const;
const DIR = { dir: { type: 'string' } } as const;
const UP_OPTIONS = {
  regions: { type: 'string' },
  'nats-per-region': { type: 'string' },
  'gateways-per-region': { type: 'string' },
  'base-port': { type: 'string' },
  ...DIR,
  'region-names': { type: 'string' },
  'wan-latency': { type: 'string' },
  'wan-loss': { type: 'string' },
  ...HELP,
} as const;
const DIR_OPTIONS = { ...DIR, ...HELP } as const;

/**
 * The flags of `cluster up` (UP_OPTIONS) or of down/roll/status (DIR_OPTIONS), parsed by node:util
 * parseArgs (strict); the values are checked, defaulted and --dir resolved by cluster-plan's
 * parseClusterArgs. Throws UsageError.
 */
export function parseClusterCommandArgs(argv: string[], command: 'up' | 'down' | 'roll' | 'status'): ClusterOptions {
  const options = command === 'up' ? UP_OPTIONS : DIR_OPTIONS;
  const flags = Object.keys(options).filter((k) => k !== 'help');
  const { values } = parseCommandArgs(
    { args: argv, options, strict: true, allowPositionals: false },
    {
      unknown: (name, raw) => (raw.startsWith('--') ? `unknown option --${name} (allowed: ${flags.map((k) => `--${k}`).join(' ')})` : `unexpected argument ${JSON.stringify(raw)}`),
      value: (name, value) => void parseClusterArgs([`--${name}=${value}`], flags),
    },
  );
  const given = Object.entries(values).filter(([k, v]) => k !== 'help' && typeof v === 'string') as [string, string][];
  return parseClusterArgs(given.map(([k, v]) => `--${k}=${v}`), flags);
}

function supervisorAlive(s: ClusterState): boolean {
  return alive(s.supervisorPid) && cmdline(s.supervisorPid).includes('cluster');
}

/** `down`: SIGTERM the supervisor (it drains and stops everything); if it is gone, stop the recorded PIDs directly, in order. */
async function clusterDown(dir: string): Promise<void> {
  const s = readState(dir);
  const pids = pidsOf(s);
  if (supervisorAlive(s)) {
    process.stderr.write(`stopping the cluster (supervisor pid ${s.supervisorPid})…\n`);
    process.kill(s.supervisorPid, 'SIGTERM');
    const gone = await waitGone(s.supervisorPid, ['cluster'], 60_000, 65_000);
    if (!gone) throw new Error(`supervisor ${s.supervisorPid} did not exit`);
  } else {
    process.stderr.write('supervisor not running: stopping the recorded processes directly\n');
  }
  // whatever is still alive (supervisor killed, or it died): gateways first, then HAProxy, then NATS
  for (const kind of ['gateway', 'haproxy', 'nats'] as const) {
    const group = pids.filter((p) => p.kind === kind && alive(p.pid));
    for (const p of group) signalIfOurs(p.pid, [...MARKERS[kind]], 'SIGTERM');
    await Promise.all(group.map((p) => waitGone(p.pid, [...MARKERS[kind]], kind === 'gateway' ? 20_000 : 10_000)));
  }
  const left = pids.filter((p) => alive(p.pid) && cmdline(p.pid) !== '');
  if (left.length > 0) throw new Error(`still running: ${left.map((p) => `${p.name} (${p.pid})`).join(', ')}`);
  process.stdout.write(`cluster in ${s.dir} stopped\n`);
}

/** `roll`: ask the supervisor (control API) to roll every gateway; prints its progress. */
async function clusterRoll(dir: string): Promise<void> {
  const s = readState(dir);
  if (!supervisorAlive(s)) throw new UsageError(`no running cluster supervisor for ${s.dir}`);
  const res = await fetch(`http://127.0.0.1:${s.controlPort}/roll`, { method: 'POST', headers: { authorization: `Bearer ${s.controlToken}` }, signal: AbortSignal.timeout(30 * 60_000) });
  if (res.status !== 200 || !res.body) throw new Error(`control API: ${res.status} ${await res.text()}`);
  let last = '';
  const decoder = new TextDecoder();
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    const text = decoder.decode(chunk, { stream: true });
    process.stdout.write(text);
    last = (last + text).split('\n').filter(Boolean).at(-1) ?? last;
  }
  if (last.trim() !== 'roll done') throw new Error('roll did not complete');
}

/**
 * `status`: every part's supervisor state and restart count (cluster.json) and its
 * live health, checked directly (NATS /healthz, gateway /readyz and its HAProxy
 * server status, HAProxy runtime API). Exit 1 unless everything is healthy.
 */
async function clusterStatus(dir: string): Promise<void> {
  const s = readState(dir);
  const health: Health = {};
  let ok = s.status === 'running';
  for (const r of s.regions) {
    const [nats, servers] = await Promise.all([
      Promise.all(r.nats.map((n) => httpStatus(`${n.monitorUrl}/healthz`))),
      new HaproxyAdmin(r.haproxy.socket).servers().catch(() => undefined),
    ]);
    r.nats.forEach((n, i) => {
      const st = nats[i]!;
      health[n.name] = st === 200 ? 'healthy' : st === 0 ? 'down' : `unhealthy ${st}`;
      ok &&= st === 200;
    });
    health[`haproxy-${r.name}`] = servers ? 'runtime API up' : 'down';
    ok &&= servers !== undefined;
    const ready = await Promise.all(r.gateways.map((g) => httpStatus(`${g.url}/readyz`)));
    r.gateways.forEach((g, i) => {
      const st = ready[i]!;
      const lb = servers?.find((x) => x.name === g.name)?.status ?? '?';
      health[g.name] = `${st === 200 ? 'ready' : st === 0 ? 'down' : `not ready ${st}`}, HAProxy ${lb}`;
      ok &&= st === 200 && lb === 'UP';
    });
  }
  process.stdout.write(`cluster ${s.dir}: ${s.status}, supervisor pid ${s.supervisorPid} ${supervisorAlive(s) ? 'running' : 'gone'}\n`);
  process.stdout.write(renderTable(s));
  process.stdout.write('\n' + renderParts(s, health));
  if (!ok) process.exitCode = 1;
}

/** Entry for `confab cluster …` (exit code 2 for usage errors, 1 for failures). */
export async function runCluster(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(CLUSTER_USAGE); // help starts nothing
    return;
  }
  try {
    switch (sub) {
      case 'up':
        return await clusterUp(parseClusterCommandArgs(rest, 'up'));
      // one-shot commands exit when done (pooled HTTP keep-alive sockets would hold the process for seconds)
      case 'down':
        await clusterDown(parseClusterCommandArgs(rest, 'down').dir);
        return process.exit(process.exitCode ?? 0);
      case 'roll':
        await clusterRoll(parseClusterCommandArgs(rest, 'roll').dir);
        return process.exit(process.exitCode ?? 0);
      case 'status':
        await clusterStatus(parseClusterCommandArgs(rest, 'status').dir);
        return process.exit(process.exitCode ?? 0);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(CLUSTER_USAGE);
        return;
      default:
        throw new UsageError(`unknown cluster command ${JSON.stringify(sub)}`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`confab cluster: ${e.message}\n${CLUSTER_USAGE}`);
      process.exit(2);
    }
    throw e;
  }
}
