/** DOM helpers for the web UI. User data only ever goes in through text nodes and checked hrefs (G7, S7). */

type Attrs = Record<string, string | undefined>;

/** Create an element; string children become text nodes (never parsed as HTML). */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined) continue;
    if (k === 'class') node.className = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(typeof c === 'string' ? document.createTextNode(c) : c);
  return node;
}

/** The element with data-testid=id (the page's fixed skeleton; throws if the HTML is out of date). */
export function byTestId<T extends HTMLElement = HTMLElement>(id: string): T {
  const node = document.querySelector<T>(`[data-testid="${id}"]`);
  if (!node) throw new Error(`missing element ${id}`);
  return node;
}

export function show(node: HTMLElement, visible: boolean): void {
  node.hidden = !visible;
}

/** Show an error text in a paragraph (empty hides it). */
export function setError(node: HTMLElement, text: string | undefined): void {
  node.textContent = text ?? '';
  node.hidden = !text;
}

const pad = (n: number): string => String(n).padStart(2, '0');

export function clock(ts: number): string {
  const d = new Date(ts);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** A `<time>` with the short clock as text and the full local date and time on hover. */
export function timeEl(ts: number, cls = 'time'): HTMLTimeElement {
  const d = new Date(ts);
  return el('time', { class: cls, datetime: d.toISOString(), title: d.toLocaleString(undefined, { dateStyle: 'full', timeStyle: 'medium' }) }, clock(ts));
}

/** Local calendar day of a timestamp, as a comparable key. */
export function dayKey(ts: number): string {
  const d = new Date(ts);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** "Today", "Yesterday" or the full date, for a date separator. */
export function dayLabel(ts: number, now = Date.now()): string {
  const k = dayKey(ts);
  if (k === dayKey(now)) return 'Today';
  if (k === dayKey(now - 86_400_000)) return 'Yesterday';
  return new Date(ts).toLocaleDateString(undefined, { weekday: 'long', year: 'numeric', month: 'long', day: 'numeric' });
}

/** "sent N ms ago", switching to seconds, minutes, hours for older alerts. */
export function agoText(ms: number): string {
  const n = Math.max(0, Math.round(ms));
  if (n < 10_000) return `sent ${n} ms ago`;
  if (n < 120_000) return `sent ${Math.round(n / 1000)} s ago`;
  if (n < 7_200_000) return `sent ${Math.round(n / 60_000)} min ago`;
  return `sent ${Math.round(n / 3_600_000)} h ago`;
}

const URL_RE = /\bhttps?:\/\/[^\s<>"'`]+/gi;
const TRAILING = /[.,;:!?)\]}'"]+$/;

/**
 * Text with its http(s) URLs as links: each piece is a text node or an `<a>` whose href went
 * through the URL parser (only http: and https:), opening in a new tab without an opener or referrer.
 */
export function linkify(text: string): (Node | string)[] {
  const out: (Node | string)[] = [];
  let last = 0;
  for (const m of text.matchAll(URL_RE)) {
    let raw = m[0];
    const trail = TRAILING.exec(raw);
    if (trail) raw = raw.slice(0, raw.length - trail[0].length);
    const start = m.index;
    let href: string | undefined;
    try {
      const u = new URL(raw);
      if (u.protocol === 'http:' || u.protocol === 'https:') href = u.href;
    } catch {
      href = undefined;
    }
    if (!href || raw.length === 0) continue;
    if (start > last) out.push(text.slice(last, start));
    out.push(el('a', { href, target: '_blank', rel: 'noopener noreferrer' }, raw));
    last = start + raw.length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}
