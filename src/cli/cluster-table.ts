/** The table `confab cluster up` and `confab cluster status` print: one block per region. */
import type { ClusterState } from './cluster-plan.js';

/** Live health per component (from `confab cluster status`); absent = not checked. */
export interface Health {
  nats?: Record<string, string>;
  gateways?: Record<string, string>;
  haproxy?: Record<string, string>;
}

function pad(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ')).join('\n') + '\n';
}

export function renderTable(s: ClusterState, health: Health = {}): string {
  const h = (m: Record<string, string> | undefined, k: string) => (m ? ` [${m[k] ?? '?'}]` : '');
  const rows: string[][] = [['region', 'HAProxy (open in a browser)', 'gateways', 'NATS client URLs', 'NATS monitoring']];
  for (const r of s.regions) {
    const n = Math.max(r.gateways.length, r.nats.length, 1);
    for (let i = 0; i < n; i++) {
      const g = r.gateways[i];
      const nn = r.nats[i];
      rows.push([
        i === 0 ? r.name : '',
        i === 0 ? `${r.haproxy.url}/${h(health.haproxy, r.name)}` : '',
        g ? `${g.name} ${g.url}${h(health.gateways, g.name)}` : '',
        nn ? nn.url : '',
        nn ? `${nn.monitorUrl}/healthz${h(health.nats, nn.name)}` : '',
      ]);
    }
  }
  const footer = `history: one JetStream stream (R${s.streamReplicas}) in region ${s.streamRegion}, one JetStream domain across all regions\n`;
  return pad(rows) + footer;
}
