/**
 * What the page shows per room: the timeline (messages and notices), members, typers,
 * and the alerts list. Messages and alerts are cached in localStorage so a reload shows
 * the same conversation; the SDK resumes from its persisted positions after them.
 */
import type { ChatMessage, Member } from '../client/index.js';

export type TimelineItem = { kind: 'msg'; m: ChatMessage } | { kind: 'notice'; text: string; cls: 'notice' | 'gap' };

export interface RoomView {
  name: string;
  items: TimelineItem[];
  members: Map<string, string>;
  /** Room size across the cluster from the server (the member list of a big room is capped). */
  count?: number;
  typers: Map<string, { handle: string; until: number }>;
}

export interface AlertView {
  m: ChatMessage;
  /** How long after it was sent this page received it (ms). */
  agoMs: number;
}

const MAX_CACHED = 200;
const MAX_ITEMS = 500;
const MAX_ALERTS = 30;

export class Store {
  readonly rooms = new Map<string, RoomView>();
  alerts: AlertView[] = [];
  readonly #prefix: string;

  constructor(prefix: string) {
    this.#prefix = prefix;
    this.alerts = this.#read<AlertView[]>('alerts', []).filter((a) => a && a.m && typeof a.m.text === 'string');
  }

  room(name: string): RoomView {
    let r = this.rooms.get(name);
    if (!r) {
      const cached = this.#read<ChatMessage[]>(`cache:${name}`, []).filter((m) => m && typeof m.text === 'string');
      r = { name, items: cached.map((m) => ({ kind: 'msg', m })), members: new Map(), typers: new Map() };
      this.rooms.set(name, r);
    }
    return r;
  }

  forget(name: string): void {
    this.rooms.delete(name);
    this.#remove(`cache:${name}`);
  }

  addMessage(m: ChatMessage): void {
    const r = this.room(m.room);
    r.items.push({ kind: 'msg', m });
    if (r.items.length > MAX_ITEMS) r.items.splice(0, r.items.length - MAX_ITEMS);
    r.typers.delete(m.from.user);
    this.#saveRoom(r);
  }

  addNotice(room: string, text: string, cls: 'notice' | 'gap' = 'notice'): void {
    const r = this.room(room);
    r.items.push({ kind: 'notice', text, cls });
  }

  /** History was reset: the cached messages belong to an old epoch. */
  clearMessages(room: string): void {
    const r = this.room(room);
    r.items = [];
    this.#saveRoom(r);
  }

  addAlert(m: ChatMessage, agoMs: number): void {
    this.alerts.unshift({ m, agoMs });
    if (this.alerts.length > MAX_ALERTS) this.alerts.length = MAX_ALERTS;
    this.#write('alerts', this.alerts);
  }

  #saveRoom(r: RoomView): void {
    const msgs = r.items.filter((i): i is { kind: 'msg'; m: ChatMessage } => i.kind === 'msg').map((i) => i.m);
    this.#write(`cache:${r.name}`, msgs.slice(-MAX_CACHED));
  }

  #read<T>(key: string, fallback: T): T {
    try {
      const raw = localStorage.getItem(`${this.#prefix}:${key}`);
      if (raw === null) return fallback;
      const v = JSON.parse(raw) as unknown;
      return Array.isArray(v) ? (v as T) : fallback;
    } catch {
      return fallback;
    }
  }
  #write(key: string, v: unknown): void {
    try {
      localStorage.setItem(`${this.#prefix}:${key}`, JSON.stringify(v));
    } catch {
      /* full: the page still shows it */
    }
  }
  #remove(key: string): void {
    try {
      localStorage.removeItem(`${this.#prefix}:${key}`);
    } catch {
      /* ignore */
    }
  }
}

export function memberList(r: RoomView): Member[] {
  return [...r.members].map(([id, handle]) => ({ id, handle })).sort((a, b) => a.handle.localeCompare(b.handle));
}
