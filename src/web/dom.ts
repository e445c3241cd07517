/** DOM helpers for the web UI. User data only ever goes in through text nodes (G7, S7). */

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

export function clock(ts: number): string {
  const d = new Date(ts);
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}

/** "sent N ms ago", switching to seconds/minutes for old alerts. */
export function agoText(ms: number): string {
  const n = Math.max(0, Math.round(ms));
  if (n < 10_000) return `sent ${n} ms ago`;
  if (n < 120_000) return `sent ${Math.round(n / 1000)} s ago`;
  return `sent ${Math.round(n / 60_000)} min ago`;
}

/** Keep a scrolled-to-bottom list at the bottom while appending. */
export function appendKeepingBottom(list: HTMLElement, item: HTMLElement): void {
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.append(item);
  if (atBottom) list.scrollTop = list.scrollHeight;
}
