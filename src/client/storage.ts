/**
 * The key/value store the client persists its outbox and room positions in.
 * `localStorage` satisfies it in the browser; `MemoryStorage` is the default elsewhere.
 */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** In-memory storage (the default): survives reconnects, not process restarts. */
export class MemoryStorage implements StorageLike {
  #map = new Map<string, string>();
  getItem(key: string): string | null {
    return this.#map.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.#map.set(key, String(value));
  }
  removeItem(key: string): void {
    this.#map.delete(key);
  }
}

/** Read a JSON value; a missing, unreadable or corrupt entry gives the fallback. */
export function readJson<T>(storage: StorageLike, key: string, fallback: T, check: (v: unknown) => v is T): T {
  let raw: string | null;
  try {
    raw = storage.getItem(key);
  } catch {
    return fallback;
  }
  if (raw === null) return fallback;
  try {
    const v: unknown = JSON.parse(raw);
    return check(v) ? v : fallback;
  } catch {
    return fallback;
  }
}

/** Write a JSON value; a full or unavailable storage is ignored (the data stays in memory). */
export function writeJson(storage: StorageLike, key: string, value: unknown): boolean {
  try {
    storage.setItem(key, JSON.stringify(value));
    return true;
  } catch {
    return false;
  }
}
