/**
 * Test kit: a headless Chromium (playwright-core driving /usr/bin/chromium) that is always closed.
 *
 *   const kit = await startBrowser();
 *   after(() => kit.close());
 *   const page = await kit.newPage();            // a fresh context (own localStorage) per page
 *
 * `newPage` records page errors, console errors and CSP violations in `kit.problems(page)`.
 */
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM_PATH = '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
];

export interface BrowserKit {
  browser: Browser;
  /** A new page in a new, isolated browser context. */
  newPage(): Promise<Page>;
  /** Page errors, console errors and CSP violations seen on a page so far. */
  problems(page: Page): string[];
  /** Close every context and the browser (idempotent). */
  close(): Promise<void>;
}

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true, timeout: 30_000 });
}

export async function startBrowser(): Promise<BrowserKit> {
  const browser = await launchBrowser();
  const contexts = new Set<BrowserContext>();
  const seen = new WeakMap<Page, string[]>();
  let closed = false;
  return {
    browser,
    async newPage() {
      const ctx = await browser.newContext();
      contexts.add(ctx);
      ctx.on('close', () => contexts.delete(ctx));
      const page = await ctx.newPage();
      const problems: string[] = [];
      seen.set(page, problems);
      page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
      page.on('console', (msg) => {
        const text = msg.text();
        // A failed WebSocket or fetch while the server is down is expected; anything else is a problem.
        if (msg.type() === 'error' && !/WebSocket connection|Failed to load resource|net::ERR_/i.test(text)) problems.push(`console: ${text}`);
        if (/Content Security Policy/i.test(text)) problems.push(`csp: ${text}`);
      });
      return page;
    },
    problems(page) {
      return [...(seen.get(page) ?? [])];
    },
    async close() {
      if (closed) return;
      closed = true;
      await Promise.allSettled([...contexts].map((c) => c.close()));
      await browser.close().catch(() => {});
    },
  };
}

/** Run `fn` with a browser kit that is closed afterwards, whatever happens. */
export async function withBrowser<T>(fn: (kit: BrowserKit) => Promise<T>): Promise<T> {
  const kit = await startBrowser();
  try {
    return await fn(kit);
  } finally {
    await kit.close();
  }
}
