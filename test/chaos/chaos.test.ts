// test:serial: three NATS servers, three gateways, HAProxy and 60 clients per scenario; recovery times are part of the verdict
/**
 * Chaos suite at CI scale (src/chaos/): for each scenario a fresh cluster of real
 * processes on loopback (3 NATS JetStream servers with the history stream at R3,
 * or one redis-server; 3 gateways; HAProxy), 60 SDK clients in 10 rooms through
 * HAProxy, 10 of them publishing 2 msg/s each, a fault in the middle of the
 * traffic, then a bounded, polled wait for the system to be healthy again and a
 * settle period. An independent ledger checks every acknowledged message at
 * every member.
 *
 * Asserted per scenario: 0 lost (acked but missing at a member), 0 duplicated
 * (given to the app twice), 0 reordered (per room, and per sender: stored in the
 * order sent, G9/R12), 0 gaps, no message stored twice, 0 stuck (outbox entries left after the settle
 * period), 0 false leaves (presence `leave` for users who were not away for the
 * grace period), no process exiting by itself (G10), and every part ready and
 * every client back by itself (R11, R14).
 *
 * Scenarios: the NATS server leading the history stream frozen 15 s (R11; its
 * gateway connections and every append stall), gateway kill -9 (R2), that
 * leader killed with kill -9 (R12), Redis frozen 15 s (R11 on Redis). `npm run chaos` runs
 * these and the rest at a larger scale and writes docs/reliability.md.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { renderEvidence, renderTable, runScenario, SCALES, scenario, type ScenarioResult } from '../../src/chaos/index.js';

const CI_SCENARIOS = ['nats-leader-freeze', 'gateway-kill', 'nats-leader-kill', 'redis-freeze'];

function verdictFigures(r: ScenarioResult) {
  return {
    setupError: r.setupError ?? null,
    faultError: r.faultError ?? null,
    lost: r.lost,
    duplicated: r.duplicated,
    reorderedRoom: r.reorderedRoom,
    reorderedSender: r.reorderedSender,
    gaps: r.gaps,
    storedTwice: r.storedTwice,
    stuck: r.stuck,
    falseLeaves: r.falseLeaves,
    crashed: r.crashes.map((c) => c.name),
    healthy: r.healthy,
  };
}

/**
 * Scenarios that still fail now and then: run and reported (node:test `todo`, listed in the summary), not
 * counted as failures. Empty: nats-leader-freeze, listed here until 2026-11-30, lost acked messages when a
 * read's consumer sat on the deposed, diverged leader; reads are now checked against the stream leader.
 */
const KNOWN_FAILING: Record<string, string | undefined> = {};

describe('chaos suite (CI scale: 60 clients, 10 rooms, 20 msg/s)', { timeout: 240_000 }, () => {
  for (const name of CI_SCENARIOS) {
    it(`${name}: ${scenario(name).title}: nothing lost, duplicated, reordered or stuck; no false leaves; healthy again by itself`, { timeout: 170_000, todo: KNOWN_FAILING[name] }, async () => {
      const r = await runScenario(scenario(name), SCALES.ci, { log: process.env.CHAOS_VERBOSE ? (l) => console.log(l) : undefined });
      const evidence = renderTable([r]) + '\n' + renderEvidence([r]);
      console.log(evidence);
      assert.ok(r.sent >= 100 && r.acked > 0, `the scenario carried traffic (sent ${r.sent}, acked ${r.acked})\n${evidence}`);
      assert.deepEqual(
        verdictFigures(r),
        { setupError: null, faultError: null, lost: 0, duplicated: 0, reorderedRoom: 0, reorderedSender: 0, gaps: 0, storedTwice: 0, stuck: 0, falseLeaves: 0, crashed: [], healthy: true },
        `${name} failed: ${r.failures.join('; ')}\n${evidence}`,
      );
    });
  }
});
