/**
 * One NATS connection shared by the bus and the history of a gateway: built
 * from NatsSettings (servers or NATSAPPHOST discovery, credentials, TLS),
 * named after the node, reconnecting forever, with its up/down state observable.
 * Each user acquires it and releases it; the last release closes the connection.
 */
import {
  connect,
  credsAuthenticator,
  nkeyAuthenticator,
  tokenAuthenticator,
  usernamePasswordAuthenticator,
  type NatsConnection,
  type NodeConnectionOptions,
} from '@nats-io/transport-node';
import type pino from 'pino';
import type { BusStatus } from '../bus/types.js';
import { ConfabError } from '../protocol/codes.js';
import { resolveAppHost, type LookupAll } from './discovery.js';
import type { NatsSettings } from './options.js';

export class NatsLink {
  private listeners = new Set<(s: BusStatus) => void>();
  private users = 0;
  private closing: Promise<void> | undefined;
  private _status: BusStatus = 'up';

  private constructor(readonly nc: NatsConnection, readonly settings: NatsSettings, private readonly log: pino.Logger) {
    // the status iterator ends when the connection closes; should it ever throw, log it rather than let it go unhandled
    this.watch().catch((err: unknown) => this.log.error({ err }, 'NATS status watch failed'));
    void nc.closed().then(() => this.set('down')); // closed() never rejects (it resolves with the error) and set() catches listeners
  }

  /** Connect (resolving NATSAPPHOST first). Rejects with ConfabError('bus_unavailable') when no server answers. */
  static async open(settings: NatsSettings, node: string, log: pino.Logger, lookupAll?: LookupAll): Promise<NatsLink> {
    const servers = settings.servers.length > 0 ? settings.servers : await resolveAppHost(settings.appHost!, settings.port, lookupAll);
    const opts: NodeConnectionOptions = {
      servers,
      name: `confab-${node}`,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      reconnectJitter: 250,
      // a frozen server (no TCP reset, no answers) is noticed within 2-3 pings (4-6 s), then the client moves on
      pingInterval: 2_000,
      maxPingOut: 2,
      timeout: settings.connectTimeoutMs,
    };
    const a = settings.auth;
    if (a.kind === 'userpass') opts.authenticator = usernamePasswordAuthenticator(a.user, a.pass);
    else if (a.kind === 'token') opts.authenticator = tokenAuthenticator(a.token);
    else if (a.kind === 'creds') opts.authenticator = credsAuthenticator(a.creds);
    else if (a.kind === 'nkey') opts.authenticator = nkeyAuthenticator(a.seed);
    if (settings.tls || servers.some((s) => s.startsWith('tls://'))) opts.tls = { ...settings.tls };
    let nc: NatsConnection;
    try {
      nc = await connect(opts);
    } catch (e) {
      throw new ConfabError('bus_unavailable', `cannot connect to NATS at ${servers.join(',')}: ${(e as Error).message}`, { cause: e });
    }
    log.info({ server: nc.getServer(), servers }, 'connected to NATS');
    return new NatsLink(nc, settings, log);
  }

  get status(): BusStatus {
    return this._status;
  }

  onStatus(listener: (s: BusStatus) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Throw ConfabError('bus_unavailable') unless connected. */
  assertUp(): void {
    if (this._status !== 'up' || this.nc.isClosed() || this.nc.isDraining()) throw new ConfabError('bus_unavailable');
  }

  acquire(): this {
    this.users++;
    return this;
  }

  /** Drop one user; the last one flushes and closes the connection. */
  async release(): Promise<void> {
    if (this.users > 0) this.users--;
    if (this.users > 0) return;
    this.closing ??= (async () => {
      try {
        if (!this.nc.isClosed()) {
          if (this._status === 'up') await this.nc.flush().catch(() => {});
          await this.nc.close();
        }
      } finally {
        this.set('down');
      }
    })();
    await this.closing;
  }

  private set(s: BusStatus): void {
    if (this._status === s) return;
    this._status = s;
    for (const l of [...this.listeners]) {
      try {
        l(s);
      } catch (e) {
        this.log.error({ err: e }, 'bus status listener failed');
      }
    }
  }

  private async watch(): Promise<void> {
    for await (const s of this.nc.status()) {
      switch (s.type) {
        case 'disconnect':
          this.log.warn({ server: s.server }, 'NATS disconnected');
          this.set('down');
          break;
        case 'reconnect':
          this.log.info({ server: s.server }, 'NATS reconnected');
          if (!this.closing) this.set('up');
          break;
        case 'ldm':
          this.log.info({ server: s.server }, 'NATS server entering lame duck mode');
          break;
        case 'error':
          this.log.warn({ err: s.error }, 'NATS error');
          break;
        default:
          break;
      }
    }
  }
}
