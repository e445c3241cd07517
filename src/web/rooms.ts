/**
 * The room list (joined rooms with unread and mention counts), the directory of rooms in use
 * that this user has not joined (with member counts, from the server's `rooms` answer), and the
 * title badge: "(unread) confab", with "@n" when someone mentioned this user.
 */
import { byTestId, el } from './dom.js';
import type { Store } from './store.js';

export interface RoomListHooks {
  open(room: string): void;
}

export class RoomList {
  readonly #list = byTestId('room-list');
  readonly #dir = byTestId('directory');
  readonly #badge = byTestId('total-badge');
  readonly #hooks: RoomListHooks;
  #directory: { name: string; members: number }[] = [];
  #lastTitle = '';

  constructor(hooks: RoomListHooks) {
    this.#hooks = hooks;
  }

  setDirectory(rooms: { name: string; members: number }[]): void {
    this.#directory = rooms;
  }

  render(joined: string[], current: string | undefined, store: Store | undefined): void {
    this.#list.replaceChildren(
      ...joined.map((name) => {
        const r = store?.rooms.get(name);
        const unread = r && name !== current ? r.unread : 0;
        const ment = r && name !== current ? r.mentions : 0;
        const btn = el(
          'button',
          { type: 'button', 'data-room': name, ...(name === current ? { 'aria-current': 'page' } : {}) },
          el('span', { class: 'name' }, name),
          ...(ment ? [el('span', { class: 'badge mention', 'data-testid': 'room-mentions' }, `@${ment}`, el('span', { class: 'sr-only' }, ' mentioning you'))] : []),
          ...(unread ? [el('span', { class: 'badge', 'data-testid': 'room-unread' }, String(unread), el('span', { class: 'sr-only' }, ' unread'))] : []),
        );
        btn.addEventListener('click', () => this.#hooks.open(name));
        const cls = ['joined', name === current ? 'current' : '', unread ? 'unread' : ''].filter(Boolean).join(' ');
        return el('li', { class: cls, 'data-testid': 'room-item', 'data-room': name, 'data-joined': 'true', 'data-unread': String(unread), 'data-mentions': String(ment) }, btn);
      }),
    );
    const others = this.#directory.filter((d) => !joined.includes(d.name)).sort((a, b) => b.members - a.members || a.name.localeCompare(b.name));
    this.#dir.replaceChildren(
      ...(others.length === 0
        ? [el('li', { class: 'hint' }, 'No other rooms in use right now.')]
        : others.map((d) => {
            const btn = el(
              'button',
              { type: 'button', 'data-room': d.name },
              el('span', { class: 'sr-only' }, 'Join '),
              el('span', { class: 'name' }, d.name),
              el('span', { class: 'count' }, `${d.members} online`),
            );
            btn.addEventListener('click', () => this.#hooks.open(d.name));
            return el('li', { 'data-testid': 'directory-item', 'data-room': d.name, 'data-members': String(d.members) }, btn);
          })),
    );
    this.#title(joined, current, store);
  }

  #title(joined: string[], current: string | undefined, store: Store | undefined): void {
    let unread = 0;
    let ment = 0;
    for (const name of joined) {
      const r = store?.rooms.get(name);
      if (!r) continue;
      unread += r.unread;
      ment += r.mentions;
    }
    const parts = [unread ? String(unread) : '', ment ? `@${ment}` : ''].filter(Boolean);
    const title = `${parts.length ? `(${parts.join(' · ')}) ` : ''}${current ? `#${current} · ` : ''}confab`;
    if (title !== this.#lastTitle) document.title = this.#lastTitle = title;
    const otherUnread = joined.reduce((n, name) => n + (name === current ? 0 : (store?.rooms.get(name)?.unread ?? 0)), 0);
    this.#badge.hidden = otherUnread === 0;
    this.#badge.textContent = String(otherUnread);
  }
}
