/**
 * A canary client for abuse tests and the "under abuse" bench: one user in its own room publishing
 * a message every `intervalMs` and receiving it back. `stop()` reports what was lost, duplicated or
 * reordered, every error it was sent, and the publish-to-delivery latency (p50/p99).
 */
import type { ServerFrame } from '../protocol/frames.js';
import { joinRoom, RawClient } from './raw-client.js';
import { waitFor } from '../procs/wait.js';

export interface CanaryReport {
  sent: number;
  acked: number;
  received: number;
  lost: number;
  duplicated: number;
  reordered: number;
  errors: string[];
  closeCode?: number;
  /** Publish to own message delivered, ms. */
  p50: number;
  p99: number;
  max: number;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export class Canary {
  private readonly sentAt = new Map<string, number>();
  private readonly latencies: number[] = [];
  private readonly seen: string[] = [];
  private timer: ReturnType<typeof setInterval> | undefined;
  private stopped: Promise<CanaryReport> | undefined;
  private n = 0;

  private constructor(readonly c: RawClient, readonly room: string) {
    c.ws.on('message', (d) => {
      const f = JSON.parse(d.toString()) as ServerFrame;
      if (f.t !== 'msg' || f.room !== room) return;
      const t0 = this.sentAt.get(f.id);
      if (t0 !== undefined && !this.seen.includes(f.id)) this.latencies.push(performance.now() - t0);
      this.seen.push(f.id);
    });
  }

  /** Connect as a new user (`handle`), join `room` and start publishing every `intervalMs`. */
  static async start(gw: { url: string; wsUrl: string }, opts: { handle?: string; room?: string; intervalMs?: number } = {}): Promise<Canary> {
    const room = opts.room ?? 'canary';
    const { c } = await RawClient.session(gw, opts.handle ?? 'canary');
    await joinRoom(c, room);
    const k = new Canary(c, room);
    k.timer = setInterval(() => k.publish(), opts.intervalMs ?? 100);
    return k;
  }

  private publish(): void {
    const id = `c${this.n++}`;
    this.sentAt.set(id, performance.now());
    this.c.send({ t: 'pub', id, room: this.room, text: `canary ${id}` });
  }

  /** Stop publishing, wait (bounded) for the last answers, close, and report (once; later calls get the same report). */
  stop(waitMs = 5000): Promise<CanaryReport> {
    this.stopped ??= this.finish(waitMs);
    return this.stopped;
  }

  private async finish(waitMs: number): Promise<CanaryReport> {
    clearInterval(this.timer);
    const acks = () => this.c.all('ack').filter((a) => a.room === this.room).length;
    const errs = () => this.c.all('error').length;
    await waitFor(() => this.c.closeCode !== undefined || (acks() + errs() >= this.n && this.seen.length >= acks()), { timeoutMs: waitMs, what: 'the canary\'s last answers' }).catch(() => undefined);
    const ids = [...this.sentAt.keys()];
    const unique = new Set(this.seen);
    let reordered = 0;
    for (let i = 1; i < this.seen.length; i++) if (Number(this.seen[i]!.slice(1)) < Number(this.seen[i - 1]!.slice(1))) reordered++;
    const sorted = [...this.latencies].sort((a, b) => a - b);
    const report: CanaryReport = {
      sent: ids.length,
      acked: acks(),
      received: unique.size,
      lost: ids.filter((id) => !unique.has(id)).length,
      duplicated: this.seen.length - unique.size,
      reordered,
      errors: this.c.all('error').map((e) => e.code),
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
      max: sorted.at(-1) ?? NaN,
    };
    if (this.c.closeCode !== undefined) report.closeCode = this.c.closeCode;
    this.c.close();
    return report;
  }
}
