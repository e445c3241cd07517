import { type StorageLike, readJson, writeJson } from './storage.js';

/** One message waiting for its acknowledgement. */
export interface OutboxEntry {
  /** Client-made id, the server's idempotency key (matches ID_RE). */
  id: string;
  kind: 'msg' | 'alert';
  /** Target room ('_alerts' for alerts). */
  room: string;
  text: string;
  /** Client time the user sent it (ms since the epoch). */
  createdAt: number;
}

function isEntry(v: unknown): v is OutboxEntry {
  if (typeof v !== 'object' || v === null) return false;
  const e = v as Record<string, unknown>;
  return (
    typeof e.id === 'string' &&
    (e.kind === 'msg' || e.kind === 'alert') &&
    typeof e.room === 'string' &&
    typeof e.text === 'string' &&
    typeof e.createdAt === 'number'
  );
}
function isEntryList(v: unknown): v is OutboxEntry[] {
  return Array.isArray(v) && v.every(isEntry);
}

/** A new client message id: random, 1–64 chars of [A-Za-z0-9_-]. */
export function newMessageId(): string {
  const c = (globalThis as { crypto?: Crypto }).crypto;
  if (c && typeof c.randomUUID === 'function') return c.randomUUID();
  const bytes = new Uint8Array(16);
  if (c && typeof c.getRandomValues === 'function') c.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * The ordered list of unacknowledged messages, persisted after every change, so
 * that what a user sends while offline survives a reload (G4). Order is send order.
 */
export class Outbox {
  readonly #storage: StorageLike;
  readonly #key: string;
  #entries: OutboxEntry[];

  constructor(storage: StorageLike, key: string) {
    this.#storage = storage;
    this.#key = key;
    this.#entries = readJson(storage, key, [], isEntryList);
  }

  /** Entries in send order (a copy). */
  list(): OutboxEntry[] {
    return [...this.#entries];
  }
  get size(): number {
    return this.#entries.length;
  }
  get(id: string): OutboxEntry | undefined {
    return this.#entries.find((e) => e.id === id);
  }
  add(entry: OutboxEntry): void {
    if (this.get(entry.id)) return;
    this.#entries.push(entry);
    this.#save();
  }
  /** Remove an entry; returns it, or undefined when it was not there. */
  remove(id: string): OutboxEntry | undefined {
    const i = this.#entries.findIndex((e) => e.id === id);
    if (i < 0) return undefined;
    const [e] = this.#entries.splice(i, 1);
    this.#save();
    return e;
  }
  /** Remove every entry for which `pred` holds; returns them. */
  removeWhere(pred: (e: OutboxEntry) => boolean): OutboxEntry[] {
    const gone = this.#entries.filter(pred);
    if (gone.length) {
      this.#entries = this.#entries.filter((e) => !pred(e));
      this.#save();
    }
    return gone;
  }
  #save(): void {
    if (this.#entries.length === 0) {
      try {
        this.#storage.removeItem(this.#key);
      } catch {
        /* storage unavailable: memory copy still holds */
      }
    } else writeJson(this.#storage, this.#key, this.#entries);
  }
}
