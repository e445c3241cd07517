/**
 * SVG chart, written by hand (no chart dependency): p99 latency (log scale, ms)
 * against delivered messages per second (log scale), one line per system.
 * Filled dots pass (p99 ≤ bound, nothing lost), hollow dots fail.
 */
import type { Aggregate } from './report.js';
import { P99_BOUND_US } from './scenarios.js';
import { fmtNum } from './stats.js';

const COLORS: Record<string, string> = { raw: '#6b7280', sio: '#d97706', confab: '#2563eb' };
const LABELS: Record<string, string> = { raw: 'raw ws', sio: 'Socket.IO 4', confab: 'confab' };

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function ticks(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++)
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v >= lo && v <= hi) out.push(v);
    }
  return out;
}

export function renderChart(a: Aggregate, scenario: string, title: string): string | null {
  const per = a.load[scenario];
  if (!per) return null;
  const series = Object.entries(per)
    .map(([sys, l]) => ({ sys, pts: l.curve.filter((p) => p.delivered > 0 && Number.isFinite(p.p99)) }))
    .filter((s) => s.pts.length > 0);
  if (series.length === 0) return null;
  const W = 760;
  const H = 460;
  const L = 70;
  const R = 160;
  const T = 50;
  const B = 60;
  const xs = series.flatMap((s) => s.pts.map((p) => p.delivered));
  const ys = series.flatMap((s) => s.pts.map((p) => p.p99 / 1000));
  const xlo = 10 ** Math.floor(Math.log10(Math.min(...xs)));
  const xhi = 10 ** Math.ceil(Math.log10(Math.max(...xs)));
  const ylo = Math.max(0.01, 10 ** Math.floor(Math.log10(Math.max(0.01, Math.min(...ys)))));
  const yhi = 10 ** Math.ceil(Math.log10(Math.max(P99_BOUND_US / 1000, ...ys)));
  const X = (v: number) => L + ((Math.log10(v) - Math.log10(xlo)) / (Math.log10(xhi) - Math.log10(xlo))) * (W - L - R);
  const Y = (v: number) => T + (1 - (Math.log10(Math.max(v, ylo)) - Math.log10(ylo)) / (Math.log10(yhi) - Math.log10(ylo))) * (H - T - B);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  out.push(`<text x="${W / 2}" y="24" text-anchor="middle" font-size="15" font-weight="600">${esc(title)}</text>`);
  for (const v of ticks(xlo, xhi)) {
    out.push(`<line x1="${X(v).toFixed(1)}" y1="${T}" x2="${X(v).toFixed(1)}" y2="${H - B}" stroke="#e5e7eb"/>`);
    out.push(`<text x="${X(v).toFixed(1)}" y="${H - B + 16}" text-anchor="middle" fill="#374151">${fmtNum(v)}</text>`);
  }
  for (const v of ticks(ylo, yhi)) {
    out.push(`<line x1="${L}" y1="${Y(v).toFixed(1)}" x2="${W - R}" y2="${Y(v).toFixed(1)}" stroke="#e5e7eb"/>`);
    out.push(`<text x="${L - 6}" y="${(Y(v) + 4).toFixed(1)}" text-anchor="end" fill="#374151">${v >= 1 ? v : v.toFixed(2)}</text>`);
  }
  const by = Y(P99_BOUND_US / 1000);
  out.push(`<line x1="${L}" y1="${by.toFixed(1)}" x2="${W - R}" y2="${by.toFixed(1)}" stroke="#dc2626" stroke-dasharray="5 4"/>`);
  out.push(`<text x="${W - R - 4}" y="${(by - 5).toFixed(1)}" text-anchor="end" fill="#dc2626">p99 bound ${P99_BOUND_US / 1000} ms</text>`);
  out.push(`<rect x="${L}" y="${T}" width="${W - L - R}" height="${H - T - B}" fill="none" stroke="#9ca3af"/>`);
  out.push(`<text x="${(L + W - R) / 2}" y="${H - 18}" text-anchor="middle" fill="#111827">delivered messages/s (log)</text>`);
  out.push(`<text transform="translate(18 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle" fill="#111827">p99 latency, ms (log)</text>`);
  series.forEach((s, i) => {
    const color = COLORS[s.sys] ?? '#111827';
    const d = s.pts.map((p, k) => `${k ? 'L' : 'M'}${X(p.delivered).toFixed(1)} ${Y(p.p99 / 1000).toFixed(1)}`).join(' ');
    out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"/>`);
    for (const p of s.pts)
      out.push(`<circle cx="${X(p.delivered).toFixed(1)}" cy="${Y(p.p99 / 1000).toFixed(1)}" r="4" fill="${p.ok ? color : '#fff'}" stroke="${color}" stroke-width="2"><title>${esc(`${LABELS[s.sys] ?? s.sys}: ${fmtNum(p.delivered)}/s delivered, p99 ${(p.p99 / 1000).toFixed(2)} ms${p.ok ? '' : ' (fail)'}${p.clientBound ? ' (client-bound)' : ''}`)}</title></circle>`);
    const ly = T + 10 + i * 22;
    out.push(`<line x1="${W - R + 14}" y1="${ly}" x2="${W - R + 38}" y2="${ly}" stroke="${color}" stroke-width="2"/>`);
    out.push(`<circle cx="${W - R + 26}" cy="${ly}" r="4" fill="${color}"/>`);
    out.push(`<text x="${W - R + 44}" y="${ly + 4}" fill="#111827">${esc(LABELS[s.sys] ?? s.sys)}</text>`);
  });
  const ly = T + 10 + series.length * 22 + 8;
  out.push(`<circle cx="${W - R + 26}" cy="${ly}" r="4" fill="#fff" stroke="#374151" stroke-width="2"/>`);
  out.push(`<text x="${W - R + 44}" y="${ly + 4}" fill="#374151">failed step</text>`);
  out.push(`<text x="${W - R + 14}" y="${ly + 26}" fill="#6b7280" font-size="11">${esc(a.meta.quick ? 'quick mode, 1 run' : `median of ${a.meta.runs} runs`)}</text>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}
