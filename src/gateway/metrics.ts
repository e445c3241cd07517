/**
 * Prometheus metrics (prom-client), one registry per gateway so several gateways
 * can live in one process. Hot-path counts are plain numbers read at scrape time.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { BusTraffic } from '../bus/subject-bus.js';
import { processFaults } from './process-guard.js';

export class GatewayMetrics {
  readonly registry = new Registry();
  connections = 0;
  /** Of `connections`, those over the HTTP fallback (SSE + POST). */
  fallbackConnections = 0;
  messagesIn = 0;
  messagesOut = 0;
  sendBufferDrops = 0;
  /** Usage reports (`ctl.usage`, per-user limits across nodes) this node could not send or read. */
  readonly usageReportFailures = { send: 0, receive: 0 };
  readonly errors: Counter<'code'>;
  readonly publishLatency: Histogram;
  readonly closes: Counter<'code'>;
  readonly refusals: Counter<'code' | 'what'>;

  constructor(labels: { node: string; region: string }, getRooms: () => number, defaults = true, getCacheBytes: () => number = () => 0, getBusTraffic: () => BusTraffic | undefined = () => undefined) {
    const registers = [this.registry];
    this.registry.setDefaultLabels(labels);
    if (defaults) collectDefaultMetrics({ register: this.registry });
    const self = this;
    new Gauge({ name: 'confab_connections', help: 'Open client connections (WebSocket and HTTP fallback)', registers, collect() { this.set(self.connections); } });
    new Gauge({ name: 'confab_fallback_connections', help: 'Open connections over the HTTP fallback (Server-Sent Events + POST), counted in confab_connections too', registers, collect() { this.set(self.fallbackConnections); } });
    new Gauge({ name: 'confab_rooms', help: 'Rooms with members on this node', registers, collect() { this.set(getRooms()); } });
    new Gauge({ name: 'confab_room_cache_bytes', help: "Bytes held by the rooms' encoded message caches on this node (bounded by CONFAB_CACHE_BYTES)", registers, collect() { this.set(getCacheBytes()); } });
    const counter = (name: string, help: string, read: () => number) => {
      let seen = 0;
      new Counter({ name, help, registers, collect() { const v = read(); this.inc(v - seen); seen = v; } });
    };
    counter('confab_messages_in_total', 'Messages accepted from clients and the publish API', () => self.messagesIn);
    counter('confab_messages_out_total', 'Message frames delivered to local sockets', () => self.messagesOut);
    counter('confab_send_buffer_drops_total', 'Connections closed because their send buffer was full', () => self.sendBufferDrops);
    counter('confab_unhandled_rejections_total', 'Promise rejections nobody handled (each one is a bug; see the log)', () => processFaults.unhandledRejections);
    const busCounter = (name: string, help: string, read: (t: BusTraffic, dir: 'in' | 'out') => { room: number; ctl: number }) => {
      const seen = new Map<string, number>();
      new Counter({
        name,
        help,
        labelNames: ['dir', 'class'],
        registers,
        collect() {
          const t = getBusTraffic();
          if (!t) return;
          for (const dir of ['in', 'out'] as const) {
            const v = read(t, dir);
            for (const cls of ['room', 'ctl'] as const) {
              const k = `${dir}:${cls}`;
              this.inc({ dir, class: cls }, v[cls] - (seen.get(k) ?? 0));
              seen.set(k, v[cls]);
            }
          }
        },
      });
    };
    busCounter('confab_bus_bytes_total', 'Payload bytes this node sent to and received from the bus, by direction and subject class (room: room.<name>; ctl: presence, usage, auth)', (t, d) => (d === 'in' ? t.inBytes : t.outBytes));
    busCounter('confab_bus_messages_total', 'Payloads this node sent to and received from the bus, by direction and subject class', (t, d) => (d === 'in' ? t.inMsgs : t.outMsgs));
    const seenUsage = { send: 0, receive: 0 };
    new Counter({
      name: 'confab_usage_report_failures_total',
      help: 'Usage reports between nodes (per-user limits across nodes, ctl.usage) this node could not send (the bus down or refusing) or could not read (a malformed report), by direction',
      labelNames: ['direction'],
      registers,
      collect() {
        for (const d of ['send', 'receive'] as const) {
          this.inc({ direction: d }, self.usageReportFailures[d] - seenUsage[d]);
          seenUsage[d] = self.usageReportFailures[d];
        }
      },
    });
    this.errors = new Counter({ name: 'confab_errors_total', help: 'Typed errors sent to clients, by code', labelNames: ['code'], registers });
    this.closes = new Counter({ name: 'confab_closes_total', help: 'Connections closed by the server, by code', labelNames: ['code'], registers });
    this.refusals = new Counter({ name: 'confab_refusals_total', help: 'Connections and upgrades refused by the edge and per-user budgets, by code and kind (http, ws)', labelNames: ['code', 'what'], registers });
    this.publishLatency = new Histogram({
      name: 'confab_publish_latency_seconds',
      help: 'From a publish received to stored and fanned out',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
  }
}
