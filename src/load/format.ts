/** The human-readable summary of a load report (what `confab load` prints). */
import type { LoadReport, Percentiles } from './types.js';

const ms = (v: number): string => (Number.isFinite(v) ? (v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(v < 10 ? 2 : 0)} ms`) : '–');
const list = (r: Record<string, number>): string => Object.entries(r).map(([k, v]) => `${k} ${v}`).join(', ') || '–';
const pct = (p: Percentiles): string => `p50 ${ms(p.p50)} · p99 ${ms(p.p99)} · p99.9 ${ms(p.p999)} · max ${ms(p.max)}`;

/** A two-column table, one figure per line, then warnings and the verdict. */
export function formatReport(r: LoadReport): string {
  const rows: [string, string][] = [
    ['targets', r.urls.join(', ')],
    ['setup', `${r.clients} clients, ${r.rooms} rooms, ${r.publishers} publishers, ${r.rate} msg/s, ${r.payloadBytes}-char messages`],
    ['connect', `${ms(r.connectMs)} (clients per node: ${list(r.nodesAtStart)})`],
    ['sent', `${r.scheduled} in ${ms(r.sendMs)} · acked ${r.acked} (${r.dupAcks} dup acks) · refused ${list(r.refused)} · unacked ${r.unacked}`],
    ['delivered', `${r.delivered} of ${r.expected} owed · ${r.deliveredPerSec}/s · tail ${ms(r.tailMs)}${r.drained ? '' : ' (timed out)'}`],
    ['latency', r.latencyMs.count ? pct(r.latencyMs) : '–'],
    ['lost', String(r.lost)],
    ['duplicates', String(r.duplicates)],
    ['order', `${r.orderViolations} violations · ${r.offsetMismatches} offset mismatches`],
    ['gaps', `${r.gaps} (${r.sdkGaps} gap events, ${r.prevHoles} prev holes)`],
    ['reconnects', r.reconnects.count ? `${r.reconnects.count} · ${pct(r.reconnects)}` : '0'],
    ['not back', String(r.notBack)],
    ['states', list(r.states as Record<string, number>)],
    ['nodes at end', list(r.nodesAtEnd)],
    ['client errors', list(r.clientErrors)],
    ['other msgs', `${r.foreign} (not sent by this run)`],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  const lines = [`confab load, run ${r.run}`, ...rows.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`)];
  for (const warn of r.warnings) lines.push(`  warning: ${warn}`);
  lines.push(r.ok ? 'result: OK (nothing acknowledged was lost, duplicated or reordered)' : 'result: FAILED (acknowledged messages were lost, duplicated or reordered)');
  return lines.join('\n') + '\n';
}
