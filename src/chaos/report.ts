/**
 * Chaos results as text: a Markdown table (one row per scenario), the evidence
 * under it (what was done when, why a scenario failed, crash log lines, error
 * logs, examples), and the labelled section of docs/reliability.md it lives in.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { ScenarioResult } from './run.js';

export interface RunInfo {
  command: string;
  date: string;
  commit: string;
  scale: string;
  machine: string;
  wallMs: number;
}

const n = (v: number) => v.toLocaleString('en-US');

function refusedText(r: ScenarioResult): string {
  const e = Object.entries(r.refused);
  return e.length ? ` (refused: ${e.map(([k, v]) => `${k} ${v}`).join(', ')})` : '';
}

/** One row per scenario. */
export function renderTable(results: ScenarioResult[]): string {
  const head = '| scenario | sent / acked | lost | dup | reordered room / sender | gaps | stuck | reconnects: n, p99 / max ms | false leaves | healthy again | crashed | verdict |';
  const sep = '|---|---|---|---|---|---|---|---|---|---|---|---|';
  const rows = results.map((r) => {
    if (r.setupError) return `| ${r.scenario} | setup failed: ${r.setupError.split('\n')[0]!.slice(0, 120)} | | | | | | | | | | **FAIL** |`;
    const healthy = r.healthy ? `yes, ${(r.healthyAfterMs! / 1000).toFixed(1)} s` : '**no**';
    const crashed = r.crashes.length ? `**${[...new Set(r.crashes.map((c) => c.name))].join(', ')}**` : '—';
    const rec = r.reconnects.count ? `${r.reconnects.count}, ${n(r.reconnects.p99)} / ${n(r.reconnects.max)}` : '0';
    const b = (v: number) => (v > 0 ? `**${n(v)}**` : '0');
    return `| ${r.scenario} | ${n(r.sent)} / ${n(r.acked)}${refusedText(r)} | ${b(r.lost)} | ${b(r.duplicated)}${r.storedTwice ? ` (**${n(r.storedTwice)}** stored twice)` : ''} | ${b(r.reorderedRoom)} / ${b(r.reorderedSender)} | ${b(r.gaps)} | ${b(r.stuck)} | ${rec} | ${b(r.falseLeaves)} | ${healthy} | ${crashed} | ${r.pass ? 'pass' : '**FAIL**'} |`;
  });
  return [head, sep, ...rows].join('\n') + '\n';
}

/** The error line of a crash log (and its first stack frame in our code), else the last line. */
function firstErrorLine(tail: string): string {
  const lines = tail.split('\n').map((l) => l.trim()).filter(Boolean);
  const i = lines.findIndex((l) => /^(\w*Error\b|Uncaught|Unhandled)|unhandled rejection|uncaught exception/i.test(l) && !l.startsWith('at '));
  if (i < 0) return (lines[lines.length - 1] ?? '').slice(0, 220);
  const frame = lines.slice(i + 1).find((l) => l.startsWith('at ') && /\/(src|dist)\//.test(l) && !/node_modules/.test(l));
  return `${lines[i]!.slice(0, 200)}${frame ? ` ${frame.replace(/\(.*\/(src|dist)\//, '(').slice(0, 120)}` : ''}`;
}

/** The evidence of each scenario, as a Markdown list. */
export function renderEvidence(results: ScenarioResult[]): string {
  const out: string[] = [];
  for (const r of results) {
    out.push(`**${r.scenario}**: ${r.title}. ${r.clients} clients, ${r.rooms} rooms, ${r.publishers} publishers at ${r.rate} msg/s in all, ${(r.sendMs / 1000).toFixed(1)} s of sending.`);
    out.push('');
    if (r.notes.length) out.push(`- timeline: ${r.notes.map((x) => `+${(x.at / 1000).toFixed(1)} s ${x.text}`).join('; ')}`);
    if (r.failures.length) out.push(`- failed: ${r.failures.join('; ')}`);
    for (const c of r.crashes) out.push(`- crash: ${c.name} (pid ${c.pid}) exited at +${(c.at / 1000).toFixed(1)} s with code ${c.code}${c.signal ? `, signal ${c.signal}` : ''}: \`${firstErrorLine(c.logTail).replace(/`/g, "'")}\``);
    if (r.logErrors.length) out.push(`- gateway error logs: ${r.logErrors.slice(0, 4).map((e) => `${e.count}× \`${e.message.slice(0, 160).replace(/`/g, "'")}\` (${e.gateways.join(', ')})`).join('; ')}`);
    const errs = Object.entries(r.clientErrors);
    if (errs.length) out.push(`- SDK error events: ${errs.map(([k, v]) => `${k} ${v}`).join(', ')}${r.busDownNotices ? `; bus-down notices ${r.busDownNotices}` : ''}`);
    if (r.leaves) out.push(`- presence leave notices: ${r.leaves} (${r.falseLeaves} for users who had not been away for the grace period, ${r.falseLeaveUsers} users)`);
    if (r.examples.falseLeaves.length) {
      const away = (o: { down: number; up?: number }[] = []) => (o.length ? o.map((x) => `${(x.down / 1000).toFixed(1)}–${x.up !== undefined ? (x.up / 1000).toFixed(1) : 'end'} s`).join(', ') : 'never');
      const seen = new Set<string>();
      const firsts = r.examples.falseLeaves.filter((l) => !seen.has(l.user) && seen.add(l.user));
      out.push(`- false leaves, e.g.: ${firsts.slice(0, 3).map((l) => `${l.user} announced leaving ${l.room} at +${(l.at / 1000).toFixed(1)} s; away ${away(l.userOutages)}`).join('; ')}`);
    }
    const ex = r.examples;
    if (ex.lost.length) out.push(`- lost, e.g.: ${ex.lost.slice(0, 3).map((x) => `${x.room} seq ${x.seq} (offset ${x.offset}) missing at ${x.missing} members [${x.missingAt.join(' ')}]`).join('; ')}`);
    if (ex.senderInversions.length) out.push(`- sender order, e.g.: ${ex.senderInversions.slice(0, 3).map((x) => `${x.sender}: seq ${x.earlier.seq} stored at ${x.earlier.offset}, seq ${x.later.seq} (sent later) at ${x.later.offset}`).join('; ')}`);
    if (ex.gaps.length) out.push(`- SDK gap events, e.g.: ${ex.gaps.slice(0, 3).map((g) => `+${(g.at / 1000).toFixed(1)} s client ${g.client} on ${g.node ?? '?'} ${g.room} ${g.from}..${g.to}${g.reset ? ' (reset)' : ''} (last offset it had: ${g.lastSeen ?? 'none'}${g.held?.length ? `; this run's messages seen inside it: ${g.held.slice(0, 6).join(' ')}` : ''})`).join('; ')}`);
    if (ex.order.length) {
      const why = (o: (typeof ex.order)[number]) => (o.kind === 'prev-hole' ? ' (skips past prev)' : o.kind === 'offset' ? ` (seq ${o.seq} acked at ${o.ackOffset ?? '?'}, seen elsewhere at another offset)` : '');
      out.push(`- room order, e.g.: ${ex.order.slice(0, 3).map((o) => `+${(o.at / 1000).toFixed(1)} s client ${o.client} on ${o.node ?? '?'} ${o.room}: offset ${o.offset} (prev ${o.prev}) after ${o.lastSeen ?? 'none'}${why(o)}`).join('; ')}`);
    }
    if (ex.storedTwice?.length) out.push(`- stored twice, e.g.: ${ex.storedTwice.slice(0, 3).map((x) => `${x.room} seq ${x.seq} at offsets ${x.offsets.join(' and ')} (ack: ${x.ackOffset ?? 'none'})`).join('; ')}`);
    if (ex.stuck.length) out.push(`- stuck outboxes, e.g.: ${ex.stuck.slice(0, 3).map((s) => `client ${s.client}: ${s.entries} entries, state ${s.state}`).join('; ')}`);
    if (ex.duplicated.length) out.push(`- duplicates, e.g.: ${ex.duplicated.slice(0, 3).map((d) => `client ${d.client} in ${d.room}: ${d.count}`).join('; ')}`);
    if (!r.healthy && r.unhealthy.length) out.push(`- still wrong at the end of the health wait: ${r.unhealthy.slice(0, 8).join('; ')}`);
    out.push('');
  }
  return out.join('\n');
}

/** The whole labelled section. */
export function renderSection(label: string, info: RunInfo, results: ScenarioResult[]): string {
  const passed = results.filter((r) => r.pass).length;
  return [
    `<!-- chaos:${label}:start -->`,
    `### Run: ${label}`,
    '',
    `\`${info.command}\` on ${info.date}, commit \`${info.commit}\`, scale ${info.scale}; ${info.machine}; ${Math.round(info.wallMs / 1000)} s wall time. ${passed} of ${results.length} scenarios passed.`,
    '',
    renderTable(results),
    renderEvidence(results),
    `<!-- chaos:${label}:end -->`,
  ].join('\n');
}

/** Put the section into `file`, replacing the section of the same label, or appending it. */
export function writeSection(file: string, label: string, section: string): void {
  const start = `<!-- chaos:${label}:start -->`;
  const end = `<!-- chaos:${label}:end -->`;
  let text = existsSync(file) ? readFileSync(file, 'utf8') : '# Reliability under faults\n\nWritten by `npm run chaos` (src/chaos/).\n';
  const a = text.indexOf(start);
  const b = text.indexOf(end);
  if (a >= 0 && b > a) text = text.slice(0, a) + section + text.slice(b + end.length);
  else text = text.replace(/\s*$/, '\n\n') + section + '\n';
  writeFileSync(file, text);
}
