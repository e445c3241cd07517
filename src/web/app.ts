/**
 * The confab web UI. It talks to the server only through the client SDK (plus
 * POST /api/session for the handle). Everything user-made is rendered as text.
 */
import { ConfabClient, ROOM_RE, urlList, type ChatMessage, type ClientError, type StateChange } from '../client/index.js';
import { agoText, appendKeepingBottom, byTestId, clock, el, setError, show } from './dom.js';
import { type SavedSession, SessionError, clearSession, handleProblem, loadSession, requestSession, saveSession, signOut } from './session.js';
import { Store, memberList, type TimelineItem } from './store.js';

const ui = {
  status: byTestId('status'),
  reconnect: byTestId<HTMLButtonElement>('reconnect'),
  me: byTestId('me'),
  logout: byTestId<HTMLButtonElement>('logout'),
  login: byTestId('login'),
  loginForm: byTestId<HTMLFormElement>('login-form'),
  handleInput: byTestId<HTMLInputElement>('handle-input'),
  loginError: byTestId('login-error'),
  chat: byTestId('chat'),
  roomList: byTestId('room-list'),
  joinForm: byTestId<HTMLFormElement>('join-form'),
  joinInput: byTestId<HTMLInputElement>('join-input'),
  joinError: byTestId('join-error'),
  alertForm: byTestId<HTMLFormElement>('alert-form'),
  alertInput: byTestId<HTMLInputElement>('alert-input'),
  alerts: byTestId('alerts'),
  roomTitle: byTestId('room-title'),
  leave: byTestId<HTMLButtonElement>('leave-room'),
  messages: byTestId('messages'),
  outbox: byTestId('outbox'),
  typing: byTestId('typing'),
  composer: byTestId<HTMLFormElement>('composer'),
  messageInput: byTestId<HTMLInputElement>('message-input'),
  sendError: byTestId('send-error'),
  members: byTestId('members'),
  memberCount: byTestId('member-count'),
};

const CURRENT_KEY = 'confab.current';
const RENEW_BEFORE_MS = 24 * 3600 * 1000;

let session: SavedSession | undefined;
let client: ConfabClient | undefined;
let store: Store | undefined;
let current: string | undefined;
let lastWelcome: { node: string; region: string } | undefined;
let serverRooms: string[] = [];
let failedAttempts = 0;
let countdown: ReturnType<typeof setInterval> | undefined;
let typingTimer: ReturnType<typeof setInterval> | undefined;

// ---- status bar ------------------------------------------------------------

function renderStatus(s: StateChange): void {
  clearInterval(countdown);
  countdown = undefined;
  ui.status.dataset.state = s.state;
  ui.chat.dataset.state = s.state;
  show(ui.reconnect, s.state === 'closed' && client !== undefined);
  switch (s.state) {
    case 'connected':
      ui.status.textContent = `connected to node ${s.node ?? '?'} in region ${s.region ?? '?'}`;
      break;
    case 'reconnecting': {
      const deadline = Date.now() + (s.retryInMs ?? 0);
      const tick = (): void => {
        const left = deadline - Date.now();
        ui.status.textContent = left > 0 ? `reconnecting in ${Math.ceil(left / 1000)}s…` : 'reconnecting…';
      };
      tick();
      countdown = setInterval(tick, 250);
      break;
    }
    case 'connecting':
      ui.status.textContent = s.prev === 'reconnecting' ? 'reconnecting…' : 'connecting…';
      break;
    case 'offline':
      ui.status.textContent = 'offline';
      break;
    case 'closed':
      ui.status.textContent = s.reason ? `disconnected by the server (${s.reason})` : 'disconnected';
      break;
    default:
      ui.status.textContent = 'starting…';
  }
}

// ---- rendering -------------------------------------------------------------

function itemNode(item: TimelineItem): HTMLElement {
  if (item.kind === 'notice') return el('li', { class: item.cls, 'data-testid': item.cls === 'gap' ? 'gap' : 'notice' }, item.text);
  const m = item.m;
  return el(
    'li',
    { class: m.from.user === session?.userId ? 'mine' : undefined, 'data-testid': 'message', 'data-offset': String(m.offset), 'data-id': m.id, 'data-room': m.room },
    el('span', { class: 'time' }, clock(m.ts)),
    el('span', { class: 'from', 'data-testid': 'message-from' }, m.from.handle),
    el('span', { class: 'text', 'data-testid': 'message-text' }, m.text),
  );
}

function renderRoom(): void {
  ui.messages.replaceChildren();
  ui.roomTitle.textContent = current ?? '';
  show(ui.leave, current !== undefined);
  show(ui.composer, current !== undefined);
  if (!current || !store) {
    ui.messages.append(el('li', { class: 'notice' }, 'Join a room to start chatting.'));
  } else {
    for (const item of store.room(current).items) ui.messages.append(itemNode(item));
    ui.messages.scrollTop = ui.messages.scrollHeight;
  }
  renderMembers();
  renderTyping();
  renderOutbox();
  renderRooms();
}

function renderRooms(): void {
  const joined = client?.rooms ?? [];
  const names = [...joined, ...serverRooms.filter((r) => !joined.includes(r))];
  ui.roomList.replaceChildren(
    ...names.map((name) => {
      const cls = [joined.includes(name) ? 'joined' : '', name === current ? 'current' : ''].filter(Boolean).join(' ');
      const btn = el('button', { type: 'button', 'data-room': name }, name);
      btn.addEventListener('click', () => openRoom(name));
      return el('li', { class: cls || undefined, 'data-testid': 'room-item', 'data-room': name, 'data-joined': String(joined.includes(name)) }, btn);
    }),
  );
}

function renderMembers(): void {
  const room = current && store ? store.room(current) : undefined;
  const list = room ? memberList(room) : [];
  ui.members.replaceChildren(...list.map((m) => el('li', { 'data-testid': 'member', 'data-user': m.id }, m.handle)));
  const n = Math.max(list.length, room?.count ?? 0);
  ui.memberCount.textContent = n ? `(${n})` : '';
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
  ui.typing.textContent =
    names.length === 0 ? '' : names.length === 1 ? `${names[0]} is typing…` : names.length === 2 ? `${names[0]} and ${names[1]} are typing…` : 'several people are typing…';
}

function renderOutbox(): void {
  const pending = (client?.pending ?? []).filter((e) => e.kind === 'msg' && e.room === current);
  ui.outbox.replaceChildren(...pending.map((e) => el('li', { 'data-testid': 'pending', 'data-id': e.id }, e.text)));
}

function alertNode(a: { m: ChatMessage; agoMs: number }): HTMLElement {
  return el(
    'li',
    { 'data-testid': 'alert', 'data-id': a.m.id },
    el('span', { class: 'from', 'data-testid': 'alert-from' }, a.m.from.handle),
    el('span', { class: 'text', 'data-testid': 'alert-text' }, a.m.text),
    el('span', { class: 'meta', 'data-testid': 'alert-meta' }, `node ${a.m.from.node} · region ${a.m.from.region} · ${agoText(a.agoMs)}`),
  );
}

function renderAlerts(): void {
  ui.alerts.replaceChildren(...(store?.alerts ?? []).map(alertNode));
}

// ---- actions ---------------------------------------------------------------

function setCurrent(room: string | undefined): void {
  current = room;
  try {
    if (room) localStorage.setItem(CURRENT_KEY, room);
    else localStorage.removeItem(CURRENT_KEY);
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
  const isNew = !client.rooms.includes(name);
  store?.room(name);
  client.join(name).then(
    () => {
      if (current === name) renderMembers();
    },
    (err: ClientError) => {
      setError(ui.joinError, `Could not join ${name}: ${err.message}`);
      if (current === name) setCurrent(client?.rooms[0]);
      else renderRooms();
    },
  );
  if (isNew || current !== name) setCurrent(name);
}

function leaveCurrent(): void {
  if (!client || !current) return;
  const room = current;
  client.leave(room);
  store?.forget(room);
  setCurrent(client.rooms[0]);
}

// ---- wiring the SDK ----------------------------------------------------------

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
      saveSession(session);
    } catch (err) {
      if (err instanceof SessionError && err.status >= 400 && err.status < 500) {
        logout(`Your session ended: ${err.message}`);
        throw err;
      }
      /* server unreachable: try the socket with the token we have */
    }
  }
  return session.token;
}

async function start(s: SavedSession): Promise<void> {
  session = s;
  const urls = urlList(location.origin, await publicUrls);
  if (session !== s) return; // signed out meanwhile
  store = new Store(`confab:${s.userId}`);
  const c = new ConfabClient({ url: urls, token: currentToken, storage: localStorage, namespace: `confab:${s.userId}` });
  client = c;
  ui.me.textContent = s.handle;
  show(ui.me, true);
  show(ui.logout, true);
  show(ui.login, false);
  show(ui.chat, true);

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
    lastWelcome = w;
    serverRooms = w.rooms;
    ui.me.textContent = w.user.handle;
    renderRooms();
  });
  c.on('joined', (j) => {
    const r = store!.room(j.room);
    r.members = new Map(j.members.map((m) => [m.id, m.handle]));
    r.count = j.count;
    if (j.room === current) renderMembers();
    renderRooms();
  });
  c.on('message', (m) => {
    store!.addMessage(m);
    if (m.room === current) {
      appendKeepingBottom(ui.messages, itemNode({ kind: 'msg', m }));
      renderTyping();
    }
  });
  c.on('alert', (m) => {
    const a = { m, agoMs: Date.now() - m.ts };
    store!.addAlert(m, a.agoMs);
    ui.alerts.prepend(alertNode(a));
    while (ui.alerts.children.length > 30) ui.alerts.lastElementChild?.remove();
  });
  c.on('presence', (p) => {
    const r = store!.room(p.room);
    const had = r.members.has(p.user.id);
    if (p.event === 'join') r.members.set(p.user.id, p.user.handle);
    else r.members.delete(p.user.id);
    if (r.count !== undefined && (p.event === 'join') !== had) r.count = Math.max(0, r.count + (p.event === 'join' ? 1 : -1));
    if (p.user.id === session?.userId || (p.event === 'join') === had) {
      if (p.room === current) renderMembers();
      return;
    }
    const text = `${p.user.handle} ${p.event === 'join' ? 'joined' : 'left'}`;
    store!.addNotice(p.room, text);
    if (p.room === current) {
      appendKeepingBottom(ui.messages, itemNode({ kind: 'notice', text, cls: 'notice' }));
      renderMembers();
    }
  });
  c.on('typing', (t) => {
    if (t.user.id === session?.userId) return;
    store!.room(t.room).typers.set(t.user.id, { handle: t.user.handle, until: Date.now() + 4000 });
    if (t.room === current) renderTyping();
  });
  c.on('gap', (g) => {
    let text: string;
    if (g.reset) {
      store!.clearMessages(g.room);
      text = 'The room history was reset on the server.';
    } else text = g.from === g.to ? `Message ${g.from} is no longer available.` : `Messages ${g.from}–${g.to} are no longer available.`;
    store!.addNotice(g.room, text, 'gap');
    if (g.room === current) renderRoom();
  });
  c.on('outbox', () => renderOutbox());
  c.on('left', () => renderRooms());
  c.on('error', (err) => {
    if (err.code === 'connect_failed' || err.code === 'bad_server_frame') return; // the status bar says it
    if (err.code === 'unauthorized') {
      logout('Your session is no longer valid; pick a handle again.');
      return;
    }
    if (err.code === 'session_revoked' || err.code === 'replaced') {
      logout(err.code === 'replaced' ? 'You changed your handle in another tab; sign in again here.' : 'You were signed out.');
      return;
    }
    // a message refused for good; `later` refusals (rate_limited, store_failed, fenced) are resent by the SDK
    if (err.id && err.retry === 'never') setError(ui.sendError, `Message not sent: ${err.message}`);
    else if (err.room && !err.id && err.retry === 'never') setError(ui.joinError, `Could not join ${err.room}: ${err.message}`);
    else if (err.code === 'rate_limited') setError(ui.sendError, 'Slow down a little: too many messages.');
  });

  if (c.rooms.length === 0) void c.join('lobby').catch(() => {});
  for (const r of c.rooms) store.room(r);
  let saved: string | null = null;
  try {
    saved = localStorage.getItem(CURRENT_KEY);
  } catch {
    /* ignore */
  }
  renderAlerts();
  setCurrent(saved && c.rooms.includes(saved) ? saved : c.rooms[0]);
  c.connect();
}

function logout(reason?: string): void {
  const c = client;
  client = undefined;
  c?.close();
  clearSession();
  session = undefined;
  store = undefined;
  show(ui.chat, false);
  show(ui.me, false);
  show(ui.logout, false);
  show(ui.login, true);
  setError(ui.loginError, reason);
  clearInterval(countdown);
  show(ui.reconnect, false);
  ui.status.dataset.state = 'idle';
  ui.status.textContent = 'not signed in';
  ui.handleInput.focus();
}

// ---- forms -------------------------------------------------------------------

ui.loginForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const handle = ui.handleInput.value.trim();
  const problem = handleProblem(handle);
  if (problem) {
    setError(ui.loginError, problem);
    return;
  }
  setError(ui.loginError, undefined);
  requestSession(handle).then(
    (s) => {
      saveSession(s);
      void start(s);
    },
    (err: unknown) => {
      if (err instanceof SessionError) setError(ui.loginError, err.code === 'handle_taken' ? `“${handle}” is taken right now; pick another handle.` : err.message);
      else setError(ui.loginError, 'The server cannot be reached; try again in a moment.');
    },
  );
});

ui.composer.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const text = ui.messageInput.value.trim();
  if (!text || !client || !current) return;
  setError(ui.sendError, undefined);
  ui.messageInput.value = '';
  client.send(current, text).catch(() => {
    /* reported through the 'error' event */
  });
});
ui.messageInput.addEventListener('input', () => {
  if (client && current && ui.messageInput.value) client.typing(current);
});

ui.alertForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const text = ui.alertInput.value.trim();
  if (!text || !client) return;
  ui.alertInput.value = '';
  client.alert(text).catch(() => {});
});

ui.joinForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const name = ui.joinInput.value.trim().toLowerCase();
  if (!name) return;
  ui.joinInput.value = '';
  openRoom(name);
});

ui.leave.addEventListener('click', leaveCurrent);
ui.reconnect.addEventListener('click', () => client?.connect());
ui.logout.addEventListener('click', () => {
  if (session) void signOut(session.token); // revoked on every node, the handle freed
  logout();
});

// ---- boot --------------------------------------------------------------------

async function boot(): Promise<void> {
  typingTimer = setInterval(renderTyping, 1000);
  const saved = loadSession();
  if (!saved) {
    logout();
    setError(ui.loginError, undefined);
    return;
  }
  try {
    const renewed = await requestSession(saved.handle, saved.token);
    saveSession(renewed);
    await start(renewed);
  } catch (err) {
    if (err instanceof SessionError && err.status >= 400 && err.status < 500) {
      logout(err.code === 'handle_taken' ? `“${saved.handle}” is taken right now; pick another handle.` : `Your session ended: ${err.message}`);
      return;
    }
    await start(saved); // server unreachable: keep the session; the client reconnects when it is back
  }
}

void boot();
void typingTimer;
