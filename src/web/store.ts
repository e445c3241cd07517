/**
 * What the page knows per room: the timeline (messages and notices, oldest first), members,
 * typers, unread and mention counts, and whether older history is left on the server. The last
 * messages of each room are cached so a reload shows the conversation at once; the cache is
 * serialized at most once a second (and when the page is hidden), never per message.
 */
import type { ChatMessage } from '../client/index.js';

export type TimelineItem =
  | { key: number; kind: 'msg'; m: ChatMessage }
  | { key: number; kind: 'notice'; text: string; cls: 'notice' | 'gap' }
  /** Offsets from..to were skipped by a capped resume; the history can still bring them. */
  | { key: number; kind: 'missed'; from: number; to: number };

export interface RoomView {
  name: string;
  items: TimelineItem[];
  members: Map<string, string>;
  /** Room size across the cluster from the server (the member list of a big room is capped). */
  count?: number;
  typers: Map<string, { handle: string; until: number }>;
  /** Messages from others that arrived while the room was not in view. */
  unread: number;
  /** Of those, how many mention this user. */
  mentions: number;
  /** Key of the first item that arrived unread ("new messages" marker), if any. */
  firstUnread?: number;
  /** False once the server said nothing older is left; undefined until asked. */
  more?: boolean;
  /** A history page is being fetched. */
  loading?: boolean;
}

export interface AlertView {
  m: ChatMessage;
  /** Page time it arrived (ms); its age shown is now − m.ts. */
  receivedAt: number;
  /** Replayed on join (sent while this user was away), not live. */
  missed: boolean;
}

const MAX_CACHED = 200;
/** Messages kept in memory per room; older ones are dropped (and can be paged in again from the server). */
export const MAX_ITEMS = 5000;
const TRIM_BY = 1000;
const MAX_ALERTS = 30;
const SAVE_EVERY_MS = 1000;

let nextKey = 1;
export const newKey = (): number => nextKey++;

/** Does `text` mention `handle` (as @handle or the handle as a word, any case)? */
export function mentions(text: string, handle: string | undefined): boolean {
  if (!handle) return false;
  const h = handle.toLowerCase();
  const t = text.toLowerCase();
  let i = t.indexOf(h);
  while (i >= 0) {
    const before = i === 0 ? ' ' : t[i - 1]!;
    const after = t[i + h.length] ?? ' ';
    if (!/[\p{L}\p{N}_.-]/u.test(before) || before === '@') {
      if (!/[\p{L}\p{N}_-]/u.test(after)) return true;
    }
    i = t.indexOf(h, i + 1);
  }
  return false;
}

export interface StorageSink {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export class Store {
  readonly rooms = new Map<string, RoomView>();
  alerts: AlertView[] = [];
  dismissed = new Set<string>();
  readonly #prefix: string;
  readonly #storage: StorageSink;
  #dirty = new Set<string>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Called after items were dropped from the front of a room (the view shifts its window). */
  onTrim: (room: string, n: number) => void = () => {};

  constructor(prefix: string, storage: StorageSink) {
    this.#prefix = prefix;
    this.#storage = storage;
    this.alerts = this.#read<AlertView[]>('alerts', [])
      .filter((a) => a && a.m && typeof a.m.text === 'string' && typeof a.m.id === 'string')
      .map((a) => ({ m: a.m, receivedAt: typeof a.receivedAt === 'number' ? a.receivedAt : a.m.ts, missed: a.missed === true }));
    this.dismissed = new Set(this.#read<string[]>('dismissed', []).filter((x) => typeof x === 'string'));
  }

  room(name: string): RoomView {
    let r = this.rooms.get(name);
    if (!r) {
      const cached = this.#read<ChatMessage[]>(`cache:${name}`, []).filter((m) => m && typeof m.text === 'string' && typeof m.offset === 'number');
      r = { name, items: cached.map((m) => ({ key: newKey(), kind: 'msg' as const, m })), members: new Map(), typers: new Map(), unread: 0, mentions: 0 };
      this.rooms.set(name, r);
    }
    return r;
  }

  forget(name: string): void {
    this.rooms.delete(name);
    this.#dirty.delete(name);
    this.#remove(`cache:${name}`);
  }

  add(room: string, item: TimelineItem): void {
    const r = this.room(room);
    r.items.push(item);
    if (item.kind === 'msg') {
      r.typers.delete(item.m.from.user);
      this.#markDirty(room);
    }
    if (r.items.length > MAX_ITEMS + TRIM_BY) {
      r.items.splice(0, TRIM_BY);
      r.more = true;
      this.onTrim(room, TRIM_BY);
    }
  }

  /** Older messages from the server, oldest first, all older than what the room holds (or at a `missed` marker). */
  prepend(room: string, msgs: ChatMessage[], at = 0): TimelineItem[] {
    const r = this.room(room);
    const have = new Set(r.items.map((i) => (i.kind === 'msg' ? i.m.offset : -1)));
    const items = msgs.filter((m) => !have.has(m.offset)).map((m) => ({ key: newKey(), kind: 'msg' as const, m }));
    r.items.splice(at, 0, ...items);
    return items;
  }

  /** History was reset: the cached messages belong to an old epoch. */
  clearMessages(room: string): void {
    const r = this.room(room);
    r.items = [];
    r.more = undefined;
    this.#markDirty(room);
  }

  addAlert(m: ChatMessage, missed: boolean): AlertView | undefined {
    if (this.alerts.some((a) => a.m.id === m.id && a.m.from.user === m.from.user)) return undefined;
    const a = { m, receivedAt: Date.now(), missed };
    this.alerts.unshift(a);
    this.alerts.sort((x, y) => y.m.ts - x.m.ts);
    if (this.alerts.length > MAX_ALERTS) this.alerts.length = MAX_ALERTS;
    this.#markDirty('\u0000alerts');
    return a;
  }

  dismiss(ids: string[]): void {
    for (const id of ids) this.dismissed.add(id);
    const known = new Set(this.alerts.map((a) => a.m.id));
    this.dismissed = new Set([...this.dismissed].filter((id) => known.has(id)));
    this.#markDirty('\u0000alerts');
  }

  /** Write what changed now (also called when the page is hidden). */
  save(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const name of this.#dirty) {
      if (name === '\u0000alerts') {
        this.#write('alerts', this.alerts);
        this.#write('dismissed', [...this.dismissed]);
        continue;
      }
      const r = this.rooms.get(name);
      if (!r) continue;
      const msgs: ChatMessage[] = [];
      for (let i = r.items.length - 1; i >= 0 && msgs.length < MAX_CACHED; i--) {
        const it = r.items[i]!;
        if (it.kind === 'msg') msgs.push(it.m);
      }
      this.#write(`cache:${name}`, msgs.reverse());
    }
    this.#dirty.clear();
  }

  #markDirty(name: string): void {
    this.#dirty.add(name);
    this.#timer ??= setTimeout(() => this.save(), SAVE_EVERY_MS);
  }

  #read<T>(key: string, fallback: T): T {
    try {
      const raw = this.#storage.getItem(`${this.#prefix}:${key}`);
      if (raw === null) return fallback;
      const v = JSON.parse(raw) as unknown;
      return Array.isArray(v) ? (v as T) : fallback;
    } catch {
      return fallback;
    }
  }
  #write(key: string, v: unknown): void {
    try {
      this.#storage.setItem(`${this.#prefix}:${key}`, JSON.stringify(v));
    } catch {
      /* full: the page still shows it */
    }
  }
  #remove(key: string): void {
    try {
      this.#storage.removeItem(`${this.#prefix}:${key}`);
    } catch {
      /* ignore */
    }
  }
}

export function memberList(r: RoomView): { id: string; handle: string }[] {
  return [...r.members].map(([id, handle]) => ({ id, handle })).sort((a, b) => a.handle.localeCompare(b.handle));
}
