/**
 * Bench scenario "under abuse" (issue 11): the latency a canary client sees, publishing in its own
 * room every 100 ms, alone and then beside an attacker at the limits. The attacker is 4 users from
 * one address, 16 sockets each (the per-user maximum), every socket at its per-connection rate
 * (20 frames/s): joins into 50 rooms each (resumes from offset 0, i.e. replays), 2,000-character
 * messages, typing in every room, alerts. The gateway runs with its default limits, once as shipped
 * ("limits") and once with the per-user and per-node caps lifted ("per-connection only": what
 * confab enforced before), so the two attacked rows are the before/after of the per-user bounds.
 * The attacker runs in a child process (src/testkit/attacker.ts), so the canary's figures are the
 * server's, not those of a bench process busy reading the attacker's deliveries.
 */
import { spawnAttacker, type AttackPlan, type AttackResult } from '../testkit/attacker.js';
import { Canary, type CanaryReport } from '../testkit/canary.js';
import type { BenchSizes } from './scenarios.js';
import { hasTaskset, LOADGEN_CORE, startSystem, type SystemProc } from './systems.js';

/** confab's shipped per-connection limits (the bench's confabEnv raises them to measure load). */
const DEFAULT_LIMITS: Record<string, string> = {
  CONFAB_MAX_CONN_PER_IP: '256',
  CONFAB_RATE_PER_SEC: '20',
  CONFAB_RATE_BURST: '40',
  CONFAB_FLOOD_CLOSE_AFTER: '100',
  CONFAB_MAX_ROOMS: '50',
  CONFAB_MAX_TEXT_CHARS: '2000',
  CONFAB_MAX_FRAME_BYTES: '16384',
  CONFAB_RECENT_ON_JOIN: '50',
};

/** The per-user and per-node caps lifted: only the per-connection limits hold (confab before issue 11). */
const PER_CONNECTION_ONLY: Record<string, string> = {
  CONFAB_MAX_SOCKETS_PER_USER: '100000',
  CONFAB_MAX_ROOMS_PER_USER: '1000000',
  CONFAB_MAX_ROOMS_PER_NODE: '10000000',
  CONFAB_USER_MSG_PER_SEC: '1000000',
  CONFAB_USER_MSG_BURST: '1000000',
  CONFAB_ALERT_RATE_PER_MIN: '100000',
  CONFAB_USER_TYPING_PER_SEC: '1000000',
  CONFAB_USER_TYPING_BURST: '1000000',
};

export interface AbusePhase {
  canary: CanaryReport;
  /** Frames the attacker sent, and what came back. */
  attackerSent: number;
  attackerAcked: number;
  attackerRefused: Record<string, number>;
  /** Frames the attacker's sockets received (deliveries to it: alerts, typing, replays). */
  attackerReceived: number;
  serverRssMiB: number;
}

export interface AbuseResult {
  alone: AbusePhase;
  limits: AbusePhase;
  perConnectionOnly: AbusePhase;
}

const USERS = 4;
const SOCKETS = 16;
const ROOMS = 50;

/** The attack: every socket one frame per 50 ms (its per-connection rate of 20/s), 50 joins into 100 shared rooms, then alert, typing, resume from offset 0, two messages. */
function plan(gw: { url: string; wsUrl: string }, ms: number): AttackPlan {
  return {
    ...gw,
    durationMs: ms,
    groups: [{ users: USERS, sockets: SOCKETS, rooms: ROOMS * 2, roomsPerSocket: ROOMS, sharedRooms: true, prefix: 'abuse', rate: 20, mix: ['alert', 'typing', 'replay', 'pub', 'pub'] }],
  };
}

async function phase(server: SystemProc, attack: boolean, ms: number): Promise<AbusePhase> {
  const gw = { url: server.url, wsUrl: server.url.replace(/^http/, 'ws') + '/ws' };
  const startCanary = () => Canary.start(gw, { handle: `canary${Math.floor(Math.random() * 1e6)}`, intervalMs: 100 });
  let canary: Promise<Canary> | undefined;
  let r: AttackResult | undefined;
  if (attack) {
    // the attacker is a process of its own (on the load generator's core): reading its deliveries does not
    // delay the canary's; the canary measures while the attacker sends (from its `ready`, not its setup)
    const onStart = () => {
      canary = startCanary();
      canary.catch(() => undefined); // awaited (and its failure reported) after the attack
    };
    r = await spawnAttacker(plan(gw, ms), { prefix: hasTaskset() ? ['taskset', '-c', LOADGEN_CORE] : [], onStart });
  } else {
    canary = startCanary();
    await new Promise((res) => setTimeout(res, ms));
  }
  const rss = server.rss() / 2 ** 20;
  if (!canary) throw new Error('the attacker never started');
  const report = await (await canary).stop();
  const refused: Record<string, number> = { ...r?.refused };
  if (r) refused.sockets_refused = Object.values(r.socketsRefused).reduce((a, b) => a + b, 0);
  return { canary: report, attackerSent: r?.sent ?? 0, attackerAcked: r?.acked ?? 0, attackerRefused: refused, attackerReceived: r?.received ?? 0, serverRssMiB: rss };
}

export async function underAbuse(s: BenchSizes): Promise<AbuseResult> {
  const ms = s.quick ? 6000 : 15_000;
  const run = async (extra: Record<string, string>, attack: boolean) => {
    const server = await startSystem('confab', { env: { ...DEFAULT_LIMITS, ...extra } });
    try {
      return await phase(server, attack, ms);
    } finally {
      await server.stop();
    }
  };
  const alone = await run({}, false);
  const limits = await run({}, true);
  const perConnectionOnly = await run(PER_CONNECTION_ONLY, true);
  return { alone, limits, perConnectionOnly };
}

/** One line per phase for the log and docs/benchmarks.md. */
export function abuseTable(r: AbuseResult): string {
  const row = (name: string, p: AbusePhase) =>
    `| ${name} | ${p.canary.p50.toFixed(1)} | ${p.canary.p99.toFixed(1)} | ${p.canary.max.toFixed(0)} | ${p.canary.sent} / ${p.canary.lost} / ${p.canary.errors.length} | ${p.attackerSent} | ${p.attackerAcked} | ${Object.entries(p.attackerRefused).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ') || '—'} | ${p.attackerReceived} | ${p.serverRssMiB.toFixed(0)} |`;
  return [
    '| phase | canary p50 ms | p99 ms | max ms | canary sent / lost / errors | attacker frames | accepted | refused | frames to attacker | server RSS MiB |',
    '|---|---|---|---|---|---|---|---|---|---|',
    row('canary alone', r.alone),
    row('attacker, limits as shipped', r.limits),
    row('attacker, per-connection limits only (before)', r.perConnectionOnly),
  ].join('\n');
}
