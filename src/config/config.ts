/**
 * Configuration: explicit, safe defaults overridden by environment variables,
 * validated at start. A bad value fails fast with a message naming the variable.
 * Every variable here is documented in README.md ("Configuration").
 */
import { randomBytes } from 'node:crypto';

export type BusKind = 'memory' | 'nats' | 'redis';
/** Where the room logs live: LMDB on this gateway's disk, this process's memory, NATS JetStream, Redis Streams. */
export type HistoryKind = 'lmdb' | 'memory' | 'jetstream' | 'redis';

export interface Config {
  host: string;
  port: number;
  node: string;
  region: string;
  dataDir: string;
  /** Embedded history: acknowledge after the commit is flushed to disk ('flush') or once committed ('commit'). */
  durability: 'flush' | 'commit';
  bus: BusKind;
  /** CONFAB_HISTORY; without it the bus's own: memory → lmdb, nats → jetstream, redis → redis. */
  history: HistoryKind;
  natsUrl?: string;
  natsAppHost?: string;
  redisUrl?: string;
  /** HMAC secret for session tokens; undefined = generate and keep one in dataDir (embedded only). */
  secret?: string;
  sessionTtlSec: number;
  apiKey?: string;
  /** Origins allowed to open a WebSocket; empty = same origin as the Host header only. '*' = any. */
  allowedOrigins: string[];
  /** ws(s):// entry points of every region (CONFAB_PUBLIC_URLS), served at GET /api/config for the web client; empty = none. */
  publicUrls: string[];
  rooms: string[];
  maxFrameBytes: number;
  maxTextChars: number;
  maxRooms: number;
  ratePerSec: number;
  rateBurst: number;
  floodCloseAfter: number;
  sendBufferBytes: number;
  maxConnPerIp: number;
  /** Addresses of proxies whose X-Forwarded-For is believed (for per-IP limits and logs). */
  trustedProxies: string[];
  pingIntervalMs: number;
  pingTimeoutMs: number;
  historyLimit: number;
  recentOnJoin: number;
  /** Messages per room each node keeps encoded in memory to answer joins and resumes without reading history. */
  roomCacheSize: number;
  presenceGraceMs: number;
  drainReadyDelayMs: number;
  drainWindowMs: number;
  shutdownTimeoutMs: number;
  headersTimeoutMs: number;
  maxHeaderBytes: number;
  logLevel: string;
}

export class ConfigError extends Error {
  readonly variable: string;
  constructor(variable: string, message: string) {
    super(`invalid ${variable}: ${message}`);
    this.name = 'ConfigError';
    this.variable = variable;
  }
}

export type Env = Record<string, string | undefined>;

/** A variable's trimmed value, undefined when unset or blank. */
export function envStr(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

/** An integer variable within [min, max], `def` when unset; anything else fails naming the variable. */
export function envInt(env: Env, name: string, def: number, min: number, max: number): number {
  const raw = envStr(env, name);
  if (raw === undefined) return def;
  if (!/^-?\d+$/.test(raw)) throw new ConfigError(name, `expected an integer, got ${JSON.stringify(raw)}`);
  const n = Number(raw);
  if (n < min || n > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${n}`);
  return n;
}

const str = envStr;
const int = envInt;

function list(env: Env, name: string): string[] | undefined {
  const v = str(env, name);
  return v === undefined ? undefined : v.split(',').map((s) => s.trim()).filter(Boolean);
}

/** IPv4-mapped IPv6 addresses (::ffff:1.2.3.4) compare as their IPv4 form. */
export function normalizeIp(ip: string): string {
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

const MAX_PUBLIC_URLS = 16;

/** CONFAB_PUBLIC_URLS: comma-separated ws:// or wss:// URLs, no credentials, query or fragment; normalized, duplicates dropped. */
export function publicUrls(env: Env): string[] {
  const raw = list(env, 'CONFAB_PUBLIC_URLS') ?? [];
  if (raw.length > MAX_PUBLIC_URLS) throw new ConfigError('CONFAB_PUBLIC_URLS', `at most ${MAX_PUBLIC_URLS} URLs, got ${raw.length}`);
  const out: string[] = [];
  for (const s of raw) {
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      throw new ConfigError('CONFAB_PUBLIC_URLS', `not a URL: ${JSON.stringify(s)}`);
    }
    if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new ConfigError('CONFAB_PUBLIC_URLS', `expected ws:// or wss://, got ${JSON.stringify(s)}`);
    if (u.username || u.password || u.search || u.hash) throw new ConfigError('CONFAB_PUBLIC_URLS', `no credentials, query or fragment allowed: ${JSON.stringify(s)}`);
    if (!out.includes(u.href)) out.push(u.href);
  }
  return out;
}

function durability(env: Env): 'flush' | 'commit' {
  const v = str(env, 'CONFAB_DURABILITY') ?? 'flush';
  if (v !== 'flush' && v !== 'commit') throw new ConfigError('CONFAB_DURABILITY', `expected flush or commit, got ${JSON.stringify(v)}`);
  return v;
}

/** Generated node ids look like Fly alloc ids' first block: 8 hex chars. */
export function generateNodeId(): string {
  return randomBytes(4).toString('hex');
}

/** The history each bus implies when CONFAB_HISTORY is not set (the behaviour before the two were separate). */
export const NATURAL_HISTORY: Readonly<Record<BusKind, HistoryKind>> = { memory: 'lmdb', nats: 'jetstream', redis: 'redis' };

/** Histories that live inside one gateway process: fine alone, wrong behind a bus that joins several gateways. */
const LOCAL_HISTORY: ReadonlySet<HistoryKind> = new Set(['lmdb', 'memory']);

/**
 * The bus and the history, each chosen on its own. CONFAB_BUS defaults to nats when NATS_URL or
 * NATSAPPHOST is set, else redis when REDIS_URL is set, else memory; CONFAB_HISTORY defaults to the
 * bus's own (NATURAL_HISTORY). A history kept inside one gateway (lmdb, memory) behind a bus that
 * joins gateways (nats, redis) is refused: each gateway would number and dedupe a room on its own,
 * so the same offset would name different messages on different gateways and a resume on another
 * gateway would replay the wrong ones (G1-G3). Throws ConfigError naming the variable.
 */
export function selectBusHistory(env: Env): { bus: BusKind; history: HistoryKind } {
  const nats = str(env, 'NATS_URL') !== undefined || str(env, 'NATSAPPHOST') !== undefined;
  const redis = str(env, 'REDIS_URL') !== undefined;
  const busEnv = str(env, 'CONFAB_BUS');
  if (busEnv !== undefined && busEnv !== 'memory' && busEnv !== 'nats' && busEnv !== 'redis') {
    throw new ConfigError('CONFAB_BUS', `expected memory, nats or redis, got ${JSON.stringify(busEnv)}`);
  }
  const bus: BusKind = busEnv ?? (nats ? 'nats' : redis ? 'redis' : 'memory');
  const historyEnv = str(env, 'CONFAB_HISTORY');
  if (historyEnv !== undefined && historyEnv !== 'lmdb' && historyEnv !== 'memory' && historyEnv !== 'jetstream' && historyEnv !== 'redis') {
    throw new ConfigError('CONFAB_HISTORY', `expected lmdb, memory, jetstream or redis, got ${JSON.stringify(historyEnv)}`);
  }
  const history: HistoryKind = historyEnv ?? NATURAL_HISTORY[bus];
  if (bus !== 'memory' && LOCAL_HISTORY.has(history)) {
    const chosen = busEnv !== undefined ? `CONFAB_BUS=${bus}` : `${bus === 'nats' ? (str(env, 'NATS_URL') !== undefined ? 'NATS_URL' : 'NATSAPPHOST') : 'REDIS_URL'} (the ${bus} bus)`;
    throw new ConfigError(
      'CONFAB_HISTORY',
      `${history} history cannot be used with ${chosen}: it lives inside one gateway, so every gateway on the ${bus} bus would number and dedupe each room on its own ` +
        `and a client resuming on another gateway would get other messages under the same offsets. Use CONFAB_HISTORY=jetstream or redis (shared by every gateway), ` +
        `or CONFAB_BUS=memory for a single gateway`,
    );
  }
  if (bus === 'nats' && !nats) throw new ConfigError('NATS_URL', 'CONFAB_BUS=nats needs NATS_URL or NATSAPPHOST');
  if (bus === 'redis' && !redis) throw new ConfigError('REDIS_URL', 'CONFAB_BUS=redis needs REDIS_URL');
  if (history === 'jetstream' && !nats) throw new ConfigError('NATS_URL', 'CONFAB_HISTORY=jetstream needs NATS_URL or NATSAPPHOST');
  if (history === 'redis' && !redis) throw new ConfigError('REDIS_URL', 'CONFAB_HISTORY=redis needs REDIS_URL');
  return { bus, history };
}

export function loadConfig(env: Env = process.env, overrides: Partial<Config> = {}): Config {
  const natsUrl = str(env, 'NATS_URL');
  const natsAppHost = str(env, 'NATSAPPHOST');
  const redisUrl = str(env, 'REDIS_URL');
  const { bus, history } = selectBusHistory(env);

  const secret = str(env, 'CONFAB_SECRET');
  if (secret !== undefined && secret.length < 16) throw new ConfigError('CONFAB_SECRET', 'must be at least 16 characters');
  if (bus !== 'memory' && secret === undefined && !overrides.secret) {
    throw new ConfigError('CONFAB_SECRET', `required with the ${bus} bus, so that every gateway accepts the same sessions`);
  }
  const rooms = list(env, 'CONFAB_ROOMS') ?? ['lobby', 'random'];
  for (const r of rooms) if (!/^[a-z0-9][a-z0-9_-]{0,31}$/.test(r)) throw new ConfigError('CONFAB_ROOMS', `bad room name ${JSON.stringify(r)}`);
  const host = str(env, 'HOST') ?? '0.0.0.0';
  const node = str(env, 'FLY_ALLOC_ID') ?? str(env, 'CONFAB_NODE_ID') ?? generateNodeId();
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(node)) throw new ConfigError(env.FLY_ALLOC_ID ? 'FLY_ALLOC_ID' : 'CONFAB_NODE_ID', 'must be 1-64 chars of [A-Za-z0-9_-]');
  const region = str(env, 'FLY_REGION') ?? str(env, 'CONFAB_REGION') ?? 'local';
  if (!/^[A-Za-z0-9_-]{1,32}$/.test(region)) throw new ConfigError('FLY_REGION', 'must be 1-32 chars of [A-Za-z0-9_-]');
  const pingIntervalMs = int(env, 'CONFAB_PING_INTERVAL_MS', 25_000, 100, 600_000);

  const cfg: Config = {
    host,
    port: int(env, 'PORT', 8080, 0, 65535),
    node,
    region,
    dataDir: str(env, 'CONFAB_DATA_DIR') ?? './data',
    durability: durability(env),
    bus,
    history,
    natsUrl,
    natsAppHost,
    redisUrl,
    secret,
    sessionTtlSec: int(env, 'CONFAB_SESSION_TTL_S', 7 * 24 * 3600, 60, 365 * 24 * 3600),
    apiKey: str(env, 'CONFAB_API_KEY'),
    allowedOrigins: list(env, 'CONFAB_ALLOWED_ORIGINS') ?? [],
    publicUrls: publicUrls(env),
    rooms,
    maxFrameBytes: int(env, 'CONFAB_MAX_FRAME_BYTES', 16 * 1024, 256, 16 * 1024 * 1024),
    maxTextChars: int(env, 'CONFAB_MAX_TEXT_CHARS', 2000, 1, 1_000_000),
    maxRooms: int(env, 'CONFAB_MAX_ROOMS', 50, 1, 100_000),
    ratePerSec: int(env, 'CONFAB_RATE_PER_SEC', 20, 1, 1_000_000),
    rateBurst: int(env, 'CONFAB_RATE_BURST', 40, 1, 1_000_000),
    floodCloseAfter: int(env, 'CONFAB_FLOOD_CLOSE_AFTER', 100, 1, 1_000_000),
    sendBufferBytes: int(env, 'CONFAB_SEND_BUFFER_BYTES', 1024 * 1024, 1024, 1024 * 1024 * 1024),
    maxConnPerIp: int(env, 'CONFAB_MAX_CONN_PER_IP', 256, 1, 1_000_000),
    trustedProxies: (list(env, 'CONFAB_TRUSTED_PROXIES') ?? []).map(normalizeIp),
    pingIntervalMs,
    pingTimeoutMs: int(env, 'CONFAB_PING_TIMEOUT_MS', Math.min(10_000, pingIntervalMs), 50, 600_000),
    historyLimit: int(env, 'CONFAB_HISTORY_LIMIT', 10_000, 1, 100_000_000),
    recentOnJoin: int(env, 'CONFAB_RECENT_ON_JOIN', 50, 0, 10_000),
    roomCacheSize: int(env, 'CONFAB_ROOM_CACHE', 256, 0, 100_000),
    presenceGraceMs: int(env, 'CONFAB_PRESENCE_GRACE_MS', 5_000, 0, 600_000),
    drainReadyDelayMs: int(env, 'CONFAB_DRAIN_READY_DELAY_MS', 1_000, 0, 600_000),
    drainWindowMs: int(env, 'CONFAB_DRAIN_WINDOW_MS', 5_000, 0, 600_000),
    shutdownTimeoutMs: int(env, 'CONFAB_SHUTDOWN_TIMEOUT_MS', 20_000, 100, 3_600_000),
    headersTimeoutMs: int(env, 'CONFAB_HEADERS_TIMEOUT_MS', 10_000, 100, 600_000),
    maxHeaderBytes: int(env, 'CONFAB_MAX_HEADER_BYTES', 16 * 1024, 1024, 1024 * 1024),
    logLevel: str(env, 'LOG_LEVEL') ?? 'info',
    ...overrides,
  };
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(cfg.logLevel)) throw new ConfigError('LOG_LEVEL', `unknown level ${cfg.logLevel}`);
  return cfg;
}

