/**
 * At most one of a repeating event per interval: for a log line that an outage repeats many times a
 * second (a broker's connection errors), so it can be a warning without flooding the log. Counts
 * what it held back, for the next line that passes to report.
 */
export class Throttle {
  #next = 0;
  #held = 0;

  constructor(readonly everyMs: number) {}

  /** Whether this occurrence passes; when it does, `held` is how many were held back since the last one. */
  pass(now = Date.now()): { held: number } | undefined {
    if (now < this.#next) {
      this.#held++;
      return undefined;
    }
    this.#next = now + this.everyMs;
    const held = this.#held;
    this.#held = 0;
    return { held };
  }
}
