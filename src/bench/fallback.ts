/**
 * The HTTP fallback's delivery cost beside WebSocket's (issue 14): one confab gateway process
 * (pinned to the server core), one room of N receivers over WebSocket, then another room of N
 * receivers over the fallback (Server-Sent Events), the same publisher at the same rate. Per
 * delivery: the gateway's CPU time (µs), the bytes a receiver reads (WebSocket frame vs SSE event;
 * HTTP chunk headers not counted), and the latency from send to receipt (p50/p99).
 */
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { request } from 'node:http';
import type { BenchSizes } from './scenarios.js';
import { startSystem, type SystemProc } from './systems.js';

export interface FallbackCostRow {
  transport: 'websocket' | 'fallback';
  receivers: number;
  messages: number;
  delivered: number;
  expected: number;
  /** Gateway CPU per delivery, µs. */
  cpuUsPerDelivery: number;
  /** Bytes a receiver read per delivery. */
  bytesPerDelivery: number;
  p50Ms: number;
  p99Ms: number;
}

export interface FallbackCostResult {
  rows: FallbackCostRow[];
}

export function fallbackSizes(s: BenchSizes): { receivers: number; rate: number; durationMs: number } {
  return s.quick ? { receivers: 100, rate: 50, durationMs: 4000 } : { receivers: 200, rate: 50, durationMs: 8000 };
}

async function session(url: string, handle: string): Promise<string> {
  const res = await fetch(`${url}/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ handle }) });
  const b = (await res.json()) as { token?: string; message?: string };
  if (!b.token) throw new Error(`session ${handle}: ${res.status} ${b.message ?? ''}`);
  return b.token;
}

interface Receiver {
  bytes: number;
  got: number;
  close(): void;
}

function pct(sorted: number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!;
}

async function wsReceiver(url: string, token: string, room: string, lat: number[]): Promise<Receiver> {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/ws?token=${encodeURIComponent(token)}`, ['confab.v1']);
  const r: Receiver = { bytes: 0, got: 0, close: () => ws.terminate() };
  await new Promise<void>((resolve, reject) => {
    ws.on('message', (data: Buffer) => {
      const text = data.toString('utf8');
      const f = JSON.parse(text) as { t: string; text?: string };
      if (f.t === 'welcome') ws.send(JSON.stringify({ t: 'join', room }));
      else if (f.t === 'joined') resolve();
      else if (f.t === 'msg') {
        r.bytes += data.length + (data.length < 126 ? 2 : 4);
        r.got++;
        lat.push(performance.now() - Number(f.text!.split(' ')[0]));
      }
    });
    ws.once('error', reject);
  });
  return r;
}

/**
 * A lean fallback receiver (nothing kept but counts and latencies, as the WebSocket one): GET /fallback
 * read as it comes, events split on the blank line, the join POSTed once the session is open.
 */
function fallbackReceiver(url: string, token: string, room: string, lat: number[]): Promise<Receiver> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(`/fallback?token=${encodeURIComponent(token)}`, url), { headers: { accept: 'text/event-stream' }, agent: false }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`fallback stream: ${res.statusCode}`));
      const r: Receiver = { bytes: 0, got: 0, close: () => req.destroy() };
      let buf = '';
      res.setEncoding('utf8');
      res.on('error', () => {});
      res.on('data', (c: string) => {
        buf += c;
        let start = 0;
        let i: number;
        while ((i = buf.indexOf('\n\n', start)) >= 0) {
          const ev = buf.slice(start, i);
          start = i + 2;
          if (ev.startsWith('data: ')) {
            const f = JSON.parse(ev.slice(6)) as { t: string; text?: string };
            if (f.t === 'msg') {
              r.bytes += ev.length + 2;
              r.got++;
              lat.push(performance.now() - Number(f.text!.split(' ')[0]));
            } else if (f.t === 'joined') resolve(r);
          } else if (ev.startsWith('event: open\n')) {
            const o = JSON.parse(ev.slice(ev.indexOf('data: ') + 6)) as { sid: string; key: string };
            fetch(new URL(`/fallback?sid=${encodeURIComponent(o.sid)}`, url), { method: 'POST', headers: { 'x-confab-key': o.key, 'content-type': 'text/plain' }, body: JSON.stringify({ t: 'join', room }) })
              .then((p) => (p.status === 204 ? undefined : reject(new Error(`join POST ${p.status}`))))
              .catch(reject);
          } // `event: ping` is not answered: a phase is shorter than the ping interval (25 s)
        }
        if (start > 0) buf = buf.slice(start);
      });
    });
    req.on('error', reject);
    req.end();
  });
}

async function phase(sys: SystemProc, transport: 'websocket' | 'fallback', n: number, rate: number, durationMs: number): Promise<FallbackCostRow> {
  const room = `bench-${transport}`;
  const lat: number[] = [];
  const receivers: Receiver[] = [];
  const tag = Math.random().toString(36).slice(2, 7);
  try {
    for (let i = 0; i < n; i++) {
      const token = await session(sys.url, `b${tag}${transport[0]}${i}`);
      receivers.push(await (transport === 'websocket' ? wsReceiver : fallbackReceiver)(sys.url, token, room, lat));
    }
    const pubToken = await session(sys.url, `p${tag}${transport[0]}`);
    const pub = new WebSocket(`${sys.url.replace(/^http/, 'ws')}/ws?token=${encodeURIComponent(pubToken)}&echo=0`, ['confab.v1']);
    await new Promise<void>((resolve, reject) => {
      pub.on('message', (d: Buffer) => {
        const f = JSON.parse(d.toString()) as { t: string };
        if (f.t === 'welcome') pub.send(JSON.stringify({ t: 'join', room }));
        if (f.t === 'joined') resolve();
      });
      pub.once('error', reject);
    });
    const messages = Math.round((rate * durationMs) / 1000);
    const expected = messages * n;
    const delivered = () => receivers.reduce((s, r) => s + r.got, 0);
    const cpu0 = sys.cpu();
    const t0 = performance.now();
    for (let k = 0; k < messages; k++) {
      const due = t0 + (k * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      pub.send(JSON.stringify({ t: 'pub', id: `${tag}-${transport}-${k}`, room, text: `${performance.now()} ${'x'.repeat(60)}` }));
    }
    const deadline = performance.now() + 15_000;
    while (delivered() < expected && performance.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const cpu = sys.cpu() - cpu0;
    pub.terminate();
    const got = delivered();
    const bytes = receivers.reduce((s, r) => s + r.bytes, 0);
    const sorted = lat.sort((a, b) => a - b);
    return {
      transport,
      receivers: n,
      messages,
      delivered: got,
      expected,
      cpuUsPerDelivery: got > 0 ? (cpu * 1e6) / got : NaN,
      bytesPerDelivery: got > 0 ? bytes / got : NaN,
      p50Ms: pct(sorted, 0.5),
      p99Ms: pct(sorted, 0.99),
    };
  } finally {
    for (const r of receivers) r.close();
  }
}

/** The scenario: both transports against one gateway process, WebSocket first. */
export async function fallbackCost(s: BenchSizes): Promise<FallbackCostResult> {
  const { receivers, rate, durationMs } = fallbackSizes(s);
  const sys = await startSystem('confab');
  try {
    const rows: FallbackCostRow[] = [];
    for (const t of ['websocket', 'fallback'] as const) rows.push(await phase(sys, t, receivers, rate, durationMs));
    return { rows };
  } finally {
    await sys.stop();
  }
}

/** The result as a text table. */
export function fallbackTable(r: FallbackCostResult): string {
  const head = ['transport', 'receivers', 'delivered', 'gateway CPU µs/delivery', 'bytes/delivery', 'p50 ms', 'p99 ms'];
  const rows = r.rows.map((x) => [x.transport, String(x.receivers), `${x.delivered}/${x.expected}`, x.cpuUsPerDelivery.toFixed(2), x.bytesPerDelivery.toFixed(0), x.p50Ms.toFixed(1), x.p99Ms.toFixed(1)]);
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  return [head, ...rows].map((row) => row.map((c, i) => c.padEnd(w[i]!)).join('  ')).join('\n');
}
