/**
 * File-descriptor budget of this process, read (never raised) from /proc on
 * Linux: each client holds one socket, and session requests a few more.
 */
import { readFileSync, readdirSync } from 'node:fs';

/** The soft "Max open files" limit of this process, or undefined where /proc is not available. */
export function fdLimit(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const soft = line?.split(/\s{2,}/)[1];
    if (!soft) return undefined;
    return soft === 'unlimited' ? Infinity : Number(soft);
  } catch {
    return undefined;
  }
}

/** File descriptors open in this process now, or undefined where /proc is not available. */
export function openFds(): number | undefined {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return undefined;
  }
}

/** Descriptors kept free beside the client sockets (session requests, logs, the runtime). */
export const FD_HEADROOM = 128;
