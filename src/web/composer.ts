/**
 * The message composer: the length counter near the server's limit, Enter to send, typing
 * notices, and a refused message's text put back in the box with the reason.
 */
import type { ClientError } from '../client/index.js';
import { setError } from './dom.js';
import { app } from './state.js';
import { ui } from './ui.js';
import { focusComposer } from './views.js';

const DEFAULT_MAX_TEXT = 2000;

function maxText(): number {
  return app.client?.welcome?.limits.maxTextChars ?? DEFAULT_MAX_TEXT;
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
  const { client, current } = app;
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
  if (app.client && app.current && ui.messageInput.value) app.client.typing(app.current);
});
