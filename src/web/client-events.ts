/**
 * What the SDK reports, turned into the page: messages, joins, presence, typing, gaps, alerts,
 * session renewals and the errors that end the session. Events of a client that was replaced
 * (signed out, or signed in again) are ignored.
 */
import type { ChatMessage, ConfabClient, JoinedEvent, StateChange } from '../client/index.js';
import { setError } from './dom.js';
import { saveSession } from './session.js';
import { app } from './state.js';
import { announce, renderBus, renderStatus } from './status.js';
import { mentions, newKey, type TimelineItem } from './store.js';
import { ui } from './ui.js';
import { alerts, refreshDirectory, renderMembers, renderOutbox, renderRooms, renderTyping, roomList, scheduleRooms, timeline } from './views.js';

/** Subscribe the page to one client's events; `logout` ends the session with a reason shown at sign-in. */
export function wireClient(c: ConfabClient, logout: (reason: string) => void): void {
  const live = (): boolean => c === app.client;
  let lastWelcome: { node: string; region: string } | undefined;
  /** Offsets of `_alerts` at or below this were sent before this page joined: shown as missed. */
  let alertsLast = Number.POSITIVE_INFINITY;

  c.on('state', (st) => {
    if (!live()) return;
    if (st.state === 'connected') app.failedAttempts = 0;
    else if (st.state === 'reconnecting' && st.prev === 'connecting') app.failedAttempts++;
    renderStatus(st);
  });
  c.on('bus', (b) => {
    if (live()) renderBus(b.bus, { state: c.state, prev: c.state, node: lastWelcome?.node, region: lastWelcome?.region, transport: c.transport } as StateChange);
  });
  c.on('welcome', (w) => {
    if (!live()) return;
    lastWelcome = w;
    ui.me.textContent = w.user.handle;
    if (typeof w.perms?.alert === 'boolean') alerts.setAllowed(w.perms.alert);
    roomList.setDirectory(w.rooms.map((name) => ({ name, members: 0 })));
    renderRooms();
    void refreshDirectory();
  });
  c.on('session', (x) => {
    if (!live() || !app.session) return;
    app.session = { ...app.session, expiresAt: x.exp * 1000, perms: x.perms };
    void saveSession(app.session);
    alerts.setAllowed(x.perms.alert);
  });
  c.on('token', (x) => {
    // the SDK renewed the session on the open socket: keep the new token for the next start
    if (!live() || !app.session) return;
    app.session = { ...app.session, token: x.token };
    void saveSession(app.session);
  });
  c.on('joined', (j) => {
    if (!live()) return;
    if (j.room === '_alerts') alertsLast = j.last;
    else onJoined(j);
  });
  c.on('message', (m) => live() && onMessage(m));
  c.on('alert', (m) => live() && alerts.add(m, m.offset <= alertsLast));
  c.on('presence', (p) => {
    if (!live()) return;
    const store = app.store!;
    const r = store.room(p.room);
    const had = r.members.has(p.user.id);
    if (p.event === 'join') r.members.set(p.user.id, p.user.handle);
    else r.members.delete(p.user.id);
    if (r.count !== undefined && (p.event === 'join') !== had) r.count = Math.max(0, r.count + (p.event === 'join' ? 1 : -1));
    if (p.room === app.current) renderMembers();
    if (p.user.id === app.session?.userId || (p.event === 'join') === had) return;
    store.add(p.room, { key: newKey(), kind: 'notice', text: `${p.user.handle} ${p.event === 'join' ? 'joined' : 'left'}`, cls: 'notice' });
    if (p.room === app.current) timeline.appended();
  });
  c.on('typing', (t) => {
    if (!live() || t.user.id === app.session?.userId) return;
    app.store!.room(t.room).typers.set(t.user.id, { handle: t.user.handle, until: Date.now() + 4000 });
    if (t.room === app.current) renderTyping();
  });
  c.on('gap', (g) => {
    if (!live()) return;
    const store = app.store!;
    let text: string;
    if (g.reset) {
      store.clearMessages(g.room);
      text = 'The room history was reset on the server.';
    } else text = g.from === g.to ? `Message ${g.from} is no longer available.` : `Messages ${g.from}–${g.to} are no longer available.`;
    store.add(g.room, { key: newKey(), kind: 'notice', text, cls: 'gap' });
    if (g.room === app.current) {
      if (g.reset) timeline.show(store.room(g.room));
      else timeline.appended();
    }
  });
  c.on('outbox', () => live() && renderOutbox());
  c.on('left', () => live() && renderRooms());
  c.on('error', (err) => {
    if (!live()) return;
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
      logout(`“${app.session?.handle ?? ''}” is taken by another user right now; pick another handle.`);
      return;
    }
    // a message refused for good is reported where it was sent (see the composer); `later` refusals are resent by the SDK
    if (err.room && !err.id && err.retry === 'never') setError(ui.joinError, `Could not join ${err.room}: ${err.message}`);
    else if (err.code === 'rate_limited') setError(ui.sendError, 'Slow down a little: too many messages.');
  });
}

function onMessage(m: ChatMessage): void {
  const s = app.store!;
  const r = s.room(m.room);
  const item: TimelineItem = { key: newKey(), kind: 'msg', m };
  s.add(m.room, item);
  const mine = m.from.user === app.session?.userId;
  const seen = m.room === app.current && timeline.atBottom && document.visibilityState === 'visible';
  if (!mine && !seen) {
    r.unread++;
    if (mentions(m.text, app.session?.handle)) r.mentions++;
    if (r.firstUnread === undefined && m.room !== app.current) r.firstUnread = item.key;
    scheduleRooms();
  }
  if (m.room === app.current) {
    timeline.appended();
    if (!mine) announce(`${m.from.handle}: ${m.text}`);
    if (r.typers.size) renderTyping();
  }
}

function onJoined(j: JoinedEvent): void {
  const store = app.store!;
  const r = store.room(j.room);
  r.members = new Map(j.members.map((m) => [m.id, m.handle]));
  r.count = j.count;
  const missed = j.missed;
  if (missed && missed.to >= missed.from) {
    store.add(j.room, { key: newKey(), kind: 'missed', from: missed.from, to: missed.to });
    if (j.room === app.current) timeline.appended();
  }
  if (j.room === app.current) renderMembers();
  renderRooms();
}
