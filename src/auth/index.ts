/**
 * Identity and access for one gateway (docs/auth.md): which tokens it accepts (tokens.ts), who
 * holds which handle cluster-wide (handles.ts), which sessions are revoked (revocations.ts), and
 * what a session may do (grants.ts). The gateway asks it at the upgrade, at `POST`/`DELETE
 * /api/session`, for every `auth` frame, and before join, pub and alert.
 */
import type { Logger } from 'pino';
import type { Bus, BusSubscription } from '../bus/types.js';
import type { Config } from '../config/config.js';
import type { History } from '../history/types.js';
import type { Member, Perms } from '../protocol/frames.js';
import { RoomPolicy, type Grants } from './grants.js';
import { HandleRegistry, type Holder } from './handles.js';
import { Revocations, type RevokeReason } from './revocations.js';
import { skeleton } from './skeleton.js';
import { AppTokens, looksLikeJwt, newSessionId, newUserId, SessionSigner, type Session } from './tokens.js';

export { RoomPolicy, type Grants } from './grants.js';
export { skeleton } from './skeleton.js';
export { AppTokens, SessionSigner, newUserId, type Session } from './tokens.js';
export { loadOrCreateSecret, readSecretFile } from './secrets.js';

/** The node-wide bus subject of auth news (revocations, handle holders). */
export const AUTH_SUBJECT = 'ctl.auth';

/** A refusal with the HTTP status and code the upgrade and the session endpoints answer. */
export interface AuthRefusal {
  ok: false;
  status: 400 | 401 | 403 | 409 | 503;
  code: 'unauthorized' | 'session_expired' | 'session_revoked' | 'handle_taken' | 'forbidden' | 'bus_unavailable' | 'bad_request';
  message: string;
}
export type AuthResult = { ok: true; session: Session } | AuthRefusal;

const no = (status: AuthRefusal['status'], code: AuthRefusal['code'], message: string): AuthRefusal => ({ ok: false, status, code, message });

export class Auth {
  readonly signer: SessionSigner;
  readonly app: AppTokens | undefined;
  readonly policy: RoomPolicy;
  readonly handles: HandleRegistry;
  readonly revocations: Revocations;
  private readonly revokedListeners = new Set<(sid: string, why: RevokeReason) => void>();
  private sub?: BusSubscription;
  private offStatus?: () => void;
  private readonly enc = new TextEncoder();
  private readonly dec = new TextDecoder();

  constructor(
    private readonly config: Config,
    private readonly bus: Bus,
    history: History,
    private readonly log: Logger,
    secret: string,
  ) {
    this.signer = new SessionSigner(secret, config.sessionTtlSec, config.sessionMaxSec);
    this.app = AppTokens.fromConfig({
      ...(config.jwtSecret !== undefined ? { secret: config.jwtSecret } : {}),
      ...(config.jwtPublicKey !== undefined ? { publicKeyFile: config.jwtPublicKey } : {}),
      ...(config.jwtJwks !== undefined ? { jwksFile: config.jwtJwks } : {}),
      ...(config.jwtIssuer !== undefined ? { issuer: config.jwtIssuer } : {}),
      ...(config.jwtAudience !== undefined ? { audience: config.jwtAudience } : {}),
    });
    this.policy = new RoomPolicy(config.privatePrefix, config.privateRooms);
    if (config.historyMaxAgeMs > 0 && config.historyMaxAgeMs < config.sessionTtlSec * 1000) {
      // handle claims and sign-outs live in the History: they must outlive a token
      log.warn({ historyMaxAgeS: config.historyMaxAgeMs / 1000, sessionTtlS: config.sessionTtlSec }, 'CONFAB_HISTORY_MAX_AGE_S is shorter than CONFAB_SESSION_TTL_S: a handle claim or a sign-out can be dropped before the tokens it concerns expire');
    }
    const announce = (msg: object) => this.bus.publish(AUTH_SUBJECT, this.enc.encode(`${config.node}\n${JSON.stringify(msg)}`));
    this.handles = new HandleRegistry({ history, node: config.node, region: config.region, announce });
    this.revocations = new Revocations({ history, node: config.node, region: config.region, announce, onRevoked: (sid, why) => this.emitRevoked(sid, why) });
  }

  /** Subscribe to the auth channel and read the revocation list (again whenever the bus comes back). */
  async start(): Promise<void> {
    this.sub = this.bus.subscribe(AUTH_SUBJECT, (d) => this.onWire(d));
    this.offStatus = this.bus.onStatus((s) => {
      if (s === 'up') this.revocations.load().catch((err: unknown) => this.log.warn({ err }, 'reading the revocation list failed'));
    });
    try {
      await this.revocations.load();
    } catch (err) {
      this.log.warn({ err }, 'reading the revocation list failed at start; read again when the bus comes back');
    }
  }

  stop(): void {
    this.sub?.unsubscribe();
    this.offStatus?.();
    this.revocations.stop();
  }

  /** Listen for revoked sessions (close their sockets); returns the unsubscribe function. */
  onRevoked(f: (sid: string, why: RevokeReason) => void): () => void {
    this.revokedListeners.add(f);
    return () => this.revokedListeners.delete(f);
  }

  /** What a session may do, as the client is told (welcome, authed, POST /api/session). */
  perms(s: Session): Perms {
    return { alert: this.grantsOf(s).alert };
  }

  /** A session's grants: an app token's claims, or the anonymous defaults (CONFAB_ANON_ALERTS). */
  grantsOf(s: Session): Grants {
    return s.kind === 'app' ? s.grants : { alert: this.config.anonAlerts };
  }

  canJoin(s: Session, room: string): boolean {
    return this.policy.canJoin(this.grantsOf(s), room);
  }

  canPublish(s: Session, room: string): boolean {
    return this.policy.canPublish(this.grantsOf(s), room);
  }

  /**
   * `forbidden` when the session may not alert, else undefined. The alert rate is the user's, held
   * across sockets and nodes by the gateway's UserLimits (CONFAB_ALERT_RATE_PER_MIN).
   */
  alertRefusal(s: Session): 'forbidden' | undefined {
    return this.grantsOf(s).alert ? undefined : 'forbidden';
  }

  /** Verify a token's signature, expiry and revocation (no handle check). */
  async verify(token: string | undefined): Promise<AuthResult> {
    if (!token) return no(401, 'unauthorized', 'missing session token');
    let r;
    if (looksLikeJwt(token)) {
      if (!this.app) return no(401, 'unauthorized', 'app tokens are not enabled on this server (CONFAB_JWT_*)');
      r = await this.app.check(token);
    } else {
      if (!this.config.anonymous) return no(401, 'unauthorized', 'anonymous sessions are off on this server: use your application token');
      r = this.signer.check(token);
    }
    if (!r.ok) return no(401, r.code, r.message);
    if (this.revocations.has(r.session.sid)) return no(401, 'session_revoked', 'this session was signed out');
    return { ok: true, session: r.session };
  }

  /** The upgrade's and the `auth` frame's check: a valid token whose user holds its handle. */
  async authenticate(token: string | undefined): Promise<AuthResult> {
    const v = await this.verify(token);
    if (!v.ok) return v;
    const s = v.session;
    // confab's own tokens are issued only after their claim succeeded, and a claim ends only with its
    // session (expiry, or a sign-out or rename that revokes the sid): signature, expiry and the
    // revocation list prove the handle. App tokens claim it at their first socket.
    if (s.kind === 'anon') return v;
    try {
      const held = await this.handles.ensure(s, s.exp);
      if (!held.ok) return no(409, 'handle_taken', takenMessage(s.handle, held.holder));
    } catch (err) {
      this.log.warn({ err }, 'handle check failed');
      return no(503, 'bus_unavailable', 'cannot check the handle right now; retry');
    }
    return v;
  }

  /**
   * POST /api/session: a new anonymous session for `handle`, or (with `token`) the same session
   * renewed — the same handle — or renamed (the old handle is released and the old session
   * replaced). An expired or invalid token is refused, never silently swapped for a new identity.
   */
  async issue(handle: string, token: string | undefined): Promise<{ token: string; session: Session } | AuthRefusal> {
    if (!this.config.anonymous) return no(403, 'forbidden', 'anonymous sessions are off on this server: use your application token');
    let prev: Session | undefined;
    if (token !== undefined) {
      if (looksLikeJwt(token)) return no(400, 'bad_request', 'app tokens are renewed by the application back end, not here');
      const v = await this.verify(token);
      if (!v.ok) return v.code === 'session_expired' ? no(401, 'session_expired', 'the session expired: sign in again (a new user id)') : v;
      prev = v.session;
      if (Math.floor(Date.now() / 1000) >= this.signer.chainEnd(prev.orig) - 1) {
        return no(401, 'session_expired', `the session reached its maximum lifetime (${this.config.sessionMaxSec} s, CONFAB_SESSION_MAX_S): sign in again`);
      }
    }
    const user: Member = { id: prev?.id ?? newUserId(), handle };
    const renaming = prev !== undefined && prev.handle !== handle;
    // a rename is a new session (new sid) on the same chain: renaming never extends the chain's end
    const chain = prev ? { sid: renaming ? newSessionId() : prev.sid, orig: prev.orig } : undefined;
    const issued = this.signer.issue(user, Date.now(), chain);
    try {
      const held = await this.handles.claim(user, issued.session.exp);
      if (!held.ok) return no(409, 'handle_taken', takenMessage(handle, held.holder));
      if (renaming && prev) {
        // the old tokens name the old handle: revoke them (their sockets close with `replaced`), free the handle
        await this.revocations.revoke(prev.sid, Math.floor(Date.now() / 1000) + this.config.sessionTtlSec, 'replaced');
        if (skeleton(prev.handle) !== skeleton(handle)) await this.handles.release(prev);
      }
    } catch (err) {
      this.log.warn({ err }, 'handle claim failed');
      return no(503, 'bus_unavailable', 'cannot claim the handle right now; retry');
    }
    return issued;
  }

  /** DELETE /api/session: revoke the token's session on every node and free its handle (anonymous sessions). */
  async signOut(token: string | undefined): Promise<{ ok: true } | AuthRefusal> {
    const v = await this.verify(token);
    if (!v.ok) return v.code === 'session_expired' || v.code === 'session_revoked' ? { ok: true } : v;
    const s = v.session;
    const until = s.kind === 'app' ? s.exp : Math.floor(Date.now() / 1000) + this.config.sessionTtlSec;
    try {
      await this.revocations.revoke(s.sid, until, 'signed_out');
      if (s.kind === 'anon') await this.handles.release(s);
    } catch (err) {
      this.log.warn({ err }, 'sign-out failed');
      return no(503, 'bus_unavailable', 'cannot sign out right now; retry');
    }
    return { ok: true };
  }

  private emitRevoked(sid: string, why: RevokeReason): void {
    for (const f of this.revokedListeners) f(sid, why);
  }

  private onWire(data: Uint8Array): void {
    const text = this.dec.decode(data);
    const nl = text.indexOf('\n');
    if (nl < 0 || text.slice(0, nl) === this.config.node) return;
    let msg: { k?: unknown };
    try {
      msg = JSON.parse(text.slice(nl + 1)) as { k?: unknown };
    } catch {
      return;
    }
    if (typeof msg !== 'object' || msg === null) return;
    if (msg.k === 'revoked') this.revocations.onRemote(msg as { sid?: unknown });
    else if (msg.k === 'held' || msg.k === 'released') this.handles.onRemote(msg as { k: string });
  }
}

function takenMessage(handle: string, holder: Holder): string {
  return holder.handle.toLowerCase() === handle.toLowerCase()
    ? `“${handle}” belongs to another user right now; pick another handle`
    : `“${handle}” looks like “${holder.handle}”, which belongs to another user; pick another handle`;
}
