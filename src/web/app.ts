/**
 * The confab web UI's entry: sign-in, starting and ending a session, the page-wide buttons, and
 * boot. It talks to the server only through the client SDK (plus POST /api/session for the
 * handle). Everything user-made is rendered as text. The parts: ui.ts (the page skeleton),
 * state.ts (what is held while signed in), status.ts (status bar, banner, announcements),
 * views.ts (the chat screen and room actions), paging.ts (history pages), composer.ts,
 * client-events.ts (SDK events to the page).
 */
import { ConfabClient, urlList } from '../client/index.js';
import { wireClient } from './client-events.js';
import './composer.js';
import { setError, show } from './dom.js';
import { BatchedStorage } from './persist.js';
import { type SavedSession, SessionError, claimSession, clearSession, handleProblem, refusalText, requestSession, saveSession, signOut } from './session.js';
import { app } from './state.js';
import { renderSignedOut } from './status.js';
import { Store } from './store.js';
import { ui } from './ui.js';
import { alerts, focusComposer, leaveCurrent, markRead, openRoom, refreshDirectory, renderTyping, savedCurrent, setCurrent, timeline } from './views.js';

/** A session token this close to its expiry is renewed before it is used (tokens last an hour by default). */
const RENEW_BEFORE_MS = 5 * 60 * 1000;
const DIRECTORY_EVERY_MS = 20_000;

let directoryTimer: ReturnType<typeof setInterval> | undefined;
const storage = new BatchedStorage(globalThis.localStorage, { intervalMs: 1000, immediate: (k) => k.endsWith(':outbox') });

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
  if (!app.session) throw new Error('no session');
  const expiring = app.session.expiresAt !== undefined && app.session.expiresAt - Date.now() < RENEW_BEFORE_MS;
  if (app.failedAttempts >= 2 || expiring) {
    try {
      app.session = await requestSession(app.session.handle, app.session.token);
      await saveSession(app.session);
    } catch (err) {
      if (err instanceof SessionError && err.status >= 400 && err.status < 500) {
        logout(err.code === 'handle_taken' ? refusalText(err, app.session?.handle ?? '') : `Your session ended: ${err.message}`);
        throw err;
      }
      /* server unreachable: try the socket with the token we have */
    }
  }
  return app.session.token;
}

async function start(s: SavedSession): Promise<void> {
  app.session = s;
  const urls = urlList(location.origin, await publicUrls);
  if (app.session !== s) return; // signed out meanwhile
  const store = new Store(`confab:${s.userId}`, storage);
  app.store = store;
  store.onTrim = (room, n) => {
    if (room === app.current) timeline.trimmed(n);
  };
  // `?transport=websocket|fallback` on the page's address forces one transport (default: auto)
  const forced = new URLSearchParams(location.search).get('transport');
  const transport = forced === 'websocket' || forced === 'fallback' ? forced : 'auto';
  const c = new ConfabClient({ url: urls, token: currentToken, storage, namespace: `confab:${s.userId}`, transport });
  app.client = c;
  ui.me.textContent = s.handle;
  show(ui.me, true);
  show(ui.logout, true);
  show(ui.login, false);
  show(ui.chat, true);
  show(ui.roomsToggle, true);
  alerts.setAllowed(s.perms?.alert !== false);
  wireClient(c, logout);

  if (c.rooms.length === 0) void c.join('lobby').catch(() => {});
  for (const r of c.rooms) store.room(r);
  const saved = savedCurrent();
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
  const c = app.client;
  app.client = undefined;
  c?.close();
  app.store?.save();
  storage.flush();
  clearSession(app.session?.userId);
  app.session = undefined;
  app.store = undefined;
  app.current = undefined;
  clearInterval(directoryTimer);
  show(ui.chat, false);
  show(ui.me, false);
  show(ui.logout, false);
  show(ui.roomsToggle, false);
  show(ui.login, true);
  setError(ui.loginError, reason);
  renderSignedOut();
  document.title = 'confab';
  ui.handleInput.focus();
}

// ---- forms and page-wide buttons ------------------------------------------------------------

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

ui.joinForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const name = ui.joinInput.value.trim().toLowerCase();
  if (!name) return;
  ui.joinInput.value = '';
  openRoom(name);
});

ui.leave.addEventListener('click', leaveCurrent);
ui.retryNow.addEventListener('click', () => app.client?.connect());
ui.reconnect.addEventListener('click', () => app.client?.connect());
ui.logout.addEventListener('click', () => {
  const token = app.session?.token;
  logout();
  if (token) void signOut(token);
});
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible') markRead();
  else app.store?.save();
});
addEventListener('pagehide', () => {
  app.store?.save();
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
