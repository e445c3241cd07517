/**
 * Client addresses for the per-address limits: which proxies are believed (CONFAB_TRUSTED_PROXIES,
 * CIDR ranges kept in node:net's BlockList), which header of theirs names the client
 * (CONFAB_CLIENT_IP_HEADER), and the key an address is counted under (IPv6 grouped per /64: one
 * subscriber usually holds a whole /64, so counting single IPv6 addresses would let one client
 * spread over 2^64 of them).
 */
import { BlockList, isIP, isIPv4, isIPv6 } from 'node:net';
import type { IncomingMessage } from 'node:http';

/** IPv4-mapped IPv6 addresses (::ffff:1.2.3.4) compare as their IPv4 form; a zone (`%eth0`) is dropped. */
export function normalizeIp(ip: string): string {
  const bare = ip.includes('%') ? ip.slice(0, ip.indexOf('%')) : ip;
  const lower = bare.toLowerCase();
  return lower.startsWith('::ffff:') && lower.includes('.') ? lower.slice(7) : lower;
}

/** The eight 16-bit groups of an IPv6 address (validated by node:net), or undefined when it is not one. */
function ipv6Groups(ip: string): number[] | undefined {
  if (!isIPv6(ip)) return undefined;
  let s = ip;
  const tail: number[] = [];
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  if (v4) {
    // an embedded IPv4 suffix (64:ff9b::1.2.3.4) is the last two groups
    tail.push((Number(v4[1]) << 8) | Number(v4[2]), (Number(v4[3]) << 8) | Number(v4[4]));
    s = s.slice(0, v4.index) + '0';
  }
  const [head, rest] = s.split('::') as [string, string | undefined];
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((h) => parseInt(h, 16)));
  const a = parse(head);
  const b = rest === undefined ? [] : parse(rest);
  if (v4) (rest === undefined ? a : b).pop();
  const groups = [...a, ...new Array<number>(8 - a.length - b.length - tail.length).fill(0), ...b, ...tail];
  return groups.length === 8 ? groups : undefined;
}

/**
 * The key an address is counted under by the per-address limits: IPv4 as is, IPv6 as its /64
 * (`2001:db8:0:1::/64`). Anything else (a unix socket, `unknown`) is its own key.
 */
export function addressKey(ip: string): string {
  const n = normalizeIp(ip);
  if (isIPv4(n)) return n;
  const g = ipv6Groups(n);
  if (!g) return n;
  return `${g.slice(0, 4).map((x) => x.toString(16)).join(':')}::/64`;
}

/** Parse one CONFAB_TRUSTED_PROXIES entry (`10.0.0.0/8`, `fdaa::/16`, `127.0.0.1`); throws Error with a reason. */
export function parseCidr(entry: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } {
  const [addr, bits, extra] = entry.trim().split('/');
  if (extra !== undefined || !addr) throw new Error(`not an address or CIDR range: ${JSON.stringify(entry)}`);
  const address = normalizeIp(addr);
  const v = isIP(address);
  if (v === 0) throw new Error(`not an IP address: ${JSON.stringify(addr)}`);
  const family = v === 4 ? 'ipv4' : 'ipv6';
  const max = v === 4 ? 32 : 128;
  if (bits === undefined) return { address, prefix: max, family };
  if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) throw new Error(`prefix must be 0-${max}: ${JSON.stringify(entry)}`);
  return { address, prefix: Number(bits), family };
}

/** Which client-address header a trusted proxy sets: `X-Forwarded-For` (HAProxy `option forwardfor`, most proxies) or `Fly-Client-IP` (Fly's proxy). */
export type ClientIpHeader = 'x-forwarded-for' | 'fly-client-ip';

/** The proxies whose client-address header is believed. */
export class TrustedProxies {
  private readonly list = new BlockList();
  readonly size: number;

  constructor(cidrs: readonly string[], readonly header: ClientIpHeader = 'x-forwarded-for') {
    for (const c of cidrs) {
      const r = parseCidr(c);
      if (r.prefix === (r.family === 'ipv4' ? 32 : 128)) this.list.addAddress(r.address, r.family);
      else this.list.addSubnet(r.address, r.prefix, r.family);
    }
    this.size = cidrs.length;
  }

  has(ip: string): boolean {
    if (this.size === 0) return false;
    const n = normalizeIp(ip);
    const v = isIP(n);
    return v !== 0 && this.list.check(n, v === 4 ? 'ipv4' : 'ipv6');
  }

  /**
   * The client's address: the peer, or, when the peer is a trusted proxy, the address its header
   * names: for X-Forwarded-For the right-most entry that is not itself a trusted proxy (entries to
   * its left were written by the client and are not believed); for Fly-Client-IP its one value.
   * A header that names no valid address leaves the peer.
   */
  clientIp(peerAddress: string | undefined, headers: IncomingMessage['headers']): string {
    const peer = normalizeIp(peerAddress ?? 'unknown');
    if (!this.has(peer)) return peer;
    const raw = headers[this.header];
    const value = Array.isArray(raw) ? raw.join(',') : raw;
    if (typeof value !== 'string') return peer;
    if (this.header === 'fly-client-ip') {
      const ip = normalizeIp(value.trim());
      return isIP(ip) !== 0 ? ip : peer;
    }
    const hops = value.split(',').map((h) => normalizeIp(h.trim()));
    for (let i = hops.length - 1; i >= 0; i--) {
      const h = hops[i]!;
      if (isIP(h) === 0) return peer; // a hop that is no address: the chain cannot be read further
      if (!this.has(h)) return h;
    }
    return peer;
  }
}
