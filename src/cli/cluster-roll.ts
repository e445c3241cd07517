/**
 * Zero-downtime rolling restart of gateways behind HAProxy, one at a time:
 *   1. `set server <b>/<s> state drain` through the runtime API (no new connections to it);
 *   2. SIGTERM the gateway: it fails /readyz, then moves its clients (close 4000 with a
 *      retry hint), finishes in-flight publishes and exits (bounded; SIGKILL after the timeout);
 *   3. start the replacement on the same port and wait for /readyz 200;
 *   4. `set server … state ready` and wait until HAProxy reports it UP; then the next one.
 * Used by `confab cluster roll` and by the R3 test, with any process launcher.
 */
import { httpStatus, until } from './cluster-procs.js';
import type { HaproxyAdmin } from '../testkit/haproxy.js';

/** One gateway to roll. */
export interface RollTarget {
  /** HAProxy server name (stable across restarts). */
  name: string;
  /** http://127.0.0.1:PORT of the gateway (same after the restart). */
  url: string;
  /** The region's HAProxy runtime API. */
  admin: HaproxyAdmin;
  /** Send SIGTERM to the running process. */
  terminate(): void;
  /** Resolves when the running process has exited; `killAfterMs` later it is SIGKILLed. */
  waitExit(killAfterMs: number): Promise<void>;
  /** Start the replacement on the same port (resolve once spawned; readiness is polled here). */
  restart(): Promise<void>;
  /** Text for an error message when the replacement does not come up (e.g. its log tail). */
  diagnostics?(): string;
}

export type RollEvent =
  | { type: 'drain'; name: string; at: number }
  | { type: 'sigterm'; name: string; at: number }
  | { type: 'unready'; name: string; at: number; status: number }
  | { type: 'exited'; name: string; at: number }
  | { type: 'started'; name: string; at: number }
  | { type: 'ready'; name: string; at: number }
  | { type: 'up'; name: string; at: number };

export interface RollOptions {
  onEvent?: (e: RollEvent) => void;
  /** Max time for a gateway to exit after SIGTERM before SIGKILL (≥ its CONFAB_SHUTDOWN_TIMEOUT_MS). */
  exitTimeoutMs?: number;
  /** Max time for the replacement to answer /readyz 200, and for HAProxy to see it UP. */
  readyTimeoutMs?: number;
}

/** Error from a roll step; the roll stops at the failing gateway (the others keep running). */
export class RollError extends Error {
  constructor(readonly target: string, readonly step: string, message: string, options?: { cause?: unknown }) {
    super(`roll ${target}: ${step}: ${message}`, options);
    this.name = 'RollError';
  }
}

async function step<T>(t: RollTarget, name: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    const diag = t.diagnostics?.();
    throw new RollError(t.name, name, `${(e as Error).message}${diag ? `\n${diag}` : ''}`, { cause: e });
  }
}

/** Roll one gateway (steps 1-4 above). */
export async function rollOne(t: RollTarget, o: RollOptions = {}): Promise<void> {
  const emit = o.onEvent ?? (() => {});
  const readyTimeoutMs = o.readyTimeoutMs ?? 30_000;
  const exitTimeoutMs = o.exitTimeoutMs ?? 25_000;
  await step(t, 'drain in HAProxy', async () => {
    await t.admin.setState(t.name, 'drain');
    await t.admin.waitStatus(t.name, (s) => s.status.startsWith('DRAIN'), 5000, 'DRAIN');
  });
  emit({ type: 'drain', name: t.name, at: Date.now() });
  t.terminate();
  emit({ type: 'sigterm', name: t.name, at: Date.now() });
  // readiness must fail before the node closes anything; watch it (a refused connection counts as failed)
  let exited = false;
  const exit = t.waitExit(exitTimeoutMs).then(() => {
    exited = true;
  });
  let unready = 0;
  await step(t, 'readiness to fail', () =>
    until(async () => {
      unready = exited ? 0 : await httpStatus(`${t.url}/readyz`, 500);
      return unready !== 200;
    }, `${t.url}/readyz to fail`, exitTimeoutMs, 20),
  );
  emit({ type: 'unready', name: t.name, at: Date.now(), status: unready });
  await step(t, 'exit', async () => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise((_, rej) => (timer = setTimeout(() => rej(new Error(`still running ${exitTimeoutMs + 5000} ms after SIGTERM`)), exitTimeoutMs + 5000)));
    try {
      await Promise.race([exit, late]);
    } finally {
      clearTimeout(timer);
    }
  });
  emit({ type: 'exited', name: t.name, at: Date.now() });
  await step(t, 'start the replacement', () => t.restart());
  emit({ type: 'started', name: t.name, at: Date.now() });
  await step(t, 'replacement /readyz', () => until(async () => (await httpStatus(`${t.url}/readyz`)) === 200, `${t.url}/readyz 200`, readyTimeoutMs, 50));
  emit({ type: 'ready', name: t.name, at: Date.now() });
  await step(t, 'enable in HAProxy', async () => {
    await t.admin.setState(t.name, 'ready');
    await t.admin.waitStatus(t.name, (s) => s.status === 'UP', readyTimeoutMs, 'UP');
  });
  emit({ type: 'up', name: t.name, at: Date.now() });
}

/** Roll every target, strictly one at a time, in the given order. */
export async function rollGateways(targets: RollTarget[], o: RollOptions = {}): Promise<void> {
  for (const t of targets) await rollOne(t, o);
}
