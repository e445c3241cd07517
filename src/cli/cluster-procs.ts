/**
 * The restart policy of `confab cluster`'s supervisor. The processes
 * themselves (spawn, log files, PID checks, gateway launch, waits) are the
 * product module src/procs.
 */

/**
 * Restart policy of the supervisor: exponential backoff with full jitter. The
 * `attempt`-th consecutive restart (0-based) waits a uniformly random time in
 * [0, min(capMs, baseMs·2^attempt)]: 0.5 s, 1 s, 2 s, 4 s, 8 s, then 10 s ceilings.
 * A part that stayed up `stableMs` before it exited starts again at attempt 0.
 */
export const RESTART_POLICY = { baseMs: 500, capMs: 10_000, stableMs: 30_000 } as const;

export function restartDelayMs(attempt: number, policy: { baseMs: number; capMs: number } = RESTART_POLICY, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}
