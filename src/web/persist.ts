/**
 * Write-behind storage for the page: reads see the latest value at once, writes reach
 * localStorage at most once per `intervalMs` (one flush writes every key changed since the
 * last), and on `pagehide`/`visibilitychange` to hidden. Under a flood of messages the room
 * positions and the message cache are written a few times a second instead of once per message.
 * Keys matching `immediate` (the outbox: what the user typed must survive a crash) are written through.
 */
import type { StorageLike } from '../client/index.js';

export class BatchedStorage implements StorageLike {
  readonly #base: Storage | undefined;
  readonly #intervalMs: number;
  readonly #immediate: (key: string) => boolean;
  /** Pending writes: a string to set, null to remove. */
  #dirty = new Map<string, string | null>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** localStorage.setItem/removeItem calls so far (the flood test reads it). */
  writes = 0;

  constructor(base: Storage | undefined, opts: { intervalMs?: number; immediate?: (key: string) => boolean } = {}) {
    this.#base = base;
    this.#intervalMs = opts.intervalMs ?? 1000;
    this.#immediate = opts.immediate ?? (() => false);
    if (typeof addEventListener === 'function') {
      addEventListener('pagehide', () => this.flush());
      addEventListener('visibilitychange', () => {
        if (document.visibilityState === 'hidden') this.flush();
      });
    }
  }

  getItem(key: string): string | null {
    if (this.#dirty.has(key)) return this.#dirty.get(key) ?? null;
    try {
      return this.#base?.getItem(key) ?? null;
    } catch {
      return null;
    }
  }

  setItem(key: string, value: string): void {
    this.#put(key, String(value));
  }

  removeItem(key: string): void {
    this.#put(key, null);
  }

  /** Write everything pending now. */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const pending = this.#dirty;
    this.#dirty = new Map();
    for (const [k, v] of pending) this.#write(k, v);
  }

  #put(key: string, value: string | null): void {
    if (this.#immediate(key)) {
      this.#dirty.delete(key);
      this.#write(key, value);
      return;
    }
    this.#dirty.set(key, value);
    this.#timer ??= setTimeout(() => this.flush(), this.#intervalMs);
  }

  #write(key: string, value: string | null): void {
    this.writes++;
    try {
      if (value === null) this.#base?.removeItem(key);
      else this.#base?.setItem(key, value);
    } catch {
      /* full or blocked: the page keeps the value in memory for this visit */
    }
  }
}
