/**
 * The confab web UI. It talks to the server only through the client SDK (plus
 * POST /api/session for the handle). Everything user-made is rendered as text.
 */
import { ConfabClient, ROOM_RE, urlList, type ChatMessage, type ClientError, type JoinedEvent, type StateChange } from '../client/index.js';
import { AlertsView } from './alerts.js';
import { byTestId, el, setError, show } from './dom.js';
import { BatchedStorage } from './persist.js';
import { RoomList } from './rooms.js';
import { type SavedSession, SessionError, claimSession, clearSession, handleProblem, refusalText, requestSession, saveSession, signOut } from './session.js';
import { Store, memberList, mentions, newKey, type RoomView, type TimelineItem } from './store.js';
import { Timeline } from './timeline.js';

const ui = {
  status: byTestId('status'),
  banner: byTestId('banner'),
  bannerText: byTestId('banner-text'),
  countdown: byTestId('countdown'),
  retryNow: byTestId<HTMLButtonElement>('retry-now'),
  reconnect: byTestId<HTMLButtonElement>('reconnect'),
  me: byTestId('me'),
  logout: byTestId<HTMLButtonElement>('logout'),
  roomsToggle: byTestId<HTMLButtonElement>('rooms-toggle'),
  login: byTestId('login'),
  loginForm: byTestId<HTMLFormElement>('login-form'),
  handleInput: byTestId<HTMLInputElement>('handle-input'),
  loginError: byTestId('login-error'),
  chat: byTestId('chat'),
  room: byTestId('room'),
  joinForm: byTestId<HTMLFormElement>('join-form'),
  joinInput: byTestId<HTMLInputElement>('join-input'),
  joinError: byTestId('join-error'),
  roomTitle: byTestId('room-title'),
  roomCount: byTestId('room-count'),
  membersToggle: byTestId<HTMLButtonElement>('members-toggle'),
  leave: byTestId<HTMLButtonElement>('leave-room'),
  messages: byTestId('messages'),
  jump: byTestId<HTMLButtonElement>('jump'),
  outbox: byTestId('outbox'),
  typing: byTestId('typing'),
  composer: byTestId<HTMLFormElement>('composer'),
  messageInput: byTestId<HTMLTextAreaElement>('message-input'),
  composerHint: byTestId('composer-hint'),
  counter: byTestId('counter'),
  sendError: byTestId('send-error'),
  members: byTestId('members'),
  memberCount: byTestId('member-count'),
  scrim: byTestId('scrim'),
  announcer: byTestId('announcer'),
};

const CURRENT_KEY = 'confab.current';
/** A session token this close to its expiry is renewed before it is used (tokens last an hour by default). */
const RENEW_BEFORE_MS = 5 * 60 * 1000;
const DEFAULT_MAX_TEXT = 2000;
const HISTORY_PAGE = 50;
const DIRECTORY_EVERY_MS = 20_000;

let session: SavedSession | undefined;
let client: ConfabClient | undefined;
let store: Store | undefined;
let current: string | undefined;
let lastWelcome: { node: string; region: string } | undefined;
let failedAttempts = 0;
let countdown: ReturnType<typeof setInterval> | undefined;
let directoryTimer: ReturnType<typeof setInterval> | undefined;
/** Offsets of `_alerts` at or below this were sent before this page joined: shown as missed. */
let alertsLast = Number.POSITIVE_INFINITY;
const historyPausedUntil = new Map<string, number>();
const storage = new BatchedStorage(globalThis.localStorage, { intervalMs: 1000, immediate: (k) => k.endsWith(':outbox') });

const timeline = new Timeline(ui.messages, ui.jump, {
  me: () => ({ id: session?.userId, handle: session?.handle }),
  needOlder: (r) => void loadOlder(r),
  loadMissed: (r, item) => void loadMissed(r, item),
  atBottomChanged: (atBottom) => {
    if (atBottom) markRead();
  },
});
const roomList = new RoomList({ open: (name) => openRoom(name) });
const alerts = new AlertsView({
  store: () => store,
  send: (text) => void client?.alert(text).catch(() => {}),
  announce: (text) => announce(text),
});

// ---- announcements (only what is new, batched) -------------------------------------

let announceQueue: string[] = [];
let announceTimer: ReturnType<typeof setTimeout> | undefined;
function announce(text: string): void {
  announceQueue.push(text);
  announceTimer ??= setTimeout(() => {
    announceTimer = undefined;
    const q = announceQueue;
    announceQueue = [];
    ui.announcer.textContent = q.length <= 2 ? q.join('. ') : `${q.length} new messages`;
  }, 800);
}

// ---- connection status -------------------------------------------------------------------

function renderStatus(s: StateChange): void {
  clearInterval(countdown);
  countdown = undefined;
  ui.status.dataset.state = s.state;
  ui.chat.dataset.state = s.state;
  ui.banner.dataset.state = s.state;
  const online = s.state === 'connected';
  ui.room.dataset.online = String(online);
  show(ui.banner, !online && client !== undefined && s.state !== 'idle');
  show(ui.retryNow, s.state === 'reconnecting' || s.state === 'offline' || s.state === 'connecting');
  show(ui.reconnect, s.state === 'closed' && client !== undefined);
  ui.countdown.textContent = '';
  switch (s.state) {
    case 'connected':
      ui.status.textContent = `connected to node ${s.node ?? '?'} in region ${s.region ?? '?'}`;
      break;
    case 'reconnecting': {
      ui.status.textContent = 'reconnecting…';
      ui.bannerText.textContent = 'Connection lost. Reconnecting…';
      const deadline = Date.now() + (s.retryInMs ?? 0);
      const tick = (): void => {
        const left = deadline - Date.now();
        ui.countdown.textContent = left > 0 ? `next try in ${Math.ceil(left / 1000)} s` : '';
      };
      tick();
      countdown = setInterval(tick, 500);
      break;
    }
    case 'connecting':
      ui.status.textContent = s.prev === 'reconnecting' ? 'reconnecting…' : 'connecting…';
      ui.bannerText.textContent = s.prev === 'reconnecting' || s.prev === 'offline' ? 'Reconnecting…' : 'Connecting…';
      break;
    case 'offline':
      ui.status.textContent = 'offline';
      ui.bannerText.textContent = 'You are offline.';
      break;
    case 'closed':
      ui.status.textContent = s.reason ? `disconnected by the server (${s.reason})` : 'disconnected';
      ui.bannerText.textContent = 'Disconnected.';
      break;
    default:
      ui.status.textContent = 'starting…';
  }
  renderComposerHint();
}

function renderComposerHint(): void {
  const online = client?.state === 'connected';
  ui.composerHint.textContent = online || !client ? 'Enter sends, Shift+Enter adds a line.' : 'Not connected: what you send waits here and goes out when the connection is back.';
  ui.messageInput.placeholder = online || !client ? 'Write a message…' : 'Write a message (it will wait until you are back online)…';
}

// ---- rendering ---------------------------------------------------------------------------

function renderRoom(): void {
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

function renderRooms(): void {
  roomList.render(client?.rooms ?? [], current, store);
}

function renderMembers(): void {
  const room = current && store ? store.room(current) : undefined;
  const list = room ? memberList(room) : [];
  ui.members.replaceChildren(...list.map((m) => el('li', { 'data-testid': 'member', 'data-user': m.id }, m.handle)));
  const n = Math.max(list.length, room?.count ?? 0);
  ui.memberCount.textContent = n ? `(${n})` : '';
  ui.roomCount.textContent = n ? `${n} online` : '';
}

function renderTyping(): void {
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

function renderOutbox(): void {
  const pending = (client?.pending ?? []).filter((e) => e.kind === 'msg' && e.room === current);
  ui.outbox.replaceChildren(...pending.map((e) => el('li', { 'data-testid': 'pending', 'data-id': e.id }, e.text)));
}

/** The reader sees the bottom of the room in view: its unread count is cleared. */
function markRead(): void {
  if (!current || !store || document.visibilityState === 'hidden' || !timeline.atBottom) return;
  const r = store.room(current);
  if (r.unread === 0 && r.mentions === 0) return;
  r.unread = 0;
  r.mentions = 0;
  scheduleRooms();
}

let roomsFrame = 0;
function scheduleRooms(): void {
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

// ---- actions -----------------------------------------------------------------------------

function focusComposer(): void {
  if (!ui.composer.hidden) ui.messageInput.focus({ preventScroll: true });
}

function setCurrent(room: string | undefined): void {
  if (current && store && current !== room) store.room(current).firstUnread = undefined;
  current = room;
  try {
    if (room) sessionStorage.setItem(CURRENT_KEY, room);
    else sessionStorage.removeItem(CURRENT_KEY);
  } catch {
    /* ignore */
  }
  renderRoom();
}

function openRoom(name: string): void {
  if (!client) return;
  setError(ui.joinError, undefined);
  if (!ROOM_RE.test(name)) {
    setError(ui.joinError, 'Room names: lower-case letters, digits, “-” and “_”, up to 32, not starting with “_”.');
    return;
  }
  store?.room(name);
  client.join(name).then(
    () => {
      if (current === name) renderMembers();
      void refreshDirectory();
    },
    (err: ClientError) => {
      setError(ui.joinError, `Could not join ${name}: ${err.message}`);
      if (current === name) setCurrent(client?.rooms[0]);
      else renderRooms();
    },
  );
  if (current !== name) setCurrent(name);
  setDrawer('');
  focusComposer();
}

function leaveCurrent(): void {
  if (!client || !current) return;
  const room = current;
  client.leave(room);
  store?.forget(room);
  setCurrent(client.rooms[0]);
  void refreshDirectory();
  focusComposer();
}

async function refreshDirectory(): Promise<void> {
  const c = client;
  if (!c || c.state !== 'connected') return;
  try {
    const rooms = await c.listRooms();
    if (c !== client) return;
    roomList.setDirectory(rooms);
    renderRooms();
  } catch {
    /* not connected: asked again on the next welcome */
  }
}

/** Older messages for the top of a room, a page at a time, from the server's history. */
async function loadOlder(r: RoomView): Promise<void> {
  const c = client;
  if (!c || r.loading || (historyPausedUntil.get(r.name) ?? 0) > Date.now()) return;
  historyPausedUntil.delete(r.name);
  // nothing shown yet: the join's replay brings the newest messages; older ones are asked for above them
  const first = r.items.find((i): i is Extract<TimelineItem, { kind: 'msg' }> => i.kind === 'msg');
  if (!first) return;
  if (first.m.prev === 0) {
    r.more = false;
    if (r === timeline.room) timeline.refresh();
    return;
  }
  r.loading = true;
  try {
    const page = await c.history(r.name, { before: first.m.offset, limit: HISTORY_PAGE });
    const msgs = page.messages.filter((m) => m.offset < first.m.offset && m.epoch === first.m.epoch);
    const at = r.items.indexOf(first);
    const added = at < 0 ? [] : (store?.prepend(r.name, msgs, at) ?? []);
    r.more = page.more && added.length > 0;
    r.loading = false;
    if (r === timeline.room) {
      if (added.length) timeline.inserted(at, added.length);
      else timeline.refresh();
    }
  } catch {
    r.loading = false;
    historyPausedUntil.set(r.name, Date.now() + 5000);
  }
}

/** Messages a capped resume skipped, newest first, a page at a time, placed at their marker. */
async function loadMissed(r: RoomView, item: Extract<TimelineItem, { kind: 'missed' }>): Promise<void> {
  const c = client;
  if (!c || r.loading) return;
  r.loading = true;
  if (r === timeline.room) timeline.refresh();
  try {
    const page = await c.history(r.name, { before: item.to + 1, limit: Math.min(100, item.to - item.from + 1) });
    const msgs = page.messages.filter((m) => m.offset >= item.from && m.offset <= item.to);
    const at = r.items.indexOf(item);
    if (at < 0) return;
    const added = store?.prepend(r.name, msgs, at + 1) ?? [];
    const lowest = msgs.reduce((lo, m) => Math.min(lo, m.offset), item.to + 1);
    item.to = lowest - 1;
    if (item.to < item.from || !page.more || msgs.length === 0) r.items.splice(r.items.indexOf(item), 1);
    if (r === timeline.room) {
      if (added.length) timeline.inserted(at + 1, added.length);
      timeline.refresh();
    }
  } catch {
    historyPausedUntil.set(r.name, Date.now() + 5000);
  } finally {
    r.loading = false;
  }
}

// ---- wiring the SDK ----------------------------------------------------------------------

/**
 * Every region's entry point, from GET /api/config (CONFAB_PUBLIC_URLS): the client tries its own
 * origin first and the others when it cannot connect. Asked once per page; none when unavailable.
 */
const publicUrls: Promise<unknown[]> = (async () => {
  try {
    const res = await fetch('/api/config', { signal: AbortSignal.timeout(3000), headers: { accept: 'application/json' } });
    if (!res.ok) return [];
    const body = (await res.json()) as { urls?: unknown };
    return Array.isArray(body.urls) ? body.urls : [];
  } catch {
    return []; // server unreachable or older: the own origin alone
  }
})();

async function currentToken(): Promise<string> {
  if (!session) throw new Error('no session');
  const expiring = session.expiresAt !== undefined && session.expiresAt - Date.now() < RENEW_BEFORE_MS;
  if (failedAttempts >= 2 || expiring) {
    try {
      session = await requestSession(session.handle, session.token);
      await saveSession(session);
    } catch (err) {
      if (err instanceof SessionError && err.status >= 400 && err.status < 500) {
        logout(err.code === 'handle_taken' ? refusalText(err, session?.handle ?? '') : `Your session ended: ${err.message}`);
        throw err;
      }
      /* server unreachable: try the socket with the token we have */
    }
  }
  return session.token;
}

function onMessage(m: ChatMessage): void {
  const s = store!;
  const r = s.room(m.room);
  const item: TimelineItem = { key: newKey(), kind: 'msg', m };
  s.add(m.room, item);
  const mine = m.from.user === session?.userId;
  const seen = m.room === current && timeline.atBottom && document.visibilityState === 'visible';
  if (!mine && !seen) {
    r.unread++;
    if (mentions(m.text, session?.handle)) r.mentions++;
    if (r.firstUnread === undefined && m.room !== current) r.firstUnread = item.key;
    scheduleRooms();
  }
  if (m.room === current) {
    timeline.appended();
    if (!mine) announce(`${m.from.handle}: ${m.text}`);
    if (r.typers.size) renderTyping();
  }
}

function onJoined(j: JoinedEvent): void {
  if (j.room === '_alerts') {
    alertsLast = j.last;
    return;
  }
  const r = store!.room(j.room);
  r.members = new Map(j.members.map((m) => [m.id, m.handle]));
  r.count = j.count;
  const missed = j.missed;
  if (missed && missed.to >= missed.from) {
    store!.add(j.room, { key: newKey(), kind: 'missed', from: missed.from, to: missed.to });
    if (j.room === current) timeline.appended();
  }
  if (j.room === current) renderMembers();
  renderRooms();
}

async function start(s: SavedSession): Promise<void> {
  session = s;
  const urls = urlList(location.origin, await publicUrls);
  if (session !== s) return; // signed out meanwhile
  store = new Store(`confab:${s.userId}`, storage);
  store.onTrim = (room, n) => {
    if (room === current) timeline.trimmed(n);
  };
  alertsLast = Number.POSITIVE_INFINITY;
  const c = new ConfabClient({ url: urls, token: currentToken, storage, namespace: `confab:${s.userId}` });
  client = c;
  ui.me.textContent = s.handle;
  show(ui.me, true);
  show(ui.logout, true);
  show(ui.login, false);
  show(ui.chat, true);
  show(ui.roomsToggle, true);
  alerts.setAllowed(s.perms?.alert !== false);

  c.on('state', (st) => {
    if (c !== client) return;
    if (st.state === 'connected') failedAttempts = 0;
    else if (st.state === 'reconnecting' && st.prev === 'connecting') failedAttempts++;
    renderStatus(st);
  });
  c.on('bus', (b) => {
    if (c !== client) return;
    ui.status.dataset.bus = b.bus;
    if (b.bus === 'down') ui.status.textContent = 'connected, but the server cannot deliver messages right now: they wait in your outbox';
    else renderStatus({ state: c.state, prev: c.state, node: lastWelcome?.node, region: lastWelcome?.region } as StateChange);
  });
  c.on('welcome', (w) => {
    if (c !== client) return;
    lastWelcome = w;
    ui.me.textContent = w.user.handle;
    if (typeof w.perms?.alert === 'boolean') alerts.setAllowed(w.perms.alert);
    roomList.setDirectory(w.rooms.map((name) => ({ name, members: 0 })));
    renderRooms();
    void refreshDirectory();
  });
  c.on('session', (x) => {
    if (c !== client || !session) return;
    session = { ...session, expiresAt: x.exp * 1000, perms: x.perms };
    void saveSession(session);
    alerts.setAllowed(x.perms.alert);
  });
  c.on('token', (x) => {
    // the SDK renewed the session on the open socket: keep the new token for the next start
    if (c !== client || !session) return;
    session = { ...session, token: x.token };
    void saveSession(session);
  });
  c.on('joined', (j) => c === client && onJoined(j));
  c.on('message', (m) => c === client && onMessage(m));
  c.on('alert', (m) => c === client && alerts.add(m, m.offset <= alertsLast));
  c.on('presence', (p) => {
    if (c !== client) return;
    const r = store!.room(p.room);
    const had = r.members.has(p.user.id);
    if (p.event === 'join') r.members.set(p.user.id, p.user.handle);
    else r.members.delete(p.user.id);
    if (r.count !== undefined && (p.event === 'join') !== had) r.count = Math.max(0, r.count + (p.event === 'join' ? 1 : -1));
    if (p.room === current) renderMembers();
    if (p.user.id === session?.userId || (p.event === 'join') === had) return;
    store!.add(p.room, { key: newKey(), kind: 'notice', text: `${p.user.handle} ${p.event === 'join' ? 'joined' : 'left'}`, cls: 'notice' });
    if (p.room === current) timeline.appended();
  });
  c.on('typing', (t) => {
    if (c !== client || t.user.id === session?.userId) return;
    store!.room(t.room).typers.set(t.user.id, { handle: t.user.handle, until: Date.now() + 4000 });
    if (t.room === current) renderTyping();
  });
  c.on('gap', (g) => {
    if (c !== client) return;
    let text: string;
    if (g.reset) {
      store!.clearMessages(g.room);
      text = 'The room history was reset on the server.';
    } else text = g.from === g.to ? `Message ${g.from} is no longer available.` : `Messages ${g.from}–${g.to} are no longer available.`;
    store!.add(g.room, { key: newKey(), kind: 'notice', text, cls: 'gap' });
    if (g.room === current) {
      if (g.reset) timeline.show(store!.room(g.room));
      else timeline.appended();
    }
  });
  c.on('outbox', () => c === client && renderOutbox());
  c.on('left', () => c === client && renderRooms());
  c.on('error', (err) => {
    if (c !== client) return;
    if (err.code === 'connect_failed' || err.code === 'bad_server_frame') return; // the banner says it
    if (err.code === 'unauthorized') {
      logout('Your session is no longer valid; pick a handle again.');
      return;
    }
    if (err.code === 'session_revoked' || err.code === 'replaced') {
      logout(err.code === 'replaced' ? 'You changed your handle in another tab; sign in again here.' : 'You were signed out.');
      return;
    }
    if (err.code === 'handle_taken') {
      logout(`“${session?.handle ?? ''}” is taken by another user right now; pick another handle.`);
      return;
    }
    // a message refused for good is reported where it was sent (see the composer); `later` refusals are resent by the SDK
    if (err.room && !err.id && err.retry === 'never') setError(ui.joinError, `Could not join ${err.room}: ${err.message}`);
    else if (err.code === 'rate_limited') setError(ui.sendError, 'Slow down a little: too many messages.');
  });

  if (c.rooms.length === 0) void c.join('lobby').catch(() => {});
  for (const r of c.rooms) store.room(r);
  let saved: string | null = null;
  try {
    saved = sessionStorage.getItem(CURRENT_KEY);
  } catch {
    /* ignore */
  }
  alerts.render();
  setCurrent(saved && c.rooms.includes(saved) ? saved : c.rooms[0]);
  c.connect();
  clearInterval(directoryTimer);
  directoryTimer = setInterval(() => {
    if (document.visibilityState === 'visible') void refreshDirectory();
  }, DIRECTORY_EVERY_MS);
  focusComposer();
}

function logout(reason?: string): void {
  const c = client;
  client = undefined;
  c?.close();
  store?.save();
  storage.flush();
  clearSession(session?.userId);
  session = undefined;
  store = undefined;
  current = undefined;
  clearInterval(directoryTimer);
  show(ui.chat, false);
  show(ui.me, false);
  show(ui.logout, false);
  show(ui.roomsToggle, false);
  show(ui.login, true);
  show(ui.banner, false);
  setError(ui.loginError, reason);
  clearInterval(countdown);
  ui.status.dataset.state = 'idle';
  ui.status.textContent = 'not signed in';
  document.title = 'confab';
  ui.handleInput.focus();
}

// ---- forms ---------------------------------------------------------------------------------

ui.loginForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const handle = ui.handleInput.value.trim();
  const problem = handleProblem(handle);
  if (problem) {
    setError(ui.loginError, problem);
    ui.handleInput.focus();
    return;
  }
  setError(ui.loginError, undefined);
  requestSession(handle).then(
    async (s) => {
      await saveSession(s);
      await start(s);
    },
    (err: unknown) => {
      if (err instanceof SessionError) setError(ui.loginError, refusalText(err, handle));
      else setError(ui.loginError, 'The server cannot be reached; try again in a moment.');
      ui.handleInput.focus();
    },
  );
});

function maxText(): number {
  return client?.welcome?.limits.maxTextChars ?? DEFAULT_MAX_TEXT;
}

function renderCounter(): void {
  const n = ui.messageInput.value.length;
  const max = maxText();
  const near = n > max * 0.8;
  ui.counter.hidden = !near;
  ui.counter.textContent = near ? `${n} / ${max}` : '';
  ui.counter.classList.toggle('over', n > max);
  // grow with the text, up to the CSS max-height
  ui.messageInput.style.height = 'auto';
  ui.messageInput.style.height = `${ui.messageInput.scrollHeight + 2}px`;
}

function sendComposer(): void {
  const text = ui.messageInput.value.trim();
  if (!text || !client || !current) return;
  const max = maxText();
  if (text.length > max) {
    setError(ui.sendError, `Too long to send: ${text.length} characters, at most ${max}. Your text is kept; shorten it and send again.`);
    renderCounter();
    return;
  }
  setError(ui.sendError, undefined);
  ui.messageInput.value = '';
  renderCounter();
  client.send(current, text).catch((err: ClientError) => {
    if (err.retry !== 'never' || err.code === 'not_joined' || err.code === 'closed') return;
    // refused for good: the text comes back to the box (unless something new is being written)
    if (!ui.messageInput.value) {
      ui.messageInput.value = text;
      renderCounter();
    }
    setError(ui.sendError, `Message not sent: ${err.message}. Your text is back in the box.`);
  });
}

ui.composer.addEventListener('submit', (ev) => {
  ev.preventDefault();
  sendComposer();
  focusComposer();
});
ui.messageInput.addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing && !ev.altKey && !ev.ctrlKey && !ev.metaKey) {
    ev.preventDefault();
    sendComposer();
  }
});
ui.messageInput.addEventListener('input', () => {
  renderCounter();
  if (client && current && ui.messageInput.value) client.typing(current);
});

ui.joinForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const name = ui.joinInput.value.trim().toLowerCase();
  if (!name) return;
  ui.joinInput.value = '';
  openRoom(name);
});

ui.leave.addEventListener('click', leaveCurrent);
ui.retryNow.addEventListener('click', () => client?.connect());
ui.reconnect.addEventListener('click', () => client?.connect());
ui.logout.addEventListener('click', () => {
  const token = session?.token;
  logout();
  if (token) void signOut(token);
});
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible') markRead();
  else store?.save();
});
addEventListener('pagehide', () => {
  store?.save();
  storage.flush();
});

// ---- boot --------------------------------------------------------------------------------

async function boot(): Promise<void> {
  setInterval(() => {
    renderTyping();
    alerts.tick();
  }, 1000);
  if ('serviceWorker' in navigator) navigator.serviceWorker.register('/sw.js').catch(() => {});
  const saved = await claimSession();
  if (!saved) {
    logout();
    setError(ui.loginError, undefined);
    return;
  }
  try {
    const renewed = await requestSession(saved.handle, saved.token);
    await saveSession(renewed);
    await start(renewed);
  } catch (err) {
    if (err instanceof SessionError && err.status >= 400 && err.status < 500) {
      logout(err.code === 'handle_taken' ? refusalText(err, saved.handle) : `Your session ended: ${err.message}`);
      return;
    }
    await start(saved); // server unreachable: keep the session; the client reconnects when it is back
  }
}

void boot();
