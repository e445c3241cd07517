/** Poll a condition until it holds or a bounded timeout passes (tests synchronise on conditions, not sleeps). */
export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<void> {
  const { timeoutMs = 10_000, intervalMs = 10, what = 'condition' } = opts;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Resolve with the first event value matching `pred`, or reject after a timeout. */
export function nextEvent<T>(
  subscribe: (fn: (v: T) => void) => () => void,
  pred: (v: T) => boolean = () => true,
  timeoutMs = 10_000,
  what = 'event',
): Promise<T> {
  return new Promise((resolve, reject) => {
    const off = subscribe((v) => {
      if (!pred(v)) return;
      clearTimeout(timer);
      off();
      resolve(v);
    });
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
  });
}
