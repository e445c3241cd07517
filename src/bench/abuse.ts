/**
 * Bench scenario "under abuse" (issue 11): the latency a canary client sees, publishing in its own
 * room every 100 ms, alone and then beside an attacker at the limits. The attacker is 4 users from
 * one address, 16 sockets each (the per-user maximum), every socket at its per-connection rate
 * (20 frames/s): joins into 50 rooms each (resumes from offset 0, i.e. replays), 2,000-character
 * messages, typing in every room, alerts. The gateway runs with its default limits, once as shipped
 * ("limits") and once with the per-user and per-node caps lifted ("per-connection only": what
 * confab enforced before), so the two attacked rows are the before/after of the per-user bounds.
 */
import { Canary, type CanaryReport } from '../testkit/canary.js';
import { createSession } from '../testkit/gateway.js';
import { RawClient } from '../testkit/raw-client.js';
import type { BenchSizes } from './scenarios.js';
import { startSystem, type SystemProc } from './systems.js';

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

async function phase(server: SystemProc, attack: boolean, ms: number): Promise<AbusePhase> {
  const gw = { url: server.url, wsUrl: server.url.replace(/^http/, 'ws') + '/ws' };
  const canary = await Canary.start(gw, { handle: `canary${Math.floor(Math.random() * 1e6)}`, intervalMs: 100 });
  const attackers: RawClient[] = [];
  let sent = 0;
  let received = 0;
  let timer: ReturnType<typeof setInterval> | undefined;
  if (attack) {
    for (let u = 0; u < USERS; u++) {
      const s = await createSession(gw.url, `mallory${u}x${Math.floor(Math.random() * 1e6)}`);
      for (let k = 0; k < SOCKETS; k++) {
        try {
          const c = await RawClient.connect(gw.wsUrl, s.token);
          c.ws.on('message', () => received++);
          attackers.push(c);
        } catch {
          // refused (too_many_sockets): counted below from the number connected
        }
      }
    }
    const text = 'x'.repeat(2000);
    let tick = 0;
    // every socket one frame per 50 ms: its per-connection rate of 20/s
    timer = setInterval(() => {
      tick++;
      attackers.forEach((c, i) => {
        const room = `abuse${(i + 1 + (tick % ROOMS)) % (ROOMS * 2)}`; // one of the rooms this socket joined
        const step = tick % 5;
        if (tick <= ROOMS) c.send({ t: 'join', room: `abuse${(i + tick) % (ROOMS * 2)}` });
        else if (step === 0) c.send({ t: 'alert', id: `a${i}-${tick}`, text: 'alert' });
        else if (step === 1) c.send({ t: 'typing', room });
        else if (step === 2) c.send({ t: 'join', room, since: { epoch: '', offset: 0 } });
        else c.send({ t: 'pub', id: `m${i}-${tick}`, room, text });
        sent++;
      });
    }, 50);
  }
  await new Promise((r) => setTimeout(r, ms));
  clearInterval(timer);
  const report = await canary.stop();
  const refused: Record<string, number> = {};
  let acked = 0;
  for (const c of attackers) {
    acked += c.all('ack').length;
    for (const e of c.all('error')) refused[e.code] = (refused[e.code] ?? 0) + 1;
    c.close();
  }
  if (attack) refused.sockets_refused = USERS * SOCKETS - attackers.length;
  return { canary: report, attackerSent: sent, attackerAcked: acked, attackerRefused: refused, attackerReceived: received, serverRssMiB: server.rss() / 2 ** 20 };
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
