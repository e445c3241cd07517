/**
 * Processes known only by PID (e.g. from a state file written by another
 * process): is it alive, what runs under that PID, signal it only if it is
 * still the command we started (a PID can be reused), wait until it is gone
 * with SIGKILL after a bound.
 */
import { readFileSync } from 'node:fs';

/** Markers that identify each kind of process in /proc/PID/cmdline. */
export const MARKERS = {
  gateway: ['confab', 'start'],
  haproxy: ['haproxy'],
  nats: ['nats-server'],
} as const;

/** Whether a PID is alive (signal 0). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Command line of a PID from /proc, '' when unknown. */
export function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

/**
 * Send `signal` to `pid` only if its command line contains every `marker`
 * (guards against a PID reused by an unrelated process). Returns whether it was sent.
 */
export function signalIfOurs(pid: number, markers: readonly string[], signal: NodeJS.Signals): boolean {
  if (!alive(pid)) return false;
  const cl = cmdline(pid);
  if (cl !== '' && !markers.every((m) => cl.includes(m))) return false;
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

function isZombie(pid: number): boolean {
  try {
    return /^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** Wait until `pid` is gone (bounded); SIGKILL it (if still ours) when `killAfterMs` passes. */
export async function waitGone(pid: number, markers: readonly string[], killAfterMs: number, timeoutMs = killAfterMs + 5000): Promise<boolean> {
  const start = Date.now();
  let killed = false;
  while (Date.now() - start < timeoutMs) {
    if (!alive(pid) || isZombie(pid)) return true;
    if (!killed && Date.now() - start > killAfterMs) {
      killed = true;
      signalIfOurs(pid, markers, 'SIGKILL');
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return !alive(pid);
}

/** The last lines of a log file (for error messages). */
export function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}
