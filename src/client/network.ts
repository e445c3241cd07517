/**
 * The browser's online/offline events, when the platform has them (browsers; not Node).
 * Returns the function that stops listening, or undefined when there is nothing to listen to.
 */
export function watchNetwork(onOffline: () => void, onOnline: () => void): (() => void) | undefined {
  const g = globalThis as { addEventListener?: (t: string, f: () => void) => void; removeEventListener?: (t: string, f: () => void) => void };
  if (typeof g.addEventListener !== 'function' || typeof g.removeEventListener !== 'function') return undefined;
  g.addEventListener('offline', onOffline);
  g.addEventListener('online', onOnline);
  return () => {
    g.removeEventListener!('offline', onOffline);
    g.removeEventListener!('online', onOnline);
  };
}
