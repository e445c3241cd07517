import { socketUrl } from './wire.js';

/** The socket endpoint a URL names, without the token: http://h:1 and ws://h:1/ws are the same endpoint. */
export function endpointKey(url: string): string {
  const u = new URL(socketUrl(url, 'x'));
  u.searchParams.delete('token');
  return u.toString();
}

/**
 * A client's URL list: `first` (e.g. the page's own origin), then `more` in their order, dropping
 * repeats of the same endpoint and anything that is not an http(s) or ws(s) URL.
 */
export function urlList(first: string, more: readonly unknown[] = []): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const u of [first, ...more]) {
    if (typeof u !== 'string') continue;
    let key: string;
    try {
      key = endpointKey(u);
    } catch {
      continue;
    }
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(u);
  }
  return out;
}
