/**
 * The message list of the room in view: the page's only scroller. It renders a window of the
 * room's timeline (at most MAX_DOM items, so a room of thousands of messages costs the same as
 * one of three hundred), opens at the newest message, keeps the reader's position while they
 * read older messages (more of the timeline, then older history from the server, is added at
 * the top as they scroll), shows a "new messages" marker and a jump button when messages arrive
 * below, and groups consecutive messages of one sender, with date separators. New messages are
 * added once per animation frame, however fast they arrive.
 */
import type { ChatMessage } from '../client/index.js';
import { dayKey, dayLabel, el, linkify, timeEl } from './dom.js';
import { mentions, type RoomView, type TimelineItem } from './store.js';

/** Most items in the DOM at once. */
export const MAX_DOM = 300;
const CHUNK = 100;
const NEAR_PX = 150;
const GROUP_MS = 5 * 60_000;

export interface TimelineHooks {
  /** This user's id and handle (own messages, mentions). */
  me(): { id?: string; handle?: string };
  /** The list reached the top of what the page holds: fetch older history if there is any. */
  needOlder(room: RoomView): void;
  /** Fetch the messages a capped resume skipped (the `missed` marker came into view or was clicked). */
  loadMissed(room: RoomView, item: Extract<TimelineItem, { kind: 'missed' }>): void;
  /** The reader is at the bottom (unread cleared) or left it. */
  atBottomChanged(atBottom: boolean): void;
}

/** Is there a message of the same day shortly before item i (notices in between do not count)? */
function sameDayBefore(items: TimelineItem[], i: number, ts: number): boolean {
  for (let j = i - 1; j >= 0 && j >= i - 20; j--) {
    const it = items[j]!;
    if (it.kind === 'msg') return dayKey(it.m.ts) === dayKey(ts);
  }
  return false;
}

export class Timeline {
  readonly list: HTMLElement;
  readonly jump: HTMLButtonElement;
  readonly #hooks: TimelineHooks;
  #room: RoomView | undefined;
  #lo = 0;
  #hi = 0;
  #frame = 0;
  #scrollFrame = 0;
  #atBottom = true;
  /** Messages below the window or below the view that arrived since the reader scrolled up. */
  #below = 0;
  /**
   * The room's item count once every item so far was accounted for (shown, or counted in #below):
   * what lies beyond it at the next flush arrived since. Not #hi: the window also ends above the
   * newest items when older history pushed them out of it, and those are not new.
   */
  #known = 0;

  constructor(list: HTMLElement, jump: HTMLButtonElement, hooks: TimelineHooks) {
    this.list = list;
    this.jump = jump;
    this.#hooks = hooks;
    list.addEventListener('scroll', () => {
      if (this.#scrollFrame) return;
      this.#scrollFrame = requestAnimationFrame(() => {
        this.#scrollFrame = 0;
        this.#onScroll();
      });
    }, { passive: true });
    jump.addEventListener('click', () => this.toBottom());
    // a smaller window (a phone keyboard opening, a rotation) keeps a reader at the bottom there
    new ResizeObserver(() => {
      if (this.#atBottom && this.#room) this.list.scrollTop = this.list.scrollHeight;
    }).observe(list);
  }

  get room(): RoomView | undefined {
    return this.#room;
  }
  get atBottom(): boolean {
    return this.#atBottom;
  }
  /** Items of the room currently in the DOM (for tests and the flood check). */
  get window(): [number, number] {
    return [this.#lo, this.#hi];
  }

  /** Show a room (or nothing), at its newest message. */
  show(room: RoomView | undefined, emptyText = 'Join a room to start chatting.'): void {
    this.#room = room;
    this.#below = 0;
    this.#known = room?.items.length ?? 0;
    cancelAnimationFrame(this.#frame);
    this.#frame = 0;
    if (!room) {
      this.#lo = this.#hi = 0;
      this.list.replaceChildren(el('li', { class: 'notice' }, emptyText));
      this.#setJump();
      return;
    }
    this.#hi = room.items.length;
    this.#lo = Math.max(0, this.#hi - CHUNK * 2);
    this.#renderAll();
    this.list.scrollTop = this.list.scrollHeight;
    this.#setAtBottom(true);
    this.#setJump();
    if (this.#lo === 0) this.#maybeOlder();
  }

  /** New items were added at the end of the room in view: render them on the next frame. */
  appended(): void {
    if (this.#frame || !this.#room) return;
    this.#frame = requestAnimationFrame(() => {
      this.#frame = 0;
      this.#flushNew();
    });
  }

  /** Items were inserted at index `at` (older history, missed messages): render again, keeping the reader's place. */
  inserted(at: number, n: number): void {
    if (this.#room && at <= this.#known) this.#known += n;
    if (!this.#room || n === 0 || at > this.#hi) return;
    if (at < this.#lo || (at === this.#lo && this.#lo > 0)) {
      this.#lo += n;
      this.#hi += n;
    } else {
      this.#hi += n;
      if (this.#hi - this.#lo > MAX_DOM && at === this.#lo) this.#hi = this.#lo + MAX_DOM;
    }
    this.#preserve(() => this.#renderAll());
  }

  /** `n` items were dropped from the front of the room in view. */
  trimmed(n: number): void {
    if (!this.#room) return;
    this.#known = Math.max(0, this.#known - n);
    this.#lo = Math.max(0, this.#lo - n);
    this.#hi = Math.max(this.#lo, this.#hi - n);
    this.#preserve(() => this.#renderAll());
  }

  /** Render again in place (e.g. a `missed` marker changed). */
  refresh(): void {
    if (!this.#room) return;
    this.#hi = Math.min(this.#hi, this.#room.items.length);
    this.#lo = Math.min(this.#lo, this.#hi);
    this.#preserve(() => this.#renderAll());
  }

  toBottom(): void {
    const r = this.#room;
    if (!r) return;
    if (this.#hi < r.items.length || this.#lo < r.items.length - MAX_DOM) {
      this.#hi = r.items.length;
      this.#lo = Math.max(0, this.#hi - CHUNK * 2);
      this.#renderAll();
    }
    this.list.scrollTop = this.list.scrollHeight;
    this.#below = 0;
    this.#setAtBottom(true);
    this.#setJump();
  }

  // ---- internals -----------------------------------------------------------------

  #flushNew(): void {
    const r = this.#room;
    if (!r) return;
    if (this.#hi >= r.items.length) {
      this.#known = r.items.length;
      return;
    }
    const wasBottom = this.#isAtBottom();
    this.list.querySelector('[data-testid="empty-room"]')?.remove();
    const fresh = r.items.length - this.#hi;
    const arrived = Math.max(0, r.items.length - this.#known);
    this.#known = r.items.length;
    if (wasBottom) {
      if (fresh > MAX_DOM) {
        this.toBottom();
        return;
      }
      const frag = document.createDocumentFragment();
      for (let i = this.#hi; i < r.items.length; i++) frag.append(this.#node(i));
      this.list.append(frag);
      this.#hi = r.items.length;
      const extra = this.#hi - this.#lo - MAX_DOM;
      if (extra > 0) this.#dropFront(extra);
      this.list.scrollTop = this.list.scrollHeight;
      this.#setAtBottom(true);
    } else {
      // reading older messages: fill the window, then only count
      const room = MAX_DOM - (this.#hi - this.#lo);
      const n = Math.min(room, fresh);
      if (n > 0) {
        const frag = document.createDocumentFragment();
        for (let i = this.#hi; i < this.#hi + n; i++) frag.append(this.#node(i));
        this.list.append(frag);
        this.#hi += n;
      }
      this.#below += arrived;
    }
    this.#setJump();
  }

  /** Remove n item nodes from the front (extra nodes such as "beginning of the room" go too). */
  #dropFront(n: number): void {
    let left = n;
    while (left > 0 && this.list.firstElementChild) {
      const e = this.list.firstElementChild as HTMLElement;
      if (e.dataset.key) left--;
      e.remove();
    }
    this.#lo += n;
  }

  #dropBack(n: number): void {
    let left = n;
    while (left > 0 && this.list.lastElementChild) {
      const e = this.list.lastElementChild as HTMLElement;
      if (e.dataset.key) left--;
      e.remove();
    }
    this.#hi -= n;
  }

  #renderAll(): void {
    const r = this.#room;
    if (!r) return;
    const frag = document.createDocumentFragment();
    for (let i = this.#lo; i < this.#hi; i++) frag.append(this.#node(i));
    if (r.items.length === 0) frag.append(el('li', { class: 'notice', 'data-testid': 'empty-room' }, `No messages in #${r.name} yet. Say hello!`));
    if (this.#lo === 0 && r.more !== false && r.items.some((i) => i.kind === 'msg')) {
      const btn = el('button', { type: 'button', class: 'link', 'data-testid': 'load-older' }, r.loading ? 'Loading older messages…' : 'Load older messages');
      btn.addEventListener('click', () => this.#hooks.needOlder(r));
      frag.prepend(el('li', { class: 'notice start' }, btn));
    }
    if (this.#lo === 0 && r.more === false && r.items.length > 0) frag.prepend(el('li', { class: 'notice start', 'data-testid': 'history-start' }, `This is the beginning of #${r.name}.`));
    this.list.replaceChildren(frag);
  }

  #isAtBottom(): boolean {
    const l = this.list;
    return l.scrollHeight - l.scrollTop - l.clientHeight < 40;
  }

  #setAtBottom(v: boolean): void {
    if (v) this.#below = 0;
    if (v !== this.#atBottom) {
      this.#atBottom = v;
      this.#hooks.atBottomChanged(v);
    } else if (v) this.#hooks.atBottomChanged(v);
  }

  #setJump(): void {
    const r = this.#room;
    const hidden = !r || (this.#atBottom && this.#hi >= r.items.length);
    this.jump.hidden = hidden;
    if (!hidden) this.jump.textContent = this.#below > 0 ? `↓ ${this.#below} new message${this.#below === 1 ? '' : 's'}` : '↓ Latest messages';
  }

  #onScroll(): void {
    const r = this.#room;
    if (!r) return;
    const l = this.list;
    if (l.scrollTop < NEAR_PX) {
      if (this.#lo > 0) {
        const n = Math.min(CHUNK, this.#lo);
        this.#preserve(() => {
          const frag = document.createDocumentFragment();
          for (let i = this.#lo - n; i < this.#lo; i++) frag.append(this.#node(i));
          // the first rendered item may now have a predecessor (grouping, date separator)
          const first = this.list.querySelector('[data-key]');
          this.list.prepend(frag);
          if (first) first.replaceWith(this.#node(this.#lo));
          this.#lo -= n;
          const extra = this.#hi - this.#lo - MAX_DOM;
          if (extra > 0) this.#dropBack(extra);
        });
      }
      if (this.#lo === 0) this.#maybeOlder();
    }
    if (l.scrollHeight - l.scrollTop - l.clientHeight < NEAR_PX && this.#hi < r.items.length) {
      const n = Math.min(CHUNK, r.items.length - this.#hi);
      this.#preserve(() => {
        const frag = document.createDocumentFragment();
        for (let i = this.#hi; i < this.#hi + n; i++) frag.append(this.#node(i));
        this.list.append(frag);
        this.#hi += n;
        const extra = this.#hi - this.#lo - MAX_DOM;
        if (extra > 0) this.#dropFront(extra);
      });
    }
    const bottom = this.#isAtBottom() && this.#hi >= r.items.length;
    this.#setAtBottom(bottom);
    this.#setJump();
    const missed = this.list.querySelector<HTMLElement>('[data-testid="missed"]');
    if (missed && !r.loading) {
      const top = missed.offsetTop - l.offsetTop;
      if (top < l.scrollTop + l.clientHeight && top + missed.offsetHeight > l.scrollTop) missed.querySelector('button')?.click();
    }
  }

  #maybeOlder(): void {
    const r = this.#room;
    if (r && this.#lo === 0 && r.more !== false && !r.loading) this.#hooks.needOlder(r);
  }

  /** Run a DOM change without moving what the reader sees. */
  #preserve(fn: () => void): void {
    const l = this.list;
    const top = l.scrollTop;
    let anchor: HTMLElement | undefined;
    for (const c of l.children) {
      const e = c as HTMLElement;
      if (e.dataset.key && e.offsetTop + e.offsetHeight > top + l.offsetTop) {
        anchor = e;
        break;
      }
    }
    const key = anchor?.dataset.key;
    const delta = anchor ? anchor.offsetTop - top : 0;
    fn();
    const again = key ? l.querySelector<HTMLElement>(`[data-key="${key}"]`) : null;
    if (again) l.scrollTop = again.offsetTop - delta;
  }

  #node(i: number): HTMLElement {
    const r = this.#room!;
    const item = r.items[i]!;
    const prev = i > 0 ? r.items[i - 1] : undefined;
    const li = this.#itemNode(item, prev);
    li.dataset.key = String(item.key);
    if (r.firstUnread === item.key) {
      li.classList.add('first-unread');
      li.prepend(el('div', { class: 'new-marker', 'data-testid': 'new-marker' }, el('span', {}, 'New messages')));
    }
    if (item.kind === 'msg' && !sameDayBefore(r.items, i, item.m.ts)) {
      const ts = item.m.ts;
      li.prepend(el('div', { class: 'day', 'data-testid': 'day' }, el('span', {}, dayLabel(ts))));
    }
    return li;
  }

  #itemNode(item: TimelineItem, prev: TimelineItem | undefined): HTMLElement {
    if (item.kind === 'notice') return el('li', { class: item.cls, 'data-testid': item.cls === 'gap' ? 'gap' : 'notice' }, item.text);
    if (item.kind === 'missed') {
      const r = this.#room!;
      const n = item.to - item.from + 1;
      const btn = el('button', { type: 'button', class: 'link' }, r.loading ? 'Loading…' : `Load ${n} earlier message${n === 1 ? '' : 's'}`);
      btn.addEventListener('click', () => {
        if (!r.loading) this.#hooks.loadMissed(r, item);
      });
      return el('li', { class: 'missed', 'data-testid': 'missed' }, `${n} message${n === 1 ? ' was' : 's were'} skipped while you were away. `, btn);
    }
    return this.#messageNode(item.m, prev);
  }

  #messageNode(m: ChatMessage, prev: TimelineItem | undefined): HTMLElement {
    const me = this.#hooks.me();
    const cont = prev?.kind === 'msg' && prev.m.from.user === m.from.user && m.ts - prev.m.ts < GROUP_MS && dayKey(prev.m.ts) === dayKey(m.ts);
    const mention = m.from.user !== me.id && mentions(m.text, me.handle);
    const cls = ['msg', cont ? 'cont' : '', m.from.user === me.id ? 'mine' : '', mention ? 'mention' : ''].filter(Boolean).join(' ');
    const text = el('div', { class: 'text', 'data-testid': 'message-text' }, ...linkify(m.text));
    const li = el('li', { class: cls, 'data-testid': 'message', 'data-offset': String(m.offset), 'data-id': m.id, 'data-room': m.room });
    if (cont) li.append(timeEl(m.ts, 'time side'), text);
    else li.append(el('div', { class: 'head' }, el('span', { class: 'from', 'data-testid': 'message-from' }, m.from.handle), timeEl(m.ts)), text);
    return li;
  }
}
