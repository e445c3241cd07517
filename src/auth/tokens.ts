/**
 * Tokens confab accepts:
 *  - its own anonymous session tokens: `base64url(JSON{u, h, e, s, o}) "." base64url(HMAC-SHA256)`
 *    with u = user id, h = handle, e = expiry (unix s), s = session id (kept across renewals, the
 *    revocation key), o = when the session chain began (unix s; bounds renewal);
 *  - JWTs from the operator's back end (`jose`): HS256 with a shared secret, or RS256/ES256 with a
 *    public key (PEM) or a JWKS file. `alg: none`, any other algorithm, a wrong key, an expired
 *    token and a token without `sub`, `name` or `exp` are refused.
 * The user id and handle in a verified token are the only identity the gateway trusts (G7).
 */
import { createHash, createHmac, createPublicKey, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createLocalJWKSet, errors as joseErrors, jwtVerify, type JSONWebKeySet, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { HANDLE_RE } from '../protocol/constants.js';
import type { Member } from '../protocol/frames.js';
import { ROOM_PATTERN_RE, type Grants } from './grants.js';

export interface Session extends Member {
  /** Expiry of the token, unix seconds. */
  exp: number;
  /** Session id: one per sign-in, kept across renewals; what sign-out revokes. */
  sid: string;
  /** `anon`: confab's own handle session; `app`: a JWT from the operator's back end. */
  kind: 'anon' | 'app';
  /** When the session chain began (unix s): renewals end at orig + CONFAB_SESSION_MAX_S. */
  orig: number;
  grants: Grants;
}

/** Why a token was refused: `session_expired` for a well-signed token past its expiry, else `unauthorized`. */
export type TokenRefusal = { code: 'unauthorized' | 'session_expired'; message: string };
export type Verified = { ok: true; session: Session } | ({ ok: false } & TokenRefusal);

const refuse = (code: TokenRefusal['code'], message: string): Verified => ({ ok: false, code, message });

export function newUserId(): string {
  return `u${randomBytes(8).toString('hex')}`;
}

export function newSessionId(): string {
  return randomBytes(9).toString('base64url');
}

/** confab's own session tokens (HMAC-SHA256 with CONFAB_SECRET). */
export class SessionSigner {
  constructor(
    private readonly secret: string,
    private readonly ttlSec: number,
    /** Longest a chain of renewals may run, from its first token (seconds). */
    private readonly maxSec = 7 * 86400,
  ) {}

  /**
   * A token for `user`. Without `chain` a new session begins (new sid, orig = now); with it the
   * session goes on (same sid and orig) and the expiry never passes orig + maxSec.
   */
  issue(user: Member, nowMs = Date.now(), chain?: { sid: string; orig: number }): { token: string; session: Session } {
    const now = Math.floor(nowMs / 1000);
    const sid = chain?.sid ?? newSessionId();
    const orig = chain?.orig ?? now;
    const exp = Math.min(now + this.ttlSec, orig + this.maxSec);
    const body = Buffer.from(JSON.stringify({ u: user.id, h: user.handle, e: exp, s: sid, o: orig })).toString('base64url');
    const session: Session = { id: user.id, handle: user.handle, exp, sid, kind: 'anon', orig, grants: { alert: true } };
    return { token: `${body}.${this.mac(body)}`, session };
  }

  /** When a chain that began at `orig` must end (unix s). */
  chainEnd(orig: number): number {
    return orig + this.maxSec;
  }

  /** The session in a token, or why it is refused. Never throws. Grants are the caller's to set. */
  check(token: string | undefined | null, nowMs = Date.now()): Verified {
    if (typeof token !== 'string' || token.length === 0) return refuse('unauthorized', 'no session token');
    if (token.length > 1024) return refuse('unauthorized', 'token too long');
    const dot = token.indexOf('.');
    if (dot <= 0 || token.indexOf('.', dot + 1) >= 0) return refuse('unauthorized', 'malformed session token');
    const body = token.slice(0, dot);
    const sig = Buffer.from(token.slice(dot + 1), 'base64url');
    const want = Buffer.from(this.mac(body), 'base64url');
    if (sig.length !== want.length || !timingSafeEqual(sig, want)) return refuse('unauthorized', 'session token signature does not verify');
    let p: { u?: unknown; h?: unknown; e?: unknown; s?: unknown; o?: unknown };
    try {
      p = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as typeof p;
    } catch {
      return refuse('unauthorized', 'malformed session token');
    }
    if (typeof p?.u !== 'string' || typeof p.h !== 'string' || typeof p.e !== 'number' || typeof p.s !== 'string' || typeof p.o !== 'number') {
      return refuse('unauthorized', 'session token lacks a claim (u, h, e, s, o)');
    }
    if (p.e * 1000 <= nowMs) return refuse('session_expired', 'the session token expired');
    return { ok: true, session: { id: p.u, handle: p.h, exp: p.e, sid: p.s, kind: 'anon', orig: p.o, grants: { alert: true } } };
  }

  /** The session, or undefined when the token is malformed, forged or expired. */
  verify(token: string | undefined | null, nowMs = Date.now()): Session | undefined {
    const r = this.check(token, nowMs);
    return r.ok ? r.session : undefined;
  }

  private mac(body: string): string {
    return createHmac('sha256', this.secret).update(body).digest('base64url');
  }
}

export interface AppTokenConfig {
  /** HS256 shared secret (CONFAB_JWT_SECRET). */
  secret?: string;
  /** Path to a PEM public key, RSA (RS256) or EC P-256 (ES256) (CONFAB_JWT_PUBLIC_KEY). */
  publicKeyFile?: string;
  /** Path to a JWKS file (CONFAB_JWT_JWKS); RS256 and ES256 keys. */
  jwksFile?: string;
  issuer?: string;
  audience?: string;
}

/** Verifies JWTs minted by the operator's back end. */
export class AppTokens {
  private readonly key: Uint8Array | KeyObject | JWTVerifyGetKey;
  private readonly algorithms: string[];

  private constructor(
    key: Uint8Array | KeyObject | JWTVerifyGetKey,
    algorithms: string[],
    private readonly cfg: AppTokenConfig,
  ) {
    this.key = key;
    this.algorithms = algorithms;
  }

  /** The verifier the config asks for, or undefined when no app-token key is configured. Throws on an unreadable key. */
  static fromConfig(cfg: AppTokenConfig): AppTokens | undefined {
    if (cfg.secret !== undefined) return new AppTokens(new TextEncoder().encode(cfg.secret), ['HS256'], cfg);
    if (cfg.publicKeyFile !== undefined) {
      const key = createPublicKey(readFileSync(cfg.publicKeyFile, 'utf8'));
      const alg = key.asymmetricKeyType === 'rsa' ? 'RS256' : key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1' ? 'ES256' : undefined;
      if (!alg) throw new Error(`CONFAB_JWT_PUBLIC_KEY: an RSA or EC P-256 public key is needed, got ${key.asymmetricKeyType ?? 'unknown'}`);
      return new AppTokens(key, [alg], cfg);
    }
    if (cfg.jwksFile !== undefined) {
      const jwks = JSON.parse(readFileSync(cfg.jwksFile, 'utf8')) as JSONWebKeySet;
      if (!Array.isArray(jwks?.keys) || jwks.keys.length === 0) throw new Error('CONFAB_JWT_JWKS: no keys in the file');
      return new AppTokens(createLocalJWKSet(jwks), ['RS256', 'ES256'], cfg);
    }
    return undefined;
  }

  /** A JWT's session, or why it is refused. Never throws. */
  async check(token: string, nowMs = Date.now()): Promise<Verified> {
    if (token.length > 8192) return refuse('unauthorized', 'token too long');
    let payload: JWTPayload;
    try {
      const opts = {
        algorithms: this.algorithms,
        requiredClaims: ['sub', 'exp'],
        currentDate: new Date(nowMs),
        ...(this.cfg.issuer ? { issuer: this.cfg.issuer } : {}),
        ...(this.cfg.audience ? { audience: this.cfg.audience } : {}),
      };
      const r = typeof this.key === 'function' ? await jwtVerify(token, this.key, opts) : await jwtVerify(token, this.key, opts);
      payload = r.payload;
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) return refuse('session_expired', 'the app token expired');
      if (err instanceof joseErrors.JOSEAlgNotAllowed) return refuse('unauthorized', 'app token algorithm not allowed');
      if (err instanceof joseErrors.JWSSignatureVerificationFailed) return refuse('unauthorized', 'app token signature does not verify');
      if (err instanceof joseErrors.JWTClaimValidationFailed) return refuse('unauthorized', `app token claim ${err.claim}: ${err.reason}`);
      if (err instanceof joseErrors.JOSEError) return refuse('unauthorized', `app token refused: ${err.code}`);
      return refuse('unauthorized', 'malformed app token');
    }
    return appSession(payload, token);
  }
}

function stringList(v: unknown): string[] | undefined | false {
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.length > 256 || !v.every((x) => typeof x === 'string' && ROOM_PATTERN_RE.test(x))) return false;
  return v as string[];
}

/** The session an app token's claims describe (claims documented in docs/auth.md). */
function appSession(p: JWTPayload, token: string): Verified {
  const sub = p.sub;
  if (typeof sub !== 'string' || sub.length === 0 || sub.length > 128 || /[\u0000-\u001f]/.test(sub)) return refuse('unauthorized', 'app token claim sub: 1-128 characters');
  if (sub.startsWith('api:')) return refuse('unauthorized', 'app token claim sub: the prefix api: is reserved for the publish API');
  const name = (p as { name?: unknown }).name;
  if (typeof name !== 'string') return refuse('unauthorized', 'app token claim name: missing');
  if (!HANDLE_RE.test(name)) return refuse('unauthorized', `app token claim name: must match ${HANDLE_RE}`);
  const rooms = stringList((p as { rooms?: unknown }).rooms);
  const read = stringList((p as { read?: unknown }).read);
  if (rooms === false || read === false) return refuse('unauthorized', 'app token claims rooms/read: arrays of room names or prefixes ending in *');
  const alert = (p as { alert?: unknown }).alert;
  if (alert !== undefined && typeof alert !== 'boolean') return refuse('unauthorized', 'app token claim alert: true or false');
  const jti = typeof p.jti === 'string' && p.jti.length > 0 && p.jti.length <= 128 ? p.jti : undefined;
  const sid = jti ? `j:${jti}` : `t:${createHash('sha256').update(token).digest('base64url').slice(0, 22)}`;
  const grants: Grants = { alert: alert === true, ...(rooms ? { rooms } : {}), ...(read ? { read } : {}) };
  return { ok: true, session: { id: sub, handle: name, exp: p.exp!, sid, kind: 'app', orig: typeof p.iat === 'number' ? p.iat : p.exp!, grants } };
}

/** A JWT has three dot-separated parts; confab's own tokens two. */
export function looksLikeJwt(token: string): boolean {
  return token.split('.').length === 3;
}
