/**
 * Zero-downtime rolling restart of gateways behind HAProxy, one at a time:
 *   1. `set server <b>/<s> state drain` through the runtime API (no new connections to it);
 *   2. SIGTERM the gateway: it fails /readyz, then moves its clients (close 4000 with a
 *      retry hint), finishes in-flight publishes and exits (bounded; SIGKILL after the timeout);
 *   3. start the replacement on the same port and wait for /readyz 200;
 *   4. `set server … state ready` and wait until HAProxy reports it UP; then the next one.
 * A gateway that is already down (crashed; `isDown()`) skips steps 1-2: it is
 * started, waited for and re-enabled. Step 1 accepts a server HAProxy already
 * shows DOWN or MAINT (it takes no new connections either: a DOWN server never
 * shows DRAIN). HAProxy's runtime API is polled, and a command is repeated while
 * its effect is not visible (HAProxy may itself be restarting).
 * Used by `confab cluster roll` and by the R3 test, with any process launcher.
 */
import type { AdminState, HaproxyAdmin, ServerStatus } from '../procs/haproxy.js';
import { httpStatus, waitFor } from '../procs/wait.js';

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
  /**
   * Called before anything is done to this target (e.g. mark it as being rolled so
   * that nothing restarts it behind the roll's back; wait for a start already under way).
   */
  begin?(): Promise<void> | void;
  /** Called when this target's roll is over (`ok` false when a step failed). */
  end?(ok: boolean): void;
  /** Whether no process of this target runs now (crashed): the roll then only starts it. */
  isDown?(): boolean;
}

export type RollEvent =
  | { type: 'down'; name: string; at: number }
  | { type: 'drain'; name: string; at: number; status: string }
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

/**
 * Set a server's admin state and wait until `done` holds for its status; the
 * command is sent again on every poll where `done` does not hold (idempotent), so
 * an HAProxy that restarted meanwhile (and forgot the state) gets it again.
 */
async function setAndWait(t: RollTarget, state: AdminState, done: (s: ServerStatus) => boolean, what: string, timeoutMs: number): Promise<string> {
  let last = '?';
  let error = '';
  let sent = false;
  await waitFor(
    async () => {
      try {
        if (sent) {
          const s = await t.admin.server(t.name);
          last = s.status;
          if (done(s)) return true;
        }
        // sent at least once (a DOWN status can hide any admin state), then again while not effective
        await t.admin.setState(t.name, state);
        sent = true;
        error = '';
      } catch (e) {
        last = '?';
        error = (e as Error).message;
      }
      return false;
    },
    { what: `HAProxy server ${t.name} ${what}`, timeoutMs, intervalMs: 50 },
  ).catch((e: Error) => {
    throw new Error(`${e.message} (last: ${last}${error ? `; ${error}` : ''})`, { cause: e });
  });
  return last;
}

/** HAProxy statuses in which a server gets no new connections: drained, or not in rotation at all. */
export const takesNoNewConnections = (s: ServerStatus): boolean => /^(DRAIN|DOWN|MAINT)/.test(s.status);

/** Roll one gateway (steps 1-4 above). */
export async function rollOne(t: RollTarget, o: RollOptions = {}): Promise<void> {
  const emit = o.onEvent ?? (() => {});
  const readyTimeoutMs = o.readyTimeoutMs ?? 30_000;
  const exitTimeoutMs = o.exitTimeoutMs ?? 25_000;
  let ok = false;
  try {
    await step(t, 'prepare', async () => t.begin?.());
    if (t.isDown?.()) {
      // crashed: nothing to drain or stop
      emit({ type: 'down', name: t.name, at: Date.now() });
    } else {
      await stopOne(t, emit, exitTimeoutMs);
    }
    await step(t, 'start the replacement', () => t.restart());
    emit({ type: 'started', name: t.name, at: Date.now() });
    await step(t, 'replacement /readyz', () =>
      waitFor(async () => (await httpStatus(`${t.url}/readyz`)) === 200, { what: `${t.url}/readyz 200`, timeoutMs: readyTimeoutMs, intervalMs: 50, abort: () => (t.isDown?.() ? 'the replacement exited' : undefined) }),
    );
    emit({ type: 'ready', name: t.name, at: Date.now() });
    await step(t, 'enable in HAProxy', () => setAndWait(t, 'ready', (s) => s.status === 'UP', 'UP', readyTimeoutMs));
    emit({ type: 'up', name: t.name, at: Date.now() });
    ok = true;
  } finally {
    t.end?.(ok);
  }
}

/** Steps 1-2: drain in HAProxy, SIGTERM, watch readiness fail, wait for the exit. */
async function stopOne(t: RollTarget, emit: (e: RollEvent) => void, exitTimeoutMs: number): Promise<void> {
  // 15 s: room for an HAProxy that is itself being restarted
  const status = await step(t, 'drain in HAProxy', () => setAndWait(t, 'drain', takesNoNewConnections, 'DRAIN (or DOWN/MAINT)', 15_000));
  emit({ type: 'drain', name: t.name, at: Date.now(), status });
  await step(t, 'SIGTERM', async () => t.terminate());
  emit({ type: 'sigterm', name: t.name, at: Date.now() });
  // readiness must fail before the node closes anything; watch it (a refused connection counts as failed)
  let exited = false;
  const exit = t.waitExit(exitTimeoutMs).then(() => {
    exited = true;
  });
  void exit.catch(() => undefined); // observed by the race below; not unhandled if an earlier step fails
  let unready = 0;
  await step(t, 'readiness to fail', () =>
    waitFor(async () => {
      unready = exited ? 0 : await httpStatus(`${t.url}/readyz`, 500);
      return unready !== 200;
    }, { what: `${t.url}/readyz to fail`, timeoutMs: exitTimeoutMs, intervalMs: 20 }),
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
}

/** Roll every target, strictly one at a time, in the given order. */
export async function rollGateways(targets: RollTarget[], o: RollOptions = {}): Promise<void> {
  for (const t of targets) await rollOne(t, o);
}
