/**
 * Signed sessions: `base64url(JSON{u,h,e}) + "." + base64url(HMAC-SHA256)`.
 * The user id and handle in a session are the only identity the gateway trusts (G7).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Member } from '../protocol/frames.js';

export interface Session extends Member {
  /** Expiry, seconds since the epoch. */
  exp: number;
}

export class SessionSigner {
  constructor(private readonly secret: string, private readonly ttlSec: number) {}

  issue(user: Member, nowMs = Date.now()): { token: string; session: Session } {
    const session: Session = { id: user.id, handle: user.handle, exp: Math.floor(nowMs / 1000) + this.ttlSec };
    const body = Buffer.from(JSON.stringify({ u: session.id, h: session.handle, e: session.exp })).toString('base64url');
    return { token: `${body}.${this.mac(body)}`, session };
  }

  /** The session in a token, or undefined when it is malformed, forged or expired. Never throws. */
  verify(token: string | undefined | null, nowMs = Date.now()): Session | undefined {
    if (typeof token !== 'string' || token.length > 1024) return undefined;
    const dot = token.indexOf('.');
    if (dot <= 0) return undefined;
    const body = token.slice(0, dot);
    const sig = Buffer.from(token.slice(dot + 1), 'base64url');
    const want = Buffer.from(this.mac(body), 'base64url');
    if (sig.length !== want.length || !timingSafeEqual(sig, want)) return undefined;
    try {
      const p = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as { u?: unknown; h?: unknown; e?: unknown };
      if (typeof p.u !== 'string' || typeof p.h !== 'string' || typeof p.e !== 'number') return undefined;
      if (p.e * 1000 <= nowMs) return undefined;
      return { id: p.u, handle: p.h, exp: p.e };
    } catch {
      return undefined;
    }
  }

  private mac(body: string): string {
    return createHmac('sha256', this.secret).update(body).digest('base64url');
  }
}

export function newUserId(): string {
  return `u${randomBytes(8).toString('hex')}`;
}

/** The configured secret, or one generated once and kept in `<dataDir>/secret` (embedded mode). */
export function loadOrCreateSecret(configured: string | undefined, dataDir: string): string {
  if (configured) return configured;
  const file = join(dataDir, 'secret');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(dataDir, { recursive: true });
  const secret = randomBytes(32).toString('base64url');
  writeFileSync(file, secret, { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
  return secret;
}
