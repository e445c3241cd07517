/**
 * Configuration: explicit, safe defaults overridden by environment variables,
 * validated at start. A bad value fails fast with a message naming the variable.
 * Every variable is declared in env.ts (parse, default, bounds, meaning) and read through it;
 * README.md's "Configuration" table is generated from there (npm run docs:config).
 */
import { randomBytes } from 'node:crypto';
import { normalizeIp as normalizeAddress } from '../gateway/address.js';
import { edgeDefaults } from '../gateway/edge.js';
import { ConfigError, type Env, envValue, parseEnvValue, readEnv } from './env.js';

export { ConfigError, type Env } from './env.js';

export type BusKind = 'memory' | 'nats' | 'redis' | 'pubsub';
/** Where the room logs live: LMDB on this gateway's disk, this process's memory, NATS JetStream, Redis Streams, PostgreSQL. */
export type HistoryKind = 'lmdb' | 'memory' | 'jetstream' | 'redis' | 'postgres';

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
  /** DATABASE_URL as set (parsed by src/postgres/options.ts). */
  databaseUrl?: string;
  /** HMAC secret for session tokens; undefined = generate and keep one in dataDir (embedded only). */
  secret?: string;
  /** CONFAB_SECRET_FILE: read when `secret` is not set. */
  secretFile?: string;
  sessionTtlSec: number;
  /** Longest a chain of renewals may run (CONFAB_SESSION_MAX_S). */
  sessionMaxSec: number;
  /** POST /api/session hands out anonymous handle sessions. */
  anonymous: boolean;
  /** Anonymous sessions may alert (rate-limited). */
  anonAlerts: boolean;
  jwtSecret?: string;
  jwtPublicKey?: string;
  jwtJwks?: string;
  jwtIssuer?: string;
  jwtAudience?: string;
  privatePrefix: string;
  privateRooms: string[];
  /** Serve /metrics on this port only (undefined: on the main port). */
  metricsPort?: number;
  metricsHost: string;
  metricsToken?: string;
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
  /** WebSockets per client address (IPv6 per /64). */
  maxConnPerIp: number;
  /** Open TCP connections per peer address that are not WebSockets (IPv6 per /64; trusted proxies exempt). */
  maxHttpPerIp: number;
  /** Open WebSockets per node (default derived from the open-files limit). */
  maxSockets: number;
  /** Open TCP connections per node, WebSockets included (default derived from the open-files limit). */
  maxHttpConnections: number;
  maxSocketsPerUser: number;
  maxRoomsPerUser: number;
  maxRoomsPerNode: number;
  /** Per-user rates across sockets and nodes, per second (alerts: per minute in the variable). */
  userRates: { msg: { perSec: number; burst: number }; alert: { perSec: number; burst: number }; typing: { perSec: number; burst: number } };
  /** How often usage is reported between nodes (0: per-node limits only). */
  usageGossipMs: number;
  /** Addresses and CIDR ranges of proxies whose client-address header is believed (for per-address limits and logs). */
  trustedProxies: string[];
  /** The header a trusted proxy names the client in. */
  clientIpHeader: 'x-forwarded-for' | 'fly-client-ip';
  pingIntervalMs: number;
  pingTimeoutMs: number;
  historyLimit: number;
  /** CONFAB_HISTORY_MAX_AGE_S in ms (0 = no age limit). */
  historyMaxAgeMs: number;
  /** CONFAB_HISTORY_MAX_BYTES per room (0 = no byte limit). */
  historyMaxBytes: number;
  /** CONFAB_DEDUPE_WINDOW_S in ms: how long an idempotency key is remembered, trimmed or not. */
  dedupeWindowMs: number;
  /** CONFAB_HISTORY_SWEEP_MS: how often retention runs in adapters that sweep. */
  historySweepMs: number;
  recentOnJoin: number;
  /** Messages per room each node keeps encoded in memory to answer joins and resumes without reading history. */
  roomCacheSize: number;
  /** Node-wide bytes of all rooms' encoded caches (LRU across rooms). */
  cacheBytes: number;
  /** Most messages one resume replays; beyond it `joined.missed`. */
  replayMax: number;
  presenceGraceMs: number;
  drainReadyDelayMs: number;
  drainWindowMs: number;
  shutdownTimeoutMs: number;
  headersTimeoutMs: number;
  maxHeaderBytes: number;
  logLevel: string;
}

/** IPv4-mapped IPv6 addresses (::ffff:1.2.3.4) compare as their IPv4 form. */
export function normalizeIp(ip: string): string {
  return normalizeAddress(ip);
}

/** CONFAB_PUBLIC_URLS: comma-separated ws:// or wss:// URLs, no credentials, query or fragment; normalized, duplicates dropped. */
export function publicUrls(env: Env): string[] {
  return readEnv(env, 'CONFAB_PUBLIC_URLS');
}

/** Generated node ids look like Fly alloc ids' first block: 8 hex chars. */
export function generateNodeId(): string {
  return randomBytes(4).toString('hex');
}

/** The history each bus implies when CONFAB_HISTORY is not set (the behaviour before the two were separate); Pub/Sub keeps none, so PostgreSQL. */
export const NATURAL_HISTORY: Readonly<Record<BusKind, HistoryKind>> = { memory: 'lmdb', nats: 'jetstream', redis: 'redis', pubsub: 'postgres' };

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
  const nats = envValue(env, 'NATS_URL') !== undefined || envValue(env, 'NATSAPPHOST') !== undefined;
  const redis = envValue(env, 'REDIS_URL') !== undefined;
  const busEnv = readEnv(env, 'CONFAB_BUS');
  const bus: BusKind = busEnv ?? (nats ? 'nats' : redis ? 'redis' : 'memory');
  const historyEnv = readEnv(env, 'CONFAB_HISTORY');
  const history: HistoryKind = historyEnv ?? NATURAL_HISTORY[bus];
  if (bus !== 'memory' && LOCAL_HISTORY.has(history)) {
    const chosen = busEnv !== undefined ? `CONFAB_BUS=${bus}` : `${bus === 'nats' ? (envValue(env, 'NATS_URL') !== undefined ? 'NATS_URL' : 'NATSAPPHOST') : 'REDIS_URL'} (the ${bus} bus)`;
    throw new ConfigError(
      'CONFAB_HISTORY',
      `${history} history cannot be used with ${chosen}: it lives inside one gateway, so every gateway on the ${bus} bus would number and dedupe each room on its own ` +
        `and a client resuming on another gateway would get other messages under the same offsets. Use CONFAB_HISTORY=jetstream or redis or postgres (shared by every gateway), ` +
        `or CONFAB_BUS=memory for a single gateway`,
    );
  }
  if (bus === 'nats' && !nats) throw new ConfigError('NATS_URL', 'CONFAB_BUS=nats needs NATS_URL or NATSAPPHOST');
  if (bus === 'redis' && !redis) throw new ConfigError('REDIS_URL', 'CONFAB_BUS=redis needs REDIS_URL');
  if (history === 'jetstream' && !nats) throw new ConfigError('NATS_URL', 'CONFAB_HISTORY=jetstream needs NATS_URL or NATSAPPHOST');
  if (history === 'redis' && !redis) throw new ConfigError('REDIS_URL', 'CONFAB_HISTORY=redis needs REDIS_URL');
  if (history === 'postgres' && readEnv(env, 'DATABASE_URL') === undefined) throw new ConfigError('DATABASE_URL', 'CONFAB_HISTORY=postgres needs DATABASE_URL');
  return { bus, history };
}

export function loadConfig(env: Env = process.env, overrides: Partial<Config> = {}): Config {
  // as set: parsed by the adapter that uses them (nats/options.ts, redis/options.ts)
  const natsUrl = envValue(env, 'NATS_URL');
  const natsAppHost = envValue(env, 'NATSAPPHOST');
  const redisUrl = envValue(env, 'REDIS_URL');
  const { bus, history } = selectBusHistory(env);

  const secret = readEnv(env, 'CONFAB_SECRET');
  const secretFile = readEnv(env, 'CONFAB_SECRET_FILE');
  if (bus !== 'memory' && secret === undefined && secretFile === undefined && !overrides.secret) {
    throw new ConfigError('CONFAB_SECRET', `required with the ${bus} bus (or CONFAB_SECRET_FILE), so that every gateway accepts the same sessions`);
  }
  const jwtKeys = (['CONFAB_JWT_SECRET', 'CONFAB_JWT_PUBLIC_KEY', 'CONFAB_JWT_JWKS'] as const).filter((n) => envValue(env, n) !== undefined);
  if (jwtKeys.length > 1) throw new ConfigError(jwtKeys[1]!, `set one of ${jwtKeys.join(', ')}, not several`);
  const rooms = readEnv(env, 'CONFAB_ROOMS');
  const host = readEnv(env, 'HOST');
  // FLY_* first (seed compatible); the second is read only when the first is unset
  const node = readEnv(env, 'FLY_ALLOC_ID') ?? readEnv(env, 'CONFAB_NODE_ID') ?? generateNodeId();
  const region = readEnv(env, 'FLY_REGION') ?? readEnv(env, 'CONFAB_REGION');
  const pingIntervalMs = readEnv(env, 'CONFAB_PING_INTERVAL_MS');
  const ratePerSec = readEnv(env, 'CONFAB_RATE_PER_SEC');
  const rateBurst = readEnv(env, 'CONFAB_RATE_BURST');
  const edge = edgeDefaults();
  const maxHttpConnections = readEnv(env, 'CONFAB_MAX_HTTP_CONNECTIONS') ?? edge.maxHttpConnections;

  const cfg: Config = {
    host,
    port: readEnv(env, 'PORT'),
    node,
    region,
    dataDir: readEnv(env, 'CONFAB_DATA_DIR'),
    durability: readEnv(env, 'CONFAB_DURABILITY'),
    bus,
    history,
    natsUrl,
    natsAppHost,
    redisUrl,
    databaseUrl: readEnv(env, 'DATABASE_URL'),
    secret,
    secretFile,
    sessionTtlSec: readEnv(env, 'CONFAB_SESSION_TTL_S'),
    sessionMaxSec: readEnv(env, 'CONFAB_SESSION_MAX_S'),
    anonymous: readEnv(env, 'CONFAB_ANONYMOUS') === '1',
    anonAlerts: readEnv(env, 'CONFAB_ANON_ALERTS') === '1',
    jwtSecret: readEnv(env, 'CONFAB_JWT_SECRET'),
    jwtPublicKey: readEnv(env, 'CONFAB_JWT_PUBLIC_KEY'),
    jwtJwks: readEnv(env, 'CONFAB_JWT_JWKS'),
    jwtIssuer: readEnv(env, 'CONFAB_JWT_ISSUER'),
    jwtAudience: readEnv(env, 'CONFAB_JWT_AUDIENCE'),
    privatePrefix: readEnv(env, 'CONFAB_PRIVATE_PREFIX'),
    privateRooms: readEnv(env, 'CONFAB_PRIVATE_ROOMS'),
    metricsPort: readEnv(env, 'CONFAB_METRICS_PORT'),
    metricsHost: readEnv(env, 'CONFAB_METRICS_HOST'),
    metricsToken: readEnv(env, 'CONFAB_METRICS_TOKEN'),
    apiKey: readEnv(env, 'CONFAB_API_KEY'),
    allowedOrigins: readEnv(env, 'CONFAB_ALLOWED_ORIGINS'),
    publicUrls: readEnv(env, 'CONFAB_PUBLIC_URLS'),
    rooms,
    maxFrameBytes: readEnv(env, 'CONFAB_MAX_FRAME_BYTES'),
    maxTextChars: readEnv(env, 'CONFAB_MAX_TEXT_CHARS'),
    maxRooms: readEnv(env, 'CONFAB_MAX_ROOMS'),
    ratePerSec,
    rateBurst,
    floodCloseAfter: readEnv(env, 'CONFAB_FLOOD_CLOSE_AFTER'),
    sendBufferBytes: readEnv(env, 'CONFAB_SEND_BUFFER_BYTES'),
    maxConnPerIp: readEnv(env, 'CONFAB_MAX_CONN_PER_IP'),
    maxHttpPerIp: readEnv(env, 'CONFAB_MAX_HTTP_PER_IP') ?? readEnv(env, 'CONFAB_MAX_CONN_PER_IP'),
    maxSockets: readEnv(env, 'CONFAB_MAX_SOCKETS') ?? Math.max(1, Math.min(edge.maxSockets, maxHttpConnections - Math.max(16, Math.ceil(maxHttpConnections * 0.05)))),
    maxHttpConnections,
    maxSocketsPerUser: readEnv(env, 'CONFAB_MAX_SOCKETS_PER_USER'),
    maxRoomsPerUser: readEnv(env, 'CONFAB_MAX_ROOMS_PER_USER'),
    maxRoomsPerNode: readEnv(env, 'CONFAB_MAX_ROOMS_PER_NODE'),
    userRates: {
      // one socket at its own rate stays within its user's: the default is 1.5 times the per-connection rate
      msg: { perSec: readEnv(env, 'CONFAB_USER_MSG_PER_SEC') ?? Math.ceil(1.5 * ratePerSec), burst: readEnv(env, 'CONFAB_USER_MSG_BURST') ?? Math.ceil(1.5 * rateBurst) },
      // the one alert limiter: per user, across sockets and nodes
      alert: { perSec: readEnv(env, 'CONFAB_ALERT_RATE_PER_MIN') / 60, burst: Math.max(1, Math.min(readEnv(env, 'CONFAB_ALERT_RATE_PER_MIN'), 3)) },
      typing: { perSec: readEnv(env, 'CONFAB_USER_TYPING_PER_SEC'), burst: readEnv(env, 'CONFAB_USER_TYPING_BURST') },
    },
    usageGossipMs: readEnv(env, 'CONFAB_USAGE_GOSSIP_MS'),
    trustedProxies: readEnv(env, 'CONFAB_TRUSTED_PROXIES'),
    clientIpHeader: readEnv(env, 'CONFAB_CLIENT_IP_HEADER'),
    pingIntervalMs,
    pingTimeoutMs: readEnv(env, 'CONFAB_PING_TIMEOUT_MS') ?? Math.min(10_000, pingIntervalMs),
    historyLimit: readEnv(env, 'CONFAB_HISTORY_LIMIT'),
    historyMaxAgeMs: readEnv(env, 'CONFAB_HISTORY_MAX_AGE_S') * 1000,
    historyMaxBytes: readEnv(env, 'CONFAB_HISTORY_MAX_BYTES'),
    dedupeWindowMs: readEnv(env, 'CONFAB_DEDUPE_WINDOW_S') * 1000,
    historySweepMs: readEnv(env, 'CONFAB_HISTORY_SWEEP_MS'),
    recentOnJoin: readEnv(env, 'CONFAB_RECENT_ON_JOIN'),
    roomCacheSize: readEnv(env, 'CONFAB_ROOM_CACHE'),
    cacheBytes: readEnv(env, 'CONFAB_CACHE_BYTES'),
    replayMax: readEnv(env, 'CONFAB_REPLAY_MAX'),
    presenceGraceMs: readEnv(env, 'CONFAB_PRESENCE_GRACE_MS'),
    drainReadyDelayMs: readEnv(env, 'CONFAB_DRAIN_READY_DELAY_MS'),
    drainWindowMs: readEnv(env, 'CONFAB_DRAIN_WINDOW_MS'),
    shutdownTimeoutMs: readEnv(env, 'CONFAB_SHUTDOWN_TIMEOUT_MS'),
    headersTimeoutMs: readEnv(env, 'CONFAB_HEADERS_TIMEOUT_MS'),
    maxHeaderBytes: readEnv(env, 'CONFAB_MAX_HEADER_BYTES'),
    // an overridden level is checked below, the variable is then not read
    logLevel: overrides.logLevel ?? readEnv(env, 'LOG_LEVEL'),
    ...overrides,
  };
  parseEnvValue('LOG_LEVEL', cfg.logLevel);
  if (cfg.maxSockets > cfg.maxHttpConnections) {
    throw new ConfigError('CONFAB_MAX_SOCKETS', `${cfg.maxSockets} is more than the node's HTTP connection budget (CONFAB_MAX_HTTP_CONNECTIONS = ${cfg.maxHttpConnections}); every WebSocket is one of those connections`);
  }
  return cfg;
}

