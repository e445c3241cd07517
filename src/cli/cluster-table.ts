/** The tables `confab cluster up` and `confab cluster status` print. */
import { partsOf, type ClusterState } from './cluster-plan.js';

/** Live health per part name (from `confab cluster status`). */
export type Health = Record<string, string>;

function pad(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ').trimEnd()).join('\n') + '\n';
}

/** Addresses: one block per region. */
export function renderTable(s: ClusterState): string {
  const rows: string[][] = [['region', 'HAProxy (open in a browser)', 'gateways', 'NATS client URLs', 'NATS monitoring']];
  for (const r of s.regions) {
    const n = Math.max(r.gateways.length, r.nats.length, 1);
    for (let i = 0; i < n; i++) {
      const g = r.gateways[i];
      const nn = r.nats[i];
      rows.push([i === 0 ? r.name : '', i === 0 ? `${r.haproxy.url}/` : '', g ? `${g.name} ${g.url}` : '', nn ? nn.url : '', nn ? `${nn.monitorUrl}/healthz` : '']);
    }
  }
  const shards = Number(process.env.CONFAB_STREAM_SHARDS ?? '') || 1;
  const footer = s.homeRegions
    ? `history: rooms homed by region (${s.homeRegions.map((r) => `${r}-… in ${r}`).join(', ')}, others in ${s.homeRegions[0]}), ${shards} JetStream stream(s) (R${s.streamReplicas}) per region placed there, one JetStream domain across all regions\n`
    : `history: one JetStream stream (R${s.streamReplicas}) in region ${s.streamRegion}, one JetStream domain across all regions\n`;
  const wan = s.wan
    ? `wan: ${s.wan.latencyMs} ms round trip, ${s.wan.lossPct}% loss between regions (proxies on ${s.regions.flatMap((r) => r.nats.map((n) => n.wanPort)).join(', ')}; counters: GET /wan on the control port)\n`
    : '';
  return pad(rows) + footer + wan;
}

const time = (iso: string | undefined) => (iso ? iso.slice(11, 19) : '');

/**
 * One line per part: the supervisor's view from cluster.json (pid, state,
 * automatic restarts, last unexpected exit, next restart) and the live `health`.
 */
export function renderParts(s: ClusterState, health: Health = {}): string {
  const rows: string[][] = [['part', 'kind', 'pid', 'state', 'restarts', 'health', 'last unexpected exit']];
  for (const { kind, name, rec } of partsOf(s)) {
    const e = rec.lastExit;
    const exit = e ? `${time(e.at)} pid ${e.pid} ${e.signal ?? `code ${e.code}`}` : '';
    const state = rec.state === 'restarting' && rec.nextRestartAt ? `restarting at ${time(rec.nextRestartAt)}` : (rec.state ?? '?');
    rows.push([name, kind, rec.pid ? String(rec.pid) : '-', state, String(rec.restarts ?? 0), health[name] ?? '', exit]);
  }
  return pad(rows);
}
