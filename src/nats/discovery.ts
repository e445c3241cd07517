/**
 * Seed-style discovery: NATSAPPHOST=name connects to every address that
 * `name.internal` resolves to (Fly 6PN: one AAAA record per running NATS
 * instance). A name that already contains a dot is used as given, and a bare
 * name without an `.internal` record falls back to the name itself, so tests
 * and plain DNS (e.g. `localhost`) work too.
 */
import { lookup } from 'node:dns/promises';
import { ConfigError } from '../config/config.js';

export type LookupAll = (host: string) => Promise<{ address: string; family: number }[]>;

const defaultLookup: LookupAll = (host) => lookup(host, { all: true, verbatim: true });

/** The DNS names tried for NATSAPPHOST, in order. */
export function candidateNames(appHost: string): string[] {
  return appHost.includes('.') ? [appHost] : [`${appHost}.internal`, appHost];
}

/** nats:// URL for one resolved address (IPv6 in brackets). */
export function addressUrl(address: string, port: number): string {
  return address.includes(':') ? `nats://[${address}]:${port}` : `nats://${address}:${port}`;
}

/** Resolve NATSAPPHOST to one nats:// URL per distinct address. Throws ConfigError when nothing resolves. */
export async function resolveAppHost(appHost: string, port: number, lookupAll: LookupAll = defaultLookup): Promise<string[]> {
  const errors: string[] = [];
  for (const name of candidateNames(appHost)) {
    try {
      const addrs = await lookupAll(name);
      const urls = [...new Set(addrs.map((a) => addressUrl(a.address, port)))];
      if (urls.length > 0) return urls;
      errors.push(`${name}: no addresses`);
    } catch (e) {
      errors.push(`${name}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  throw new ConfigError('NATSAPPHOST', `cannot resolve ${appHost} (${errors.join('; ')})`);
}
