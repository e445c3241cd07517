/**
 * Alerts to everyone, shown like notifications: the newest two undismissed ones above the room
 * (the rest one click away), each with a live age and a dismiss button; alerts replayed on join
 * (sent while this user was away) are marked "missed"; sending one asks for confirmation first,
 * and the form is hidden for users the server does not allow to alert.
 */
import type { ChatMessage } from '../client/index.js';
import { agoText, byTestId, el } from './dom.js';
import type { AlertView, Store } from './store.js';

const COLLAPSED = 2;

export interface AlertHooks {
  store(): Store | undefined;
  send(text: string): void;
  announce(text: string): void;
}

export class AlertsView {
  readonly #ui = {
    section: byTestId('alert-section'),
    form: byTestId<HTMLFormElement>('alert-form'),
    input: byTestId<HTMLInputElement>('alert-input'),
    confirmBox: byTestId('alert-confirm-box'),
    confirmText: byTestId('alert-confirm-text'),
    confirm: byTestId<HTMLButtonElement>('alert-confirm'),
    cancel: byTestId<HTMLButtonElement>('alert-cancel'),
    box: byTestId('alerts-box'),
    list: byTestId('alerts'),
    more: byTestId<HTMLButtonElement>('alerts-more'),
    dismissAll: byTestId<HTMLButtonElement>('alerts-dismiss-all'),
  };
  readonly #hooks: AlertHooks;
  #expanded = false;
  #pending: string | undefined;

  constructor(hooks: AlertHooks) {
    this.#hooks = hooks;
    const ui = this.#ui;
    ui.form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const text = ui.input.value.trim();
      if (!text) return;
      this.#pending = text;
      ui.confirmText.textContent = `Send “${text}” to everyone online, on every node, right now?`;
      ui.confirmBox.hidden = false;
      ui.confirm.focus();
    });
    ui.confirm.addEventListener('click', () => {
      const text = this.#pending;
      this.#closeConfirm();
      if (!text) return;
      ui.input.value = '';
      this.#hooks.send(text);
    });
    ui.cancel.addEventListener('click', () => this.#closeConfirm());
    ui.confirmBox.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape') this.#closeConfirm();
    });
    ui.more.addEventListener('click', () => {
      this.#expanded = !this.#expanded;
      this.render();
    });
    ui.dismissAll.addEventListener('click', () => {
      const s = this.#hooks.store();
      if (!s) return;
      s.dismiss(this.#visible(s).map((a) => a.m.id));
      this.render();
    });
  }

  /** Show or hide the "alert everyone" form (the server's `perms.alert`). */
  setAllowed(allowed: boolean): void {
    this.#ui.section.hidden = !allowed;
    if (!allowed) this.#closeConfirm(false);
  }

  /** A new alert from the SDK; `missed` when it was sent before this page joined. */
  add(m: ChatMessage, missed: boolean): void {
    const s = this.#hooks.store();
    const a = s?.addAlert(m, missed);
    if (!a) return;
    if (!missed) this.#hooks.announce(`Alert from ${m.from.handle}: ${m.text}`);
    this.render();
  }

  render(): void {
    const s = this.#hooks.store();
    const all = s ? this.#visible(s) : [];
    const shown = this.#expanded ? all : all.slice(0, COLLAPSED);
    this.#ui.list.replaceChildren(...shown.map((a) => this.#node(a)));
    this.#ui.box.hidden = all.length === 0;
    const hiddenCount = all.length - shown.length;
    this.#ui.more.hidden = all.length <= COLLAPSED;
    this.#ui.more.textContent = this.#expanded ? 'Show fewer' : `Show ${hiddenCount} more`;
    this.#ui.dismissAll.hidden = all.length < 2;
  }

  /** Refresh the ages (once a second). */
  tick(): void {
    const now = Date.now();
    for (const span of this.#ui.list.querySelectorAll<HTMLElement>('[data-ts]')) {
      const ts = Number(span.dataset.ts);
      span.textContent = agoText(now - ts);
    }
  }

  #visible(s: Store): AlertView[] {
    return s.alerts.filter((a) => !s.dismissed.has(a.m.id));
  }

  #closeConfirm(refocus = true): void {
    this.#pending = undefined;
    this.#ui.confirmBox.hidden = true;
    if (refocus && !this.#ui.section.hidden) this.#ui.input.focus();
  }

  #node(a: AlertView): HTMLElement {
    const m = a.m;
    const dismiss = el('button', { type: 'button', class: 'dismiss', 'data-testid': 'alert-dismiss', 'aria-label': `Dismiss alert from ${m.from.handle}` }, '×');
    dismiss.addEventListener('click', () => {
      this.#hooks.store()?.dismiss([m.id]);
      this.render();
    });
    return el(
      'li',
      { class: a.missed ? 'missed' : undefined, 'data-testid': 'alert', 'data-id': m.id, 'data-missed': String(a.missed) },
      el(
        'div',
        { class: 'body' },
        ...(a.missed ? [el('span', { class: 'tag', 'data-testid': 'alert-missed' }, 'missed')] : []),
        el('span', { class: 'from', 'data-testid': 'alert-from' }, m.from.handle),
        el('span', { class: 'text', 'data-testid': 'alert-text' }, m.text),
        el(
          'span',
          { class: 'meta', 'data-testid': 'alert-meta' },
          `node ${m.from.node} · region ${m.from.region} · `,
          el('span', { 'data-ts': String(m.ts) }, agoText(Date.now() - m.ts)),
        ),
      ),
      dismiss,
    );
  }
}
