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

/**
 * A client's gateways, tried in turn: an attempt that never reached `welcome` moves on to the next
 * URL; one that worked is tried again first (behind a load balancer another node answers).
 */
export class UrlRotation {
  readonly #urls: string[];
  #i = 0;
  /** URLs (by index) whose attempt failed since the last `welcome`. */
  readonly #failed = new Set<number>();

  constructor(urls: readonly string[]) {
    this.#urls = [...urls];
  }

  /** The URL the next (or current) attempt uses. */
  get current(): string {
    return this.#urls[this.#i % this.#urls.length]!;
  }

  /** A `welcome`, or a new start: no URL counts as failed. */
  reset(): void {
    this.#failed.clear();
  }

  /** The current URL's attempt failed: move on; true when the next one was not tried yet in this outage. */
  moveOn(): boolean {
    this.#failed.add(this.#i % this.#urls.length);
    this.#i++;
    return !this.#failed.has(this.#i % this.#urls.length);
  }
}
