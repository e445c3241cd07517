/**
 * Service worker: the offline app shell. It keeps the page's files (/, app.js, style.css,
 * favicon.svg) in a cache named after the build, answers them from the network when it can
 * (so a deploy shows at once) and from the cache when it cannot: a reload while the server or
 * the network is down still opens confab, which then shows that it is reconnecting. It never
 * touches the API, the WebSocket or the health endpoints.
 */
/// <reference lib="webworker" />
declare const __CONFAB_BUILD__: string;
const sw = self as unknown as ServiceWorkerGlobalScope;

const CACHE = `confab-shell-${__CONFAB_BUILD__}`;
const SHELL = ['/', '/app.js', '/style.css', '/favicon.svg'];

sw.addEventListener('install', (ev) => {
  ev.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      await cache.addAll(SHELL);
      await sw.skipWaiting();
    })(),
  );
});

sw.addEventListener('activate', (ev) => {
  ev.waitUntil(
    (async () => {
      for (const key of await caches.keys()) if (key.startsWith('confab-shell-') && key !== CACHE) await caches.delete(key);
      await sw.clients.claim();
    })(),
  );
});

function shellPath(req: Request): string | undefined {
  if (req.method !== 'GET') return undefined;
  const url = new URL(req.url);
  if (url.origin !== sw.location.origin) return undefined;
  if (req.mode === 'navigate') return '/';
  return SHELL.includes(url.pathname) ? url.pathname : undefined;
}

sw.addEventListener('fetch', (ev) => {
  const path = shellPath(ev.request);
  if (!path) return;
  ev.respondWith(
    (async () => {
      const cache = await caches.open(CACHE);
      try {
        const res = await fetch(ev.request);
        if (res.ok && ev.request.mode !== 'navigate') void cache.put(path, res.clone());
        else if (res.ok) void cache.put('/', res.clone());
        return res;
      } catch (err) {
        const hit = await cache.match(path);
        if (hit) return hit;
        throw err;
      }
    })(),
  );
});
