/**
 * The chat screen: the room on screen (timeline, members, typing line, outbox), the room list,
 * the alerts panel, the phone drawers, and the room actions (open, leave, refresh the directory).
 */
import { ROOM_RE, type ClientError } from '../client/index.js';
import { AlertsView } from './alerts.js';
import { byTestId, el, setError, show } from './dom.js';
import { loadMissed, loadOlder } from './paging.js';
import { RoomList } from './rooms.js';
import { app } from './state.js';
import { announce } from './status.js';
import { memberList } from './store.js';
import { Timeline } from './timeline.js';
import { ui } from './ui.js';

const CURRENT_KEY = 'confab.current';

export const timeline = new Timeline(ui.messages, ui.jump, {
  me: () => ({ id: app.session?.userId, handle: app.session?.handle }),
  needOlder: (r) => void loadOlder(r, timeline),
  loadMissed: (r, item) => void loadMissed(r, item, timeline),
  atBottomChanged: (atBottom) => {
    if (atBottom) markRead();
  },
});
export const roomList = new RoomList({ open: (name) => openRoom(name) });
export const alerts = new AlertsView({
  store: () => app.store,
  send: (text) => void app.client?.alert(text).catch(() => {}),
  announce: (text) => announce(text),
});

// ---- rendering ---------------------------------------------------------------------------

export function renderRoom(): void {
  const { current, store } = app;
  ui.roomTitle.textContent = current ?? '';
  show(ui.leave, current !== undefined);
  show(ui.composer, current !== undefined);
  timeline.show(current && store ? store.room(current) : undefined);
  markRead();
  renderMembers();
  renderTyping();
  renderOutbox();
  renderRooms();
}

export function renderRooms(): void {
  roomList.render(app.client?.rooms ?? [], app.current, app.store);
}

export function renderMembers(): void {
  const { current, store } = app;
  const room = current && store ? store.room(current) : undefined;
  const list = room ? memberList(room) : [];
  ui.members.replaceChildren(...list.map((m) => el('li', { 'data-testid': 'member', 'data-user': m.id }, m.handle)));
  const n = Math.max(list.length, room?.count ?? 0);
  ui.memberCount.textContent = n ? `(${n})` : '';
  ui.roomCount.textContent = n ? `${n} online` : '';
}

export function renderTyping(): void {
  const { current, store } = app;
  if (!current || !store) {
    ui.typing.textContent = '';
    return;
  }
  const r = store.room(current);
  const now = Date.now();
  for (const [id, t] of r.typers) if (t.until <= now) r.typers.delete(id);
  const names = [...r.typers.values()].map((t) => t.handle);
  const text = names.length === 0 ? '' : names.length === 1 ? `${names[0]} is typing…` : names.length === 2 ? `${names[0]} and ${names[1]} are typing…` : 'several people are typing…';
  if (ui.typing.textContent !== text) ui.typing.textContent = text;
}

export function renderOutbox(): void {
  const pending = (app.client?.pending ?? []).filter((e) => e.kind === 'msg' && e.room === app.current);
  ui.outbox.replaceChildren(...pending.map((e) => el('li', { 'data-testid': 'pending', 'data-id': e.id }, e.text)));
}

/** The reader sees the bottom of the room in view: its unread count is cleared. */
export function markRead(): void {
  const { current, store } = app;
  if (!current || !store || document.visibilityState === 'hidden' || !timeline.atBottom) return;
  const r = store.room(current);
  if (r.unread === 0 && r.mentions === 0) return;
  r.unread = 0;
  r.mentions = 0;
  scheduleRooms();
}

let roomsFrame = 0;
/** The room list is drawn again on the next frame (many messages in a burst draw it once). */
export function scheduleRooms(): void {
  roomsFrame ||= requestAnimationFrame(() => {
    roomsFrame = 0;
    renderRooms();
  });
}

// ---- drawers (phone and narrow screens) ---------------------------------------------------

function setDrawer(which: '' | 'rooms' | 'members'): void {
  ui.chat.dataset.drawer = which;
  ui.roomsToggle.setAttribute('aria-expanded', String(which === 'rooms'));
  ui.membersToggle.setAttribute('aria-expanded', String(which === 'members'));
  if (which === 'rooms') byTestId('sidebar').querySelector<HTMLElement>('button, input')?.focus();
}
ui.roomsToggle.addEventListener('click', () => setDrawer(ui.chat.dataset.drawer === 'rooms' ? '' : 'rooms'));
ui.membersToggle.addEventListener('click', () => setDrawer(ui.chat.dataset.drawer === 'members' ? '' : 'members'));
ui.scrim.addEventListener('click', () => setDrawer(''));
document.addEventListener('keydown', (ev) => {
  if (ev.key === 'Escape' && ui.chat.dataset.drawer) {
    const which = ui.chat.dataset.drawer;
    setDrawer('');
    (which === 'rooms' ? ui.roomsToggle : ui.membersToggle).focus();
  }
});

// ---- room actions ------------------------------------------------------------------------

export function focusComposer(): void {
  if (!ui.composer.hidden) ui.messageInput.focus({ preventScroll: true });
}

/** Put a room on screen (remembered per tab), or none. */
export function setCurrent(room: string | undefined): void {
  const { current, store } = app;
  if (current && store && current !== room) store.room(current).firstUnread = undefined;
  app.current = room;
  try {
    if (room) sessionStorage.setItem(CURRENT_KEY, room);
    else sessionStorage.removeItem(CURRENT_KEY);
  } catch {
    /* ignore */
  }
  renderRoom();
}

/** The room this tab had on screen last, if any. */
export function savedCurrent(): string | null {
  try {
    return sessionStorage.getItem(CURRENT_KEY);
  } catch {
    return null;
  }
}

export function openRoom(name: string): void {
  const client = app.client;
  if (!client) return;
  setError(ui.joinError, undefined);
  if (!ROOM_RE.test(name)) {
    setError(ui.joinError, 'Room names: lower-case letters, digits, “-” and “_”, up to 32, not starting with “_”.');
    return;
  }
  app.store?.room(name);
  client.join(name).then(
    () => {
      if (app.current === name) renderMembers();
      void refreshDirectory();
    },
    (err: ClientError) => {
      setError(ui.joinError, `Could not join ${name}: ${err.message}`);
      if (app.current === name) setCurrent(app.client?.rooms[0]);
      else renderRooms();
    },
  );
  if (app.current !== name) setCurrent(name);
  setDrawer('');
  focusComposer();
}

export function leaveCurrent(): void {
  const { client, current } = app;
  if (!client || !current) return;
  client.leave(current);
  app.store?.forget(current);
  setCurrent(client.rooms[0]);
  void refreshDirectory();
  focusComposer();
}

/** The server's list of rooms with their member counts, for the room list. */
export async function refreshDirectory(): Promise<void> {
  const c = app.client;
  if (!c || c.state !== 'connected') return;
  try {
    const rooms = await c.listRooms();
    if (c !== app.client) return;
    roomList.setDirectory(rooms);
    renderRooms();
  } catch {
    /* not connected: asked again on the next welcome */
  }
}
