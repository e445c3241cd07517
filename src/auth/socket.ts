/**
 * A socket's session: its expiry enforced while the socket is open, renewal in place, and the
 * permission questions the connection asks. The server sends `{"t":"refresh","exp":E}` before the
 * token expires — at most REFRESH_LEAD_MAX_S seconds before `exp`, a third of the remaining
 * lifetime when that is shorter — and closes the socket with 4500 `session_expired` at `exp` unless
 * an `auth` frame brought a fresh token of the same user (answered `authed`).
 */
import type { ErrorCode } from '../protocol/codes.js';
import type { Perms, ServerFrame } from '../protocol/frames.js';
import type { Auth } from './index.js';
import type { Session } from './tokens.js';

export const REFRESH_LEAD_MAX_S = 60;
/** setTimeout's longest delay; longer waits are re-armed. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface SocketIo {
  send(frame: ServerFrame): void;
  sendError(code: ErrorCode, message?: string, extra?: { id?: string; room?: string }): void;
  close(code: ErrorCode): void;
}

export class SocketSession {
  private refreshTimer?: ReturnType<typeof setTimeout>;
  private expiryTimer?: ReturnType<typeof setTimeout>;
  private stopped = false;
  /** An `auth` frame being checked (one at a time; a second is answered after the first). */
  private checking: Promise<void> = Promise.resolve();

  constructor(
    private session: Session,
    private readonly auth: Auth,
    private readonly io: SocketIo,
  ) {}

  get sid(): string {
    return this.session.sid;
  }
  get exp(): number {
    return this.session.exp;
  }
  get perms(): Perms {
    return this.auth.perms(this.session);
  }
  canJoin(room: string): boolean {
    return this.auth.canJoin(this.session, room);
  }
  canPublish(room: string): boolean {
    return this.auth.canPublish(this.session, room);
  }
  alertRefusal(): 'forbidden' | undefined {
    return this.auth.alertRefusal(this.session);
  }

  start(): void {
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.refreshTimer);
    clearTimeout(this.expiryTimer);
  }

  /** An `auth` frame: a fresh token for this socket's user. */
  onAuth(token: string): void {
    this.checking = this.checking.then(() => this.check(token));
  }

  private async check(token: string): Promise<void> {
    const r = await this.auth.authenticate(token);
    if (this.stopped) return;
    if (!r.ok) {
      const code: ErrorCode = r.code === 'bad_request' ? 'unauthorized' : r.code;
      return this.io.sendError(code, `token refused: ${r.message}`);
    }
    if (r.session.id !== this.session.id || r.session.handle !== this.session.handle) {
      return this.io.sendError('unauthorized', 'token refused: it names another user or handle than this socket (open a new socket for it)');
    }
    this.session = r.session;
    this.schedule();
    this.io.send({ t: 'authed', exp: r.session.exp, perms: this.perms });
  }

  private schedule(): void {
    clearTimeout(this.refreshTimer);
    clearTimeout(this.expiryTimer);
    if (this.stopped) return;
    const now = Date.now();
    const expMs = this.session.exp * 1000;
    const lead = Math.min(REFRESH_LEAD_MAX_S * 1000, Math.max(0, (expMs - now) / 3));
    const exp = this.session.exp;
    this.refreshTimer = this.after(expMs - lead - now, () => this.io.send({ t: 'refresh', exp }));
    this.expiryTimer = this.after(expMs - now, () => this.io.close('session_expired'));
  }

  private after(ms: number, f: () => void): ReturnType<typeof setTimeout> {
    const t = ms > MAX_TIMER_MS ? setTimeout(() => this.schedule(), MAX_TIMER_MS) : setTimeout(f, Math.max(0, ms));
    t.unref();
    return t;
  }
}
