import { type StorageLike, readJson, writeJson } from './storage.js';

/**
 * Where an unacknowledged message is:
 * - `queued`: waiting to be sent (new, refused for a passing reason, or in flight on a connection that ended);
 * - `sent`: written on the current connection and not answered yet (in flight): never sent again
 *   on this connection; an `ack` removes it (acked), a passing refusal makes it `queued` again, and so
 *   does a new connection.
 * Both are unacknowledged and both are persisted; storage does not keep the state (a reload is a new
 * connection: everything read back is `queued`).
 */
export type OutboxState = 'queued' | 'sent';

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
  /** In memory only (see OutboxState); entries given to `add` start `queued` whatever this says. */
  state?: OutboxState;
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
 * The ordered list of unacknowledged messages, persisted after every change of its content, so
 * that what a user sends while offline survives a reload (G4). Order is send order. Each entry is
 * `queued` or `sent` (see OutboxState); an acknowledged entry is removed.
 */
export class Outbox {
  readonly #storage: StorageLike;
  readonly #key: string;
  #entries: (OutboxEntry & { state: OutboxState })[];

  constructor(storage: StorageLike, key: string) {
    this.#storage = storage;
    this.#key = key;
    this.#entries = readJson(storage, key, [], isEntryList).map((e) => ({ id: e.id, kind: e.kind, room: e.room, text: e.text, createdAt: e.createdAt, state: 'queued' as const }));
  }

  /** Entries in send order (copies, with their state). */
  list(): (OutboxEntry & { state: OutboxState })[] {
    return this.#entries.map((e) => ({ ...e }));
  }
  get size(): number {
    return this.#entries.length;
  }
  get(id: string): (OutboxEntry & { state: OutboxState }) | undefined {
    const e = this.#entries.find((x) => x.id === id);
    return e ? { ...e } : undefined;
  }
  /** The state of an entry, or undefined when it is not in the outbox (acknowledged or dropped). */
  stateOf(id: string): OutboxState | undefined {
    return this.#entries.find((x) => x.id === id)?.state;
  }
  /** Entries in flight (`sent`), optionally of one room. */
  inFlight(room?: string): number {
    let n = 0;
    for (const e of this.#entries) if (e.state === 'sent' && (room === undefined || e.room === room)) n++;
    return n;
  }
  add(entry: OutboxEntry): void {
    if (this.#entries.some((e) => e.id === entry.id)) return;
    this.#entries.push({ id: entry.id, kind: entry.kind, room: entry.room, text: entry.text, createdAt: entry.createdAt, state: 'queued' });
    this.#save();
  }
  /** queued → sent (written on the current connection). False when the entry is not queued. */
  markSent(id: string): boolean {
    const e = this.#entries.find((x) => x.id === id);
    if (!e || e.state !== 'queued') return false;
    e.state = 'sent';
    return true;
  }
  /** sent → queued (refused for a passing reason: it goes out again later). False when the entry is not in flight. */
  markQueued(id: string): boolean {
    const e = this.#entries.find((x) => x.id === id);
    if (!e || e.state !== 'sent') return false;
    e.state = 'queued';
    return true;
  }
  /** Every `sent` entry becomes `queued` (the connection they were in flight on ended); returns how many. */
  requeueAll(): number {
    let n = 0;
    for (const e of this.#entries)
      if (e.state === 'sent') {
        e.state = 'queued';
        n++;
      }
    return n;
  }
  /** Remove an entry (acked, or dropped); returns it, or undefined when it was not there. */
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
    } else writeJson(this.#storage, this.#key, this.#entries.map(({ id, kind, room, text, createdAt }) => ({ id, kind, room, text, createdAt })));
  }
}
