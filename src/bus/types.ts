/**
 * Bus: fan-out of messages between gateway nodes. Fire-and-forget, at-most-once;
 * durability and order are History's job. Subjects are dot-separated tokens
 * (`room.<name>`, `ctl.presence`, …); an adapter may prefix them on the wire.
 */
export type BusStatus = 'up' | 'down';

export interface BusSubscription {
  /** Stop receiving. Idempotent. */
  unsubscribe(): void;
}

export type BusHandler = (data: Uint8Array) => void;

export interface Bus {
  /** Adapter name, e.g. "memory", "nats", "redis". */
  readonly kind: string;
  /** Current connection status. */
  readonly status: BusStatus;
  /** Listen for status changes; returns a function that removes the listener. */
  onStatus(listener: (status: BusStatus) => void): () => void;
  /**
   * Deliver `data` to every current subscriber of `subject` on every node, this one included.
   * Throws ConfabError('bus_unavailable') when the bus is down; never drops silently while up.
   */
  publish(subject: string, data: Uint8Array): void;
  /** Subscribe to one exact subject (no wildcards). Handlers for one subject see messages in publish order per publisher. */
  subscribe(subject: string, handler: BusHandler): BusSubscription;
  /** Resolve once earlier subscribe/publish calls have reached the broker (a no-op in-process). */
  flush(): Promise<void>;
  /** Number of subjects this node currently subscribes to (for interest tests and metrics). */
  subscriptionCount(): number;
  /** Release every subscription and per-instance resource, flush, disconnect. Idempotent. */
  close(): Promise<void>;
}

/** Subject helpers shared by every adapter, so all speak the same names. */
export const Subjects = {
  room: (room: string) => `room.${room}`,
  presence: 'ctl.presence',
  heartbeat: 'ctl.heartbeat',
  /** Per-user usage reports between nodes (gateway/user-limits.ts). */
  usage: 'ctl.usage',
} as const;
