/**
 * The connection status bar, the offline banner with its retry countdown, the composer's
 * online/offline hint, and the screen-reader announcements (only what is new, batched).
 */
import type { StateChange } from '../client/index.js';
import { show } from './dom.js';
import { app } from './state.js';
import { ui } from './ui.js';

let countdown: ReturnType<typeof setInterval> | undefined;

/** Show a connection state (the SDK's `state` event). */
export function renderStatus(s: StateChange): void {
  stopCountdown();
  ui.status.dataset.state = s.state;
  ui.chat.dataset.state = s.state;
  ui.banner.dataset.state = s.state;
  const online = s.state === 'connected';
  ui.room.dataset.online = String(online);
  show(ui.banner, !online && app.client !== undefined && s.state !== 'idle');
  show(ui.retryNow, s.state === 'reconnecting' || s.state === 'offline' || s.state === 'connecting');
  show(ui.reconnect, s.state === 'closed' && app.client !== undefined);
  ui.countdown.textContent = '';
  switch (s.state) {
    case 'connected':
      ui.status.textContent = `connected to node ${s.node ?? '?'} in region ${s.region ?? '?'} over ${s.transport === 'fallback' ? 'HTTP fallback' : 'WebSocket'}`;
      ui.status.dataset.transport = s.transport ?? 'websocket';
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

/** The server's bus went down or came back while the socket stays open (the SDK's `bus` event). */
export function renderBus(bus: 'up' | 'down', connected: StateChange): void {
  ui.status.dataset.bus = bus;
  if (bus === 'down') ui.status.textContent = 'connected, but the server cannot deliver messages right now: they wait in your outbox';
  else renderStatus(connected);
}

/** Signed out: the bar says so and the banner goes away. */
export function renderSignedOut(): void {
  stopCountdown();
  show(ui.banner, false);
  ui.status.dataset.state = 'idle';
  ui.status.textContent = 'not signed in';
}

function stopCountdown(): void {
  clearInterval(countdown);
  countdown = undefined;
}

export function renderComposerHint(): void {
  const client = app.client;
  const online = client?.state === 'connected';
  ui.composerHint.textContent = online || !client ? 'Enter sends, Shift+Enter adds a line.' : 'Not connected: what you send waits here and goes out when the connection is back.';
  ui.messageInput.placeholder = online || !client ? 'Write a message…' : 'Write a message (it will wait until you are back online)…';
}

let announceQueue: string[] = [];
let announceTimer: ReturnType<typeof setTimeout> | undefined;

/** Tell a screen reader something new (batched: more than two at once are counted, not read). */
export function announce(text: string): void {
  announceQueue.push(text);
  announceTimer ??= setTimeout(() => {
    announceTimer = undefined;
    const q = announceQueue;
    announceQueue = [];
    ui.announcer.textContent = q.length <= 2 ? q.join('. ') : `${q.length} new messages`;
  }, 800);
}
