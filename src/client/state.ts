/**
 * The client's connection state machine: every change goes through `transition`, checked against
 * one table. A change the table does not hold is a bug in the SDK and throws (tests catch it).
 *
 *   idle ──connect──▶ connecting ──welcome──▶ connected
 *                        │  ▲                    │
 *              dropped   ▼  │ retry / probe       ▼ dropped
 *                     reconnecting ◀─────────────┘
 *   any ──close()──▶ closed ──connect()──▶ connecting      any ──offline──▶ offline ──online──▶ connecting
 */
import type { ConnectionState } from './types.js';

/** From each state, the states it may change to. */
export const TRANSITIONS: Readonly<Record<ConnectionState, readonly ConnectionState[]>> = {
  idle: ['connecting', 'offline', 'closed'],
  connecting: ['connected', 'reconnecting', 'offline', 'closed'],
  connected: ['reconnecting', 'offline', 'closed'],
  reconnecting: ['connecting', 'offline', 'closed'],
  offline: ['connecting', 'closed'],
  closed: ['connecting', 'offline'],
};

export class IllegalTransition extends Error {
  constructor(
    readonly from: ConnectionState,
    readonly to: ConnectionState,
  ) {
    super(`confab client: no transition from ${from} to ${to}`);
    this.name = 'IllegalTransition';
  }
}

/** True when the table allows `from` → `to`. */
export function allowed(from: ConnectionState, to: ConnectionState): boolean {
  return TRANSITIONS[from].includes(to);
}

/** The state after `from` → `to`: `to`, or an IllegalTransition thrown when the table does not allow it. */
export function transition(from: ConnectionState, to: ConnectionState): ConnectionState {
  if (!allowed(from, to)) throw new IllegalTransition(from, to);
  return to;
}
