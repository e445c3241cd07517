/**
 * Every environment variable confab reads, declared once: how it is parsed (a zod schema over
 * the trimmed value; blank counts as unset), its default, its bounds, a one-line meaning and the
 * doc table(s) that list it. The parsers (config.ts, nats/options.ts, redis/options.ts, the CLI)
 * read through `readEnv` / `envValue` / `parseEnvValue`, so a bad value fails with a ConfigError
 * naming the variable. `npm run docs:config` renders the tables of README.md, docs/nats.md and
 * docs/redis.md from this table (env-docs.ts); test/unit/config-docs.test.ts fails when they
 * differ, or when src/ reads a variable that is not declared here.
 */
import { existsSync } from 'node:fs';
import { z } from 'zod';
import { parseCidr } from '../gateway/address.js';

export type Env = Record<string, string | undefined>;

/** A bad configuration value; `variable` names the environment variable. */
export class ConfigError extends Error {
  readonly variable: string;
  constructor(variable: string, message: string) {
    super(`invalid ${variable}: ${message}`);
    this.name = 'ConfigError';
    this.variable = variable;
  }
}

/** The doc tables: where each is rendered is in env-docs.ts (DOC_TABLES). */
export type DocSection = 'gateway' | 'cli' | 'nats' | 'nats-config' | 'redis' | 'pubsub' | 'postgres';

export interface EnvDoc {
  section: DocSection;
  /** One line of Markdown. */
  meaning: string;
  /** The default column when the default is not a plain value (computed, derived, generated). */
  default?: string;
  /** List it at the top of the section's table (a variable whose home is another table). */
  first?: boolean;
  /** List it right after this variable's row. */
  after?: string;
}

export interface EnvSpec<T = unknown, D extends T | undefined = T | undefined> {
  /** Parses a set value (trimmed unless `raw`); its first issue's message becomes the ConfigError's. */
  readonly schema: z.ZodType<T, string>;
  /** The value when unset or blank; undefined when the reader derives one (documented in `docs`). */
  readonly default: D;
  /** What is accepted, one short line of Markdown (the tables' `values` column). */
  readonly values: string;
  /** Read as is, not trimmed (only '' counts as unset): a password may begin or end with a space. */
  readonly raw?: boolean;
  /** Files that read it straight from the environment rather than through readEnv (kept in sync by the docs test). */
  readonly readIn?: readonly string[];
  /** The tables it is listed in; the first is its home. */
  readonly docs: readonly EnvDoc[];
}

interface Common {
  values?: string;
  raw?: boolean;
  readIn?: readonly string[];
  docs: readonly EnvDoc[];
}

const spec = <T, D extends T | undefined>(schema: z.ZodType<T, string>, def: D, values: string, o: Common): EnvSpec<T, D> => ({
  schema,
  default: def,
  values: o.values ?? values,
  ...(o.raw ? { raw: true } : {}),
  ...(o.readIn ? { readIn: o.readIn } : {}),
  docs: o.docs,
});

/** An integer within [min, max]; `refine` adds one more rule. */
function int<D extends number | undefined = undefined>(o: Common & { min: number; max: number; default?: D; refine?: { check: (n: number) => boolean; message: string } }): EnvSpec<number, D> {
  const { min, max } = o;
  let schema: z.ZodType<number, string> = z
    .string()
    .regex(/^-?\d+$/, { error: (iss) => `expected an integer, got ${JSON.stringify(iss.input)}` })
    .transform(Number)
    .refine((n) => n >= min && n <= max, { error: (iss) => `must be between ${min} and ${max}, got ${String(iss.input)}` });
  if (o.refine) schema = schema.refine(o.refine.check, { error: o.refine.message });
  return spec(schema, o.default as D, `${min}–${max}`, o);
}

/** A port 1–65535. */
const port = <D extends number | undefined = undefined>(o: Common & { default?: D }) => int({ ...o, min: 1, max: 65535 });

/** Free text, or text matching `pattern` (else `message`). */
function text<D extends string | undefined = undefined>(o: Common & { default?: D; pattern?: RegExp; message?: string | ((v: string) => string) }): EnvSpec<string, D> {
  const { pattern, message } = o;
  const schema = pattern ? z.string().regex(pattern, { error: (iss) => (typeof message === 'function' ? message(String(iss.input)) : (message ?? 'bad value')) }) : z.string();
  return spec(schema, o.default as D, 'text', o);
}

/** One of `options`; anything else fails with `expected a, b or c, got "x"` (or `message`). */
function oneOf<const V extends string>(options: readonly [V, ...V[]], o: Common & { default: V; message?: (v: string) => string }): EnvSpec<V, V>;
function oneOf<const V extends string>(options: readonly [V, ...V[]], o: Common & { message?: (v: string) => string }): EnvSpec<V, undefined>;
function oneOf<const V extends string>(options: readonly [V, ...V[]], o: Common & { default?: V; message?: (v: string) => string }): EnvSpec<V> {
  const names = options.length === 1 ? options[0] : `${options.slice(0, -1).join(', ')} or ${options.at(-1)!}`;
  const message = o.message ?? ((v: string) => `expected ${names}, got ${JSON.stringify(v)}`);
  const schema = z.enum(options as unknown as [V, ...V[]], { error: (iss) => message(String(iss.input)) }) as unknown as z.ZodType<V, string>;
  return spec(schema, o.default, options.map((x) => `\`${x}\``).join(', '), o);
}

/** A path to a file that exists. */
function file(o: Common): EnvSpec<string, undefined> {
  return spec(z.string().refine((f) => existsSync(f), { error: (iss) => `file not found: ${String(iss.input)}` }), undefined, 'path to an existing file', o);
}

/** Thrown by `parsed` parse functions: a bad value, with the message for the ConfigError. */
class Invalid extends Error {}

/** A value `fn` parses; `fn` reports a bad value by throwing Invalid. */
function parsed<T, D extends T | undefined = undefined>(fn: (s: string) => T, values: string, o: Common & { default?: D }): EnvSpec<T, D> {
  const schema = z.string().transform((s, ctx) => {
    try {
      return fn(s);
    } catch (e) {
      if (!(e instanceof Invalid)) throw e;
      ctx.issues.push({ code: 'custom', message: e.message, input: s });
      return z.NEVER;
    }
  }) as unknown as z.ZodType<T, string>;
  return spec(schema, o.default as D, values, o);
}

/** A comma-separated list, items trimmed, empty items dropped. */
const splitList = (s: string): string[] => s.split(',').map((x) => x.trim()).filter(Boolean);

const list = <D extends string[] | undefined = undefined>(o: Common & { default?: D }) => parsed(splitList, 'comma list', o);

const MAX_PUBLIC_URLS = 16;

function publicUrlList(s: string): string[] {
  const raw = splitList(s);
  if (raw.length > MAX_PUBLIC_URLS) throw new Invalid(`at most ${MAX_PUBLIC_URLS} URLs, got ${raw.length}`);
  const out: string[] = [];
  for (const x of raw) {
    let u: URL;
    try {
      u = new URL(x);
    } catch {
      throw new Invalid(`not a URL: ${JSON.stringify(x)}`);
    }
    if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new Invalid(`expected ws:// or wss://, got ${JSON.stringify(x)}`);
    if (u.username || u.password || u.search || u.hash) throw new Invalid(`no credentials, query or fragment allowed: ${JSON.stringify(x)}`);
    if (!out.includes(u.href)) out.push(u.href);
  }
  return out;
}

function cidrList(s: string): string[] {
  const items = splitList(s);
  for (const x of items) {
    try {
      parseCidr(x);
    } catch (e) {
      throw new Invalid((e as Error).message);
    }
  }
  return items;
}

function roomList(s: string): string[] {
  const rooms = splitList(s);
  for (const r of rooms) if (!/^[a-z0-9][a-z0-9_-]{0,31}$/.test(r)) throw new Invalid(`bad room name ${JSON.stringify(r)}`);
  return rooms;
}

function regionList(s: string): string[] {
  const names = splitList(s);
  for (const r of names) if (!/^[A-Za-z0-9_-]{1,32}$/.test(r)) throw new Invalid(`bad region name ${JSON.stringify(r)} (1-32 of [A-Za-z0-9_-], the NATS cluster name)`);
  if (new Set(names).size !== names.length) throw new Invalid('a region is listed twice');
  return names;
}

/** CONFAB_ROOM_HOMES: `prefix=region` pairs (src/nats/shards.ts). */
function roomHomes(s: string): { prefix: string; region: string }[] {
  return splitList(s).map((pair) => {
    const eq = pair.lastIndexOf('=');
    const prefix = pair.slice(0, eq);
    const region = pair.slice(eq + 1);
    if (eq <= 0 || !/^[A-Za-z0-9_-]{1,32}$/.test(region)) throw new Invalid(`expected prefix=region, got ${JSON.stringify(pair)}`);
    return { prefix, region };
  });
}

/** One NATS_URL entry: nats://, tls:// or bare host:port (given nats://). */
function natsServer(u: string): string {
  const withScheme = /^[a-z]+:\/\//.test(u) ? u : `nats://${u}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new Invalid(`not a URL: ${JSON.stringify(u)}`);
  }
  if (url.protocol !== 'nats:' && url.protocol !== 'tls:') throw new Invalid(`scheme must be nats:// or tls://, got ${url.protocol}`);
  if (!url.hostname) throw new Invalid(`missing host in ${JSON.stringify(u)}`);
  return withScheme;
}

/** REDIS_URL, checked without echoing a password back in the error. */
function redisUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Invalid('not a URL (expected redis://host:port)');
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw new Invalid(`scheme must be redis:// or rediss://, got ${url.protocol}`);
  if (!url.hostname) throw new Invalid('missing host');
  const db = url.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d{1,2}$/.test(db)) throw new Invalid(`database must be a number, got ${JSON.stringify(db)}`);
  return raw;
}

/** DATABASE_URL, checked without echoing a password back in the error. */
function databaseUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Invalid('not a URL (expected postgres://user@host:port/db)');
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') throw new Invalid(`scheme must be postgres:// or postgresql://, got ${url.protocol}`);
  if (!url.hostname && !url.searchParams.get('host')) throw new Invalid('missing host');
  return raw;
}

const NAME_64 = /^[A-Za-z0-9_-]{1,64}$/;
const NAME_32 = /^[A-Za-z0-9_-]{1,32}$/;
const SIZE_RE = /^\d+(\.\d+)?\s*(B|K|KB|M|MB|G|GB|T|TB)?$/i;
const DAY = 24 * 3600;
const CONFIG_GEN = 'src/nats/config-gen.ts';

/** Every variable, in table order (each table lists its variables in this order; see EnvDoc.first and .after). */
export const ENV = {
  // ---- the gateway (README "Configuration"; src/config/config.ts)
  PORT: int({ default: 8080, min: 0, max: 65535, docs: [{ section: 'gateway', meaning: 'HTTP/WebSocket port' }] }),
  HOST: text({ default: '0.0.0.0', values: 'address', docs: [{ section: 'gateway', meaning: 'listen address' }] }),
  CONFAB_DATA_DIR: text({ default: './data', values: 'path', docs: [{ section: 'gateway', meaning: 'embedded history (LMDB) and the generated session secret' }] }),
  CONFAB_DURABILITY: oneOf(['flush', 'commit'], {
    default: 'flush',
    docs: [{ section: 'gateway', meaning: 'embedded history: `flush` acknowledges after fsync (survives power loss), `commit` after the commit (survives `kill -9`, faster)' }],
  }),
  FLY_ALLOC_ID: text({
    pattern: NAME_64,
    message: 'must be 1-64 chars of [A-Za-z0-9_-]',
    values: '1–64 of `[A-Za-z0-9_-]`',
    readIn: [CONFIG_GEN],
    docs: [
      { section: 'gateway', meaning: 'node id (seed compatible); else `CONFAB_NODE_ID`; else 8 random hex chars' },
      { section: 'nats-config', meaning: 'set by Fly: the default server name is `<FLY_REGION>-<FLY_ALLOC_ID>`' },
    ],
  }),
  CONFAB_NODE_ID: text({
    pattern: NAME_64,
    message: 'must be 1-64 chars of [A-Za-z0-9_-]',
    values: '1–64 of `[A-Za-z0-9_-]`',
    docs: [{ section: 'gateway', default: 'random', meaning: 'node id when `FLY_ALLOC_ID` is not set' }],
  }),
  FLY_REGION: text({
    pattern: NAME_32,
    message: 'must be 1-32 chars of [A-Za-z0-9_-]',
    values: '1–32 of `[A-Za-z0-9_-]`',
    readIn: [CONFIG_GEN],
    docs: [
      { section: 'gateway', meaning: 'region name (seed compatible); else `CONFAB_REGION`; else `local`' },
      { section: 'nats-config', meaning: 'set by Fly: the default cluster name, part of the default server name and of the route DNS name' },
    ],
  }),
  CONFAB_REGION: text({
    default: 'local',
    pattern: NAME_32,
    message: 'must be 1-32 chars of [A-Za-z0-9_-]',
    values: '1–32 of `[A-Za-z0-9_-]`',
    docs: [{ section: 'gateway', meaning: 'region when `FLY_REGION` is not set' }],
  }),
  CONFAB_BUS: oneOf(['memory', 'nats', 'redis', 'pubsub'], {
    docs: [
      {
        section: 'gateway',
        default: 'from below',
        meaning: 'fan-out between gateways: `memory` (in-process: one gateway), `nats`, `redis` or `pubsub` (Google Cloud Pub/Sub, [docs/pubsub.md](docs/pubsub.md); never chosen by default). Unset: `nats` when `NATS_URL` or `NATSAPPHOST` is set, else `redis` when `REDIS_URL` is set, else `memory`',
      },
    ],
  }),
  CONFAB_HISTORY: oneOf(['lmdb', 'memory', 'jetstream', 'redis', 'postgres'], {
    docs: [
      {
        section: 'gateway',
        default: "the bus's own",
        meaning:
          'where room history lives, chosen apart from the bus: `lmdb` (this gateway\'s disk, `CONFAB_DATA_DIR`), `memory` (this process; lost on restart), `jetstream` (needs `NATS_URL`), `redis` (Streams; needs `REDIS_URL`) or `postgres` (needs `DATABASE_URL`, [docs/postgres.md](docs/postgres.md)). Unset: the bus\'s own (`memory` → `lmdb`, `nats` → `jetstream`, `redis` → `redis`, `pubsub` → `postgres`). Any pair works, also across brokers (both URLs set); `lmdb` or `memory` behind the `nats`, `redis` or `pubsub` bus is refused at start: every gateway would number and dedupe rooms on its own',
      },
    ],
  }),
  NATS_URL: parsed((s) => splitList(s).map(natsServer), 'comma list of `nats://`, `tls://` or `host:port`', {
    docs: [
      { section: 'gateway', meaning: 'comma-separated NATS URLs: selects the NATS bus and JetStream history (more in [docs/nats.md](docs/nats.md))' },
      { section: 'nats', first: true, meaning: 'comma-separated `nats://` or `tls://` URLs (or `host:port`); selects the NATS bus and JetStream history' },
    ],
  }),
  NATSAPPHOST: text({
    pattern: /^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/,
    message: (v) => `not a DNS name: ${JSON.stringify(v)}`,
    values: 'DNS name',
    docs: [
      { section: 'gateway', meaning: 'seed discovery: connect to every address of `<name>.internal` (or of the name itself when it resolves)' },
      { section: 'nats', first: true, meaning: 'seed discovery: connect to every address of `<name>.internal` (see above)' },
    ],
  }),
  REDIS_URL: parsed(redisUrl, '`redis://` or `rediss://` URL', {
    docs: [
      { section: 'gateway', meaning: 'selects the Redis bus and Streams history (more in [docs/redis.md](docs/redis.md))' },
      { section: 'redis', first: true, meaning: '`redis://[user:pass@]host:port[/db]` or `rediss://` (TLS); selects this adapter' },
    ],
  }),
  DATABASE_URL: parsed(databaseUrl, '`postgres://` or `postgresql://` URL', {
    docs: [
      { section: 'gateway', meaning: 'PostgreSQL for `CONFAB_HISTORY=postgres` (more in [docs/postgres.md](docs/postgres.md))' },
      { section: 'postgres', first: true, meaning: '`postgres://user:pass@host:port/db` (libpq options such as `sslmode` as query parameters); used with `CONFAB_HISTORY=postgres`' },
    ],
  }),
  CONFAB_SECRET: spec(z.string().min(16, { error: 'must be at least 16 characters' }), undefined, '16 or more characters', {
    docs: [{ section: 'gateway', default: 'generated', meaning: 'HMAC secret for session tokens (≥16 chars). Required with NATS or Redis so every node accepts the same sessions' }],
  }),
  CONFAB_SECRET_FILE: text({
    values: 'path',
    docs: [{ section: 'gateway', meaning: 'file holding the session secret when `CONFAB_SECRET` is not set; refused when empty, under 16 characters, or readable by group/others ([docs/auth.md](docs/auth.md))' }],
  }),
  CONFAB_SESSION_TTL_S: int({
    default: 3600,
    min: 5,
    max: 365 * DAY,
    docs: [{ section: 'gateway', meaning: 'lifetime of one session token; open sockets are asked to `refresh` before it ends and closed with 4500 at its end; an idle handle is released this long after its last renewal' }],
  }),
  CONFAB_SESSION_MAX_S: int({
    default: 7 * DAY,
    min: 5,
    max: 365 * DAY,
    docs: [{ section: 'gateway', meaning: 'longest a chain of renewals may run from its sign-in; then the user signs in again' }],
  }),
  CONFAB_ANONYMOUS: oneOf(['1', '0'], { default: '1', docs: [{ section: 'gateway', meaning: '`1`: `POST /api/session` hands out anonymous handle sessions (the demo); `0`: only app tokens (`CONFAB_JWT_*`)' }] }),
  CONFAB_ANON_ALERTS: oneOf(['1', '0'], { default: '1', docs: [{ section: 'gateway', meaning: '`1`: anonymous sessions may send alerts (rate-limited per user); `0`: only app tokens with `"alert": true`' }] }),
  CONFAB_ALERT_RATE_PER_MIN: int({ default: 6, min: 1, max: 100_000, docs: [{ section: 'gateway', meaning: 'alerts per user per minute (burst up to 3), across its sockets and, through the usage reports (`CONFAB_USAGE_GOSSIP_MS`), across nodes' }] }),
  CONFAB_JWT_SECRET: spec(z.string().min(32, { error: 'must be at least 32 characters' }), undefined, '32 or more characters', {
    raw: true,
    docs: [{ section: 'gateway', meaning: 'accept app tokens (JWT) signed HS256 with this shared secret ([docs/auth.md](docs/auth.md))' }],
  }),
  CONFAB_JWT_PUBLIC_KEY: file({ docs: [{ section: 'gateway', meaning: 'accept app tokens signed RS256 or ES256 (P-256) by the key whose public half is in this PEM file' }] }),
  CONFAB_JWT_JWKS: file({ docs: [{ section: 'gateway', meaning: 'accept app tokens signed RS256 or ES256 by a key of this JWKS file' }] }),
  CONFAB_JWT_ISSUER: text({ docs: [{ section: 'gateway', meaning: 'app tokens must carry this `iss`' }] }),
  CONFAB_JWT_AUDIENCE: text({ docs: [{ section: 'gateway', meaning: 'app tokens must carry this `aud`' }] }),
  CONFAB_PRIVATE_PREFIX: text({
    default: 'private-',
    pattern: /^[a-z0-9][a-z0-9_-]{0,30}$/,
    message: 'must be the start of a room name: [a-z0-9][a-z0-9_-]{0,30}',
    values: 'start of a room name',
    docs: [{ section: 'gateway', meaning: 'rooms whose name starts with this are private: joined only with a grant of an app token' }],
  }),
  CONFAB_PRIVATE_ROOMS: parsed(roomList, 'comma list of room names', { default: [], docs: [{ section: 'gateway', meaning: 'more private rooms, by name' }] }),
  CONFAB_METRICS_PORT: int({ min: 0, max: 65535, docs: [{ section: 'gateway', default: 'unset (on `PORT`)', meaning: 'serve `/metrics` on this port only (bound to `CONFAB_METRICS_HOST`), not on `PORT`' }] }),
  CONFAB_METRICS_HOST: text({ default: '127.0.0.1', values: 'address', docs: [{ section: 'gateway', meaning: 'listen address of `CONFAB_METRICS_PORT`' }] }),
  CONFAB_METRICS_TOKEN: text({ docs: [{ section: 'gateway', meaning: '`/metrics` answers only requests with `Authorization: Bearer <token>`' }] }),
  CONFAB_API_KEY: text({ docs: [{ section: 'gateway', meaning: 'enables the HTTP publish API' }] }),
  CONFAB_ALLOWED_ORIGINS: list({
    default: [],
    values: 'comma list of origins, or `*`',
    docs: [
      {
        section: 'gateway',
        default: 'loopback pages',
        meaning:
          'comma-separated origins allowed to open a WebSocket, or `*`. The page origins of `CONFAB_PUBLIC_URLS` are always allowed; with neither set only pages on `localhost`, `127.0.0.1` or `[::1]` are (never the request\'s `Host`: DNS rebinding)',
      },
    ],
  }),
  CONFAB_PUBLIC_URLS: parsed(publicUrlList, `comma list of ≤ ${MAX_PUBLIC_URLS} \`ws://\`/\`wss://\` URLs`, {
    default: [],
    docs: [
      {
        section: 'gateway',
        meaning:
          'comma-separated `ws://`/`wss://` URLs of every region\'s entry point (at most 16; no credentials, query or fragment). Served at `GET /api/config`; the web client tries its own origin first, then these (failover, readiness probe: the page\'s CSP allows their origins)',
      },
    ],
  }),
  CONFAB_ROOMS: parsed(roomList, 'comma list of `[a-z0-9][a-z0-9_-]{0,31}`', { default: ['lobby', 'random'], docs: [{ section: 'gateway', meaning: 'rooms listed to every client' }] }),
  CONFAB_MAX_FRAME_BYTES: int({ default: 16 * 1024, min: 256, max: 16 * 1024 * 1024, docs: [{ section: 'gateway', meaning: 'largest client frame; larger closes with 1009' }] }),
  CONFAB_MAX_TEXT_CHARS: int({ default: 2000, min: 1, max: 1_000_000, docs: [{ section: 'gateway', meaning: 'longest message text' }] }),
  CONFAB_MAX_ROOMS: int({ default: 50, min: 1, max: 100_000, docs: [{ section: 'gateway', meaning: 'rooms per connection' }] }),
  CONFAB_RATE_PER_SEC: int({ default: 20, min: 1, max: 1_000_000, docs: [{ section: 'gateway', meaning: 'frames per second per connection' }] }),
  CONFAB_RATE_BURST: int({ default: 40, min: 1, max: 1_000_000, docs: [{ section: 'gateway', meaning: 'burst above the rate' }] }),
  CONFAB_FLOOD_CLOSE_AFTER: int({ default: 100, min: 1, max: 1_000_000, docs: [{ section: 'gateway', meaning: 'frames over the rate, with no whole second within it in between, before closing with 4003' }] }),
  CONFAB_SEND_BUFFER_BYTES: int({ default: 1024 * 1024, min: 1024, max: 1024 * 1024 * 1024, docs: [{ section: 'gateway', meaning: 'per-connection send buffer; a slower consumer is closed with 4001' }] }),
  CONFAB_MAX_CONN_PER_IP: int({ default: 256, min: 1, max: 1_000_000, docs: [{ section: 'gateway', meaning: 'WebSockets per client address (IPv6: per /64), behind trusted proxies per forwarded address; more are refused with 429 `too_many_connections`' }] }),
  CONFAB_MAX_HTTP_PER_IP: int({
    min: 1,
    max: 1_000_000,
    docs: [{ section: 'gateway', default: '`CONFAB_MAX_CONN_PER_IP`', meaning: 'open TCP connections per peer address (IPv6: per /64) that are not (yet) WebSockets: page, API, silent sockets; more are answered 429 and closed. Trusted proxies are exempt (their clients count per forwarded address)' }],
  }),
  CONFAB_MAX_SOCKETS: int({
    min: 1,
    max: 10_000_000,
    docs: [{ section: 'gateway', default: 'from `ulimit -n`', meaning: 'open WebSockets per node; more are refused with 503 `node_full`. Default: the HTTP connection budget less 5% (at least 16) kept for plain HTTP, so health checks still answer on a full node' }],
  }),
  CONFAB_MAX_HTTP_CONNECTIONS: int({
    min: 1,
    max: 10_000_000,
    docs: [{ section: 'gateway', default: 'from `ulimit -n`', meaning: 'open TCP connections per node (WebSockets included); more are answered 503 `node_full` and closed, and past it plus half the headroom dropped at accept. Default: the open-files limit (`/proc/self/limits`) less a headroom of max(64, 10%) for the bus, history and logs' }],
  }),
  CONFAB_MAX_SOCKETS_PER_USER: int({ default: 16, min: 1, max: 100_000, docs: [{ section: 'gateway', meaning: 'WebSockets one user (session user id) may hold on all nodes together (through the usage reports, `CONFAB_USAGE_GOSSIP_MS`; docs/limits.md); more are refused with 429 `too_many_sockets`' }] }),
  CONFAB_MAX_ROOMS_PER_USER: int({ default: 100, min: 1, max: 1_000_000, docs: [{ section: 'gateway', meaning: 'distinct rooms one user may have joined across its sockets and nodes (`too_many_rooms`)' }] }),
  CONFAB_MAX_ROOMS_PER_NODE: int({ default: 10_000, min: 1, max: 10_000_000, docs: [{ section: 'gateway', meaning: 'distinct rooms with members on a node; a join into one more is refused with `node_full` (retry later)' }] }),
  CONFAB_USER_MSG_PER_SEC: int({
    min: 1,
    max: 1_000_000,
    docs: [{ section: 'gateway', default: '1.5 × `CONFAB_RATE_PER_SEC` (30)', meaning: 'messages (`pub`) per second per user across its sockets and nodes; over it `rate_limited`' }],
  }),
  CONFAB_USER_MSG_BURST: int({ min: 1, max: 1_000_000, docs: [{ section: 'gateway', default: '1.5 × `CONFAB_RATE_BURST` (60)', meaning: 'burst of the per-user message rate' }] }),
  CONFAB_USER_TYPING_PER_SEC: int({ default: 2, min: 1, max: 1_000_000, docs: [{ section: 'gateway', meaning: 'typing notices per second per user across its sockets, rooms and nodes (over it dropped silently); each room also coalesces a user\'s notices to one per 2.5 s' }] }),
  CONFAB_USER_TYPING_BURST: int({ default: 6, min: 1, max: 1_000_000, docs: [{ section: 'gateway', meaning: 'burst of the per-user typing rate' }] }),
  CONFAB_USAGE_GOSSIP_MS: int({
    default: 1000,
    min: 0,
    max: 60_000,
    docs: [{ section: 'gateway', meaning: 'how often a node tells the others (bus subject `ctl.usage`) what its heavy users consumed and hold, so per-user rates and socket and room caps hold across nodes (0: per node only). See [docs/limits.md](docs/limits.md)' }],
  }),
  CONFAB_TRUSTED_PROXIES: parsed(cidrList, 'comma list of addresses and CIDR ranges (IPv4, IPv6)', {
    default: [],
    docs: [
      {
        section: 'gateway',
        meaning:
          'proxies (addresses or CIDR ranges, e.g. `10.0.0.0/8,fd00::/8`) whose `CONFAB_CLIENT_IP_HEADER` names the client address for the per-address limits; the header from any other peer is ignored',
      },
    ],
  }),
  CONFAB_CLIENT_IP_HEADER: oneOf(['x-forwarded-for', 'fly-client-ip'], {
    default: 'x-forwarded-for',
    docs: [{ section: 'gateway', meaning: 'the header a trusted proxy names the client in: `x-forwarded-for` (HAProxy `option forwardfor`; the right-most entry that is not a trusted proxy) or `fly-client-ip` (Fly\'s proxy)' }],
  }),
  CONFAB_PING_INTERVAL_MS: int({ default: 25_000, min: 100, max: 600_000, docs: [{ section: 'gateway', meaning: 'WebSocket ping interval' }] }),
  CONFAB_PING_TIMEOUT_MS: int({ min: 50, max: 600_000, docs: [{ section: 'gateway', default: '`min(10000, interval)`', meaning: 'time to answer a ping' }] }),
  CONFAB_HISTORY_LIMIT: int({
    default: 10_000,
    min: 1,
    max: 100_000_000,
    docs: [
      { section: 'gateway', meaning: 'messages kept per room' },
      { section: 'nats', meaning: 'messages kept per room (`max_msgs_per_subject`)' },
      { section: 'redis', after: 'CONFAB_REDIS_PREFIX', meaning: 'messages kept per room (exact `MAXLEN`)' },
    ],
  }),
  CONFAB_HISTORY_MAX_AGE_S: int({
    default: 30 * DAY,
    min: 0,
    max: 100 * 365 * DAY,
    docs: [{ section: 'gateway', meaning: 'messages older than this are dropped, on every history adapter; `0` = no age limit ([docs/retention.md](docs/retention.md))' }],
  }),
  CONFAB_HISTORY_MAX_BYTES: int({
    default: 16 * 1024 * 1024,
    min: 0,
    max: Number.MAX_SAFE_INTEGER,
    docs: [{ section: 'gateway', meaning: 'per room: the oldest messages are dropped while the room stores more bytes than this (the newest is always kept); `0` = no byte limit. JetStream: see [docs/retention.md](docs/retention.md)' }],
  }),
  CONFAB_DEDUPE_WINDOW_S: int({
    default: 900,
    min: 1,
    max: 7 * DAY,
    docs: [{ section: 'gateway', meaning: 'how long a message id is remembered for dedupe, also after its message was trimmed (a resend within it is answered `dup` with the original offset)' }],
  }),
  CONFAB_HISTORY_SWEEP_MS: int({
    default: 60_000,
    min: 50,
    max: 3_600_000,
    docs: [{ section: 'gateway', meaning: 'how often age retention and id/room expiry run (LMDB, memory, Redis, PostgreSQL; JetStream expires by itself)' }],
  }),
  CONFAB_RECENT_ON_JOIN: int({ default: 50, min: 0, max: 10_000, docs: [{ section: 'gateway', meaning: 'messages replayed on a fresh join' }] }),
  CONFAB_ROOM_CACHE: int({
    default: 256,
    min: 0,
    max: 100_000,
    docs: [{ section: 'gateway', meaning: 'per room with members on a node: the last messages kept encoded in memory, so joins and resumes that fall inside it read no history (0 turns it off)' }],
  }),
  CONFAB_CACHE_BYTES: int({
    default: 64 * 1024 * 1024,
    min: 0,
    max: 64 * 1024 * 1024 * 1024,
    docs: [{ section: 'gateway', meaning: 'node-wide bound on the bytes of every room\'s encoded message cache (`CONFAB_ROOM_CACHE`); past it the least recently used rooms\' oldest entries are dropped first (joins reaching past a cache read history); `0` turns the caches off' }],
  }),
  CONFAB_REPLAY_MAX: int({
    default: 300,
    min: 1,
    max: 1_000_000,
    docs: [{ section: 'gateway', meaning: 'most messages replayed by one resume (`join` with `since`); older missed ones are named in `joined.missed` and paged with the `history` frame' }],
  }),
  CONFAB_PRESENCE_GRACE_MS: int({ default: 5_000, min: 0, max: 600_000, docs: [{ section: 'gateway', meaning: 'a user who disconnects is shown leaving only after this (reloads and node moves show nothing)' }] }),
  CONFAB_DRAIN_READY_DELAY_MS: int({ default: 1_000, min: 0, max: 600_000, docs: [{ section: 'gateway', meaning: 'on SIGTERM: time between failing `/readyz` and closing anything (let the load balancer notice)' }] }),
  CONFAB_DRAIN_WINDOW_MS: int({ default: 5_000, min: 0, max: 600_000, docs: [{ section: 'gateway', meaning: 'clients are moved at random times spread over this window' }] }),
  CONFAB_SHUTDOWN_TIMEOUT_MS: int({ default: 20_000, min: 100, max: 3_600_000, docs: [{ section: 'gateway', meaning: 'hard limit for a graceful shutdown' }] }),
  CONFAB_HEADERS_TIMEOUT_MS: int({ default: 10_000, min: 100, max: 600_000, docs: [{ section: 'gateway', meaning: 'HTTP header timeout (slowloris)' }] }),
  CONFAB_MAX_HEADER_BYTES: int({ default: 16 * 1024, min: 1024, max: 1024 * 1024, docs: [{ section: 'gateway', meaning: 'largest HTTP header block' }] }),
  LOG_LEVEL: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
    default: 'info',
    message: (v) => `unknown level ${v}`,
    docs: [{ section: 'gateway', meaning: 'pino level: `fatal` … `trace`, `silent`' }],
  }),
  CONFAB_EXIT_ON_BUG: oneOf(['0', '1'], {
    readIn: ['src/gateway/process-guard.ts'],
    docs: [{ section: 'gateway', default: '`0` (`1` under `NODE_ENV=test`)', meaning: '`1`: an unhandled promise rejection ends the process with code 70 instead of being logged and counted' }],
  }),
  NODE_ENV: text({
    readIn: ['src/gateway/process-guard.ts'],
    docs: [{ section: 'gateway', meaning: '`test` (as `npm test` sets it) makes `CONFAB_EXIT_ON_BUG` default to `1`; nothing else reads it' }],
  }),

  // ---- the gateway's NATS adapter (docs/nats.md; src/nats/options.ts)
  NATS_PORT: port({
    default: 4222,
    readIn: [CONFIG_GEN],
    docs: [
      { section: 'nats', meaning: 'port used with `NATSAPPHOST` addresses' },
      { section: 'nats-config', after: 'NATS_LISTEN_HOST', meaning: 'client port' },
    ],
  }),
  NATS_USER: text({
    readIn: [CONFIG_GEN],
    docs: [
      { section: 'nats', meaning: 'user/password authentication: the user (with `NATS_PASS`)' },
      { section: 'nats-config', meaning: 'the user every client must authenticate as (`authorization` block); required unless `NATS_NO_AUTH=1`' },
    ],
  }),
  NATS_PASS: text({
    raw: true,
    values: 'text (not trimmed)',
    readIn: [CONFIG_GEN],
    docs: [
      { section: 'nats', meaning: 'user/password authentication: the password' },
      { section: 'nats-config', meaning: 'its password (≥ 12 characters, no quotes, backslashes or line breaks)' },
    ],
  }),
  NATS_NO_AUTH: oneOf(['1'], {
    readIn: [CONFIG_GEN],
    docs: [{ section: 'nats-config', meaning: '`1`: render a config without client authentication (a closed test network only: anyone who reaches the bus can forge messages)' }],
  }),
  NATS_TOKEN: text({ docs: [{ section: 'nats', meaning: 'token authentication' }] }),
  NATS_CREDS: file({ docs: [{ section: 'nats', meaning: 'path to a `.creds` file (JWT + nkey seed)' }] }),
  NATS_NKEY: file({ docs: [{ section: 'nats', meaning: 'path to a file holding a user nkey seed (`SU…`)' }] }),
  NATS_TLS_CA: file({ docs: [{ section: 'nats', meaning: 'CA file to verify the servers (turns TLS on)' }] }),
  NATS_TLS_CERT: file({ docs: [{ section: 'nats', meaning: 'client certificate (mutual TLS; with `NATS_TLS_KEY`, both or neither)' }] }),
  NATS_TLS_KEY: file({ docs: [{ section: 'nats', meaning: 'client key (mutual TLS; with `NATS_TLS_CERT`, both or neither)' }] }),
  NATS_CONNECT_TIMEOUT_MS: int({ default: 10_000, min: 100, max: 600_000, docs: [{ section: 'nats', meaning: 'first connection timeout; the gateway exits if no server answers' }] }),
  NATS_REQUEST_TIMEOUT_MS: int({ default: 5_000, min: 100, max: 600_000, docs: [{ section: 'nats', meaning: 'JetStream publish-ack and API timeout' }] }),
  CONFAB_NATS_PREFIX: text({
    default: 'confab',
    pattern: NAME_64,
    message: 'must be 1-64 chars of [A-Za-z0-9_-]',
    values: '1–64 of `[A-Za-z0-9_-]`',
    docs: [{ section: 'nats', meaning: 'subject prefix (lets several confab installs share a NATS account)' }],
  }),
  CONFAB_STREAM_NAME: text({
    default: 'CONFAB',
    pattern: NAME_32,
    message: 'must be 1-32 chars of [A-Za-z0-9_-]',
    values: '1–32 of `[A-Za-z0-9_-]`',
    docs: [{ section: 'nats', meaning: 'history stream name' }],
  }),
  CONFAB_STREAM_REPLICAS: int({ default: 1, min: 1, max: 5, docs: [{ section: 'nats', meaning: '1–5; use 3 on a 3-node cluster' }] }),
  CONFAB_STREAM_STORAGE: oneOf(['file', 'memory'], { default: 'file', docs: [{ section: 'nats', meaning: '`file` or `memory` (cannot change on an existing stream)' }] }),
  CONFAB_STREAM_MAX_AGE_S: int({ min: 0, max: 100 * 365 * DAY, docs: [{ section: 'nats', default: '`CONFAB_HISTORY_MAX_AGE_S`', meaning: 'the stream\'s `max_age`: drop messages older than this (`0` = unlimited)' }] }),
  CONFAB_STREAM_MAX_BYTES: int({
    default: -1,
    min: -1,
    max: Number.MAX_SAFE_INTEGER,
    refine: { check: (n) => n !== 0, message: 'use -1 for unlimited, or a positive size' },
    values: '-1, or 1 and up',
    docs: [{ section: 'nats', default: '`-1` (unlimited)', meaning: 'cap the whole stream (oldest dropped first)' }],
  }),
  CONFAB_HOME_REGIONS: parsed(regionList, 'comma list of NATS cluster names', {
    default: [] as string[],
    docs: [{ section: 'nats', default: 'none (one stream)', meaning: 'regions (NATS cluster names) that store history: each room is stored by a stream placed in its home region (see "Home regions and shards")' }],
  }),
  CONFAB_ROOM_HOMES: parsed(roomHomes, 'comma list of `prefix=region`', {
    docs: [{ section: 'nats', default: '`<region>-=<region>` for each home region', meaning: 'a room\'s home is the region of the longest prefix its name starts with' }],
  }),
  CONFAB_HOME_DEFAULT: text({
    pattern: /^[A-Za-z0-9_-]{1,32}$/,
    message: 'must be a region name (1-32 of [A-Za-z0-9_-])',
    values: 'one of `CONFAB_HOME_REGIONS`',
    docs: [{ section: 'nats', default: 'the first home region', meaning: 'home of the rooms no prefix matches' }],
  }),
  CONFAB_STREAM_SHARDS: int({ default: 1, min: 1, max: 64, docs: [{ section: 'nats', meaning: 'history streams per home region (rooms spread by a hash of their name); the same on every gateway' }] }),
  CONFAB_STREAM_DUPLICATE_WINDOW_S: int({ min: 1, max: 7 * DAY, docs: [{ section: 'nats', default: '`CONFAB_DEDUPE_WINDOW_S` (≤ max age)', meaning: 'the stream\'s `duplicate_window`: how long a resent id is recognised' }] }),

  // ---- `confab nats-config`, the nats-server config generator (docs/nats.md; src/nats/config-gen.ts)
  NATS_SERVER_NAME: text({
    pattern: NAME_64,
    message: (v) => `must be 1-64 chars of [A-Za-z0-9_-], got ${JSON.stringify(v)}`,
    values: '1–64 of `[A-Za-z0-9_-]`',
    readIn: [CONFIG_GEN],
    docs: [{ section: 'nats-config', default: '`<FLY_REGION>-<FLY_ALLOC_ID>`, else host name', meaning: 'unique per node (JetStream needs it)' }],
  }),
  NATS_CLUSTER_NAME: text({
    pattern: NAME_64,
    message: (v) => `must be 1-64 chars of [A-Za-z0-9_-], got ${JSON.stringify(v)}`,
    values: '1–64 of `[A-Za-z0-9_-]`',
    readIn: [CONFIG_GEN],
    docs: [{ section: 'nats-config', default: '`FLY_REGION`, else `confab`', meaning: 'cluster (and gateway) name' }],
  }),
  NATS_LISTEN_HOST: text({
    pattern: /^[^\s"]+$/,
    message: 'bad host',
    values: 'address',
    readIn: [CONFIG_GEN],
    docs: [{ section: 'nats-config', default: '`::` on Fly, else `0.0.0.0`', meaning: 'bind address for every port' }],
  }),
  NATS_HTTP_PORT: port({ default: 8222, readIn: [CONFIG_GEN], docs: [{ section: 'nats-config', meaning: 'monitoring port (`/healthz`)' }] }),
  NATS_CLUSTER_PORT: port({ default: 4248, readIn: [CONFIG_GEN], docs: [{ section: 'nats-config', meaning: 'route port (the cluster inside a region)' }] }),
  NATS_GATEWAY_PORT: port({ default: 7222, readIn: [CONFIG_GEN], docs: [{ section: 'nats-config', meaning: 'gateway port (between regions)' }] }),
  NATS_ROUTES: list({
    values: 'comma list',
    readIn: [CONFIG_GEN],
    docs: [{ section: 'nats-config', default: '`<FLY_REGION>.<FLY_APP_NAME>.internal` when on Fly', meaning: 'comma list of `host`, `host:port` or `nats-route://…`' }],
  }),
  NATS_GATEWAYS: text({
    values: '`;`/`,` list',
    readIn: [CONFIG_GEN],
    docs: [{ section: 'nats-config', meaning: 'regions joined by gateways: `ord,syd` (needs `FLY_APP_NAME`) or `ord=nats://h1:7222\\|nats://h2:7222;syd=…`' }],
  }),
  NATS_GATEWAY_ADVERTISE: text({
    pattern: /^(\[[^\]\s"]+\]|[^:\s"]+):\d{1,5}$/,
    message: (v) => `expected host:port, got ${JSON.stringify(v)}`,
    values: '`host:port`',
    readIn: [CONFIG_GEN],
    docs: [{ section: 'nats-config', default: 'the gateway listen address', meaning: 'the address other regions are told to reach this node\'s gateway at (a proxy or NAT in front of it; `confab cluster up --wan-latency` uses it)' }],
  }),
  NATS_STORE_DIR: text({
    default: '/nats-store',
    pattern: /^[^"\n]+$/,
    message: 'bad path',
    values: 'path',
    readIn: [CONFIG_GEN],
    docs: [{ section: 'nats-config', meaning: 'JetStream store directory' }],
  }),
  NATS_MAX_FILE_STORE: text({
    default: '1TB',
    pattern: SIZE_RE,
    message: (v) => `expected a size like 10GB or 512MB, got ${JSON.stringify(v)}`,
    values: 'size (`512MB`, `10GB`, …)',
    readIn: [CONFIG_GEN],
    docs: [{ section: 'nats-config', meaning: 'JetStream file storage cap' }],
  }),
  NATS_MAX_MEM_STORE: text({
    pattern: SIZE_RE,
    message: (v) => `expected a size like 10GB or 512MB, got ${JSON.stringify(v)}`,
    values: 'size (`512MB`, `10GB`, …)',
    readIn: [CONFIG_GEN],
    docs: [{ section: 'nats-config', default: '75% of RAM', meaning: 'JetStream memory storage cap' }],
  }),
  NATS_APPEND_CONFIG: text({
    pattern: /^[A-Za-z0-9+/=\s_-]+$/,
    message: 'not base64',
    values: 'base64',
    readIn: [CONFIG_GEN],
    docs: [{ section: 'nats-config', meaning: 'base64 text appended to the config verbatim' }],
  }),
  FLY_APP_NAME: text({
    readIn: [CONFIG_GEN],
    docs: [{ section: 'nats-config', meaning: 'set by Fly: routes and gateways by DNS (`<region>.<app>.internal`), listening on `::`; a node alone behind its route name is rendered standalone' }],
  }),
  FLY_MACHINE_ID: text({ readIn: [CONFIG_GEN], docs: [{ section: 'nats-config', meaning: 'set by Fly: the default server name uses it when `FLY_ALLOC_ID` is not set' }] }),

  // ---- the gateway's Redis adapter (docs/redis.md; src/redis/options.ts)
  CONFAB_REDIS_PREFIX: text({
    default: 'confab',
    pattern: /^[A-Za-z0-9_.-]{1,64}$/,
    message: 'must be 1-64 chars of [A-Za-z0-9_.-]',
    values: '1–64 of `[A-Za-z0-9_.-]`',
    docs: [{ section: 'redis', meaning: 'prefix of every key and channel (1–64 of `[A-Za-z0-9_.-]`); gateways that must see each other use the same one' }],
  }),
  CONFAB_REDIS_DEDUPE_S: int({ min: 1, max: 30 * DAY, docs: [{ section: 'redis', default: '`CONFAB_DEDUPE_WINDOW_S`', meaning: 'how long a client id is remembered on Redis (1 s … 30 days), also after its message was trimmed' }] }),
  CONFAB_REDIS_EPOCH: oneOf(['auto', 'keep', 'restart'], { default: 'auto', docs: [{ section: 'redis', meaning: '`auto`, `restart` or `keep` (see Epoch)' }] }),
  CONFAB_REDIS_WAIT_REPLICAS: int({ default: 0, min: 0, max: 16, docs: [{ section: 'redis', meaning: 'after each append, `WAIT` for this many replicas (0–16)' }] }),
  CONFAB_REDIS_WAIT_TIMEOUT_MS: int({ default: 1000, min: 1, max: 60_000, docs: [{ section: 'redis', meaning: '`WAIT` timeout; fewer replicas = `store_failed`' }] }),
  CONFAB_REDIS_COMMAND_TIMEOUT_MS: int({ default: 5000, min: 10, max: 600_000, docs: [{ section: 'redis', meaning: 'a command without a reply fails after this long' }] }),
  CONFAB_REDIS_CONNECT_TIMEOUT_MS: int({ default: 10_000, min: 10, max: 600_000, docs: [{ section: 'redis', meaning: 'the gateway fails to start (`bus_unavailable`) if Redis is not ready within this' }] }),
  CONFAB_REDIS_RECONNECT_MAX_MS: int({ default: 2000, min: 10, max: 600_000, docs: [{ section: 'redis', meaning: 'cap of the reconnect backoff' }] }),
  CONFAB_REDIS_PING_MS: int({ default: 5000, min: 50, max: 600_000, docs: [{ section: 'redis', meaning: 'health `PING` interval per connection' }] }),

  // ---- the gateway's Google Cloud Pub/Sub bus (docs/pubsub.md; src/pubsub/options.ts)
  GOOGLE_CLOUD_PROJECT: text({
    pattern: /^[a-z][a-z0-9:.-]{4,61}[a-z0-9]$/,
    message: (v) => `not a Google Cloud project id: ${JSON.stringify(v)}`,
    values: 'project id',
    docs: [{ section: 'pubsub', default: "the key file's `project_id`", meaning: 'project of the topic and subscriptions (any well-formed id on the emulator)' }],
  }),
  GOOGLE_APPLICATION_CREDENTIALS: file({
    docs: [{ section: 'pubsub', default: '`./google-service-account.json` if it exists, else the environment\'s default credentials', meaning: 'service-account key file (JSON); never commit it' }],
  }),
  PUBSUB_EMULATOR_HOST: text({
    pattern: /^[A-Za-z0-9.[\]:-]+:\d{1,5}$/,
    message: (v) => `expected host:port, got ${JSON.stringify(v)}`,
    values: '`host:port`',
    docs: [{ section: 'pubsub', meaning: 'talk to the Pub/Sub emulator there (plain text, no credentials) instead of Google' }],
  }),
  CONFAB_PUBSUB_TOPIC: text({
    default: 'confab',
    pattern: /^(?!goog)[A-Za-z][A-Za-z0-9._~+%-]{2,254}$/,
    message: (v) => `not a Pub/Sub topic name (3-255 of [A-Za-z0-9._~+%-], starting with a letter, not "goog"): ${JSON.stringify(v)}`,
    values: 'topic name',
    docs: [{ section: 'pubsub', meaning: 'the one topic every gateway publishes to (created at start if missing); gateways that must see each other use the same one' }],
  }),
  CONFAB_PUBSUB_EXPIRATION_S: int({
    default: DAY,
    min: DAY,
    max: 31 * DAY,
    docs: [{ section: 'pubsub', meaning: "a node's subscription left behind by a crash is deleted by Pub/Sub after this long without a subscriber (1–31 days; Pub/Sub's own default is 31)" }],
  }),
  CONFAB_PUBSUB_RETENTION_S: int({
    default: 600,
    min: 600,
    max: 7 * DAY,
    docs: [{ section: 'pubsub', meaning: 'unacknowledged messages kept per subscription (what a node gets after an outage of its own; older ones are read from history)' }],
  }),
  CONFAB_PUBSUB_TIMEOUT_MS: int({ default: 5000, min: 100, max: 600_000, docs: [{ section: 'pubsub', meaning: 'every Pub/Sub call (publish, admin, health probe) fails after this long' }] }),
  CONFAB_PUBSUB_HEALTH_MS: int({ default: 2000, min: 50, max: 600_000, docs: [{ section: 'pubsub', meaning: "health probe interval (reads this node's subscription); a failed probe marks the bus down" }] }),
  CONFAB_PUBSUB_BATCH_MS: int({ default: 1, min: 0, max: 1000, docs: [{ section: 'pubsub', meaning: 'publisher batching: longest a message waits for others to share its request (the client\'s own default is 10)' }] }),

  // ---- the gateway's PostgreSQL history (docs/postgres.md; src/postgres/options.ts)
  CONFAB_PG_SCHEMA: text({
    default: 'confab',
    pattern: /^[a-z_][a-z0-9_]{0,62}$/,
    message: 'must be 1-63 chars of [a-z0-9_], not starting with a digit',
    values: '`[a-z_][a-z0-9_]{0,62}`',
    docs: [{ section: 'postgres', meaning: 'schema holding every table; gateways that share rooms use the same one' }],
  }),
  CONFAB_PG_POOL_MAX: int({ default: 10, min: 1, max: 1000, docs: [{ section: 'postgres', meaning: 'connections per gateway (pool size)' }] }),
  CONFAB_PG_CONNECT_TIMEOUT_MS: int({ default: 5000, min: 50, max: 600_000, docs: [{ section: 'postgres', meaning: 'a connection attempt fails after this; the gateway does not start if none succeeds' }] }),
  CONFAB_PG_QUERY_TIMEOUT_MS: int({ default: 5000, min: 50, max: 600_000, docs: [{ section: 'postgres', meaning: 'a query without an answer fails after this (also sent as `statement_timeout`)' }] }),
  CONFAB_PG_SYNCHRONOUS_COMMIT: oneOf(['on', 'off', 'local', 'remote_write', 'remote_apply'], {
    docs: [{ section: 'postgres', default: 'the server\'s', meaning: '`synchronous_commit` for confab\'s sessions: what an acknowledged message survives (see Durability)' }],
  }),
  CONFAB_PG_MIGRATE: oneOf(['auto', 'off'], { default: 'auto', docs: [{ section: 'postgres', meaning: '`auto`: create/migrate the schema at start; `off`: only check its version (run `confab migrate` yourself)' }] }),

  // ---- the command line (README "Configuration")
  NATS_SERVER_BIN: text({
    default: 'nats-server',
    values: 'command or path',
    readIn: ['src/procs/nats.ts'],
    docs: [{ section: 'cli', meaning: 'the nats-server binary `confab cluster up` starts and `confab nats-config --check` runs' }],
  }),
  HAPROXY_BIN: text({
    values: 'command or path',
    readIn: ['src/procs/haproxy.ts'],
    docs: [{ section: 'cli', default: '`/usr/sbin/haproxy` if it exists, else `haproxy`', meaning: 'the HAProxy binary `confab cluster up` starts' }],
  }),
  REDIS_SERVER_BIN: text({
    default: '/usr/bin/redis-server',
    values: 'command or path',
    readIn: ['src/procs/redis.ts'],
    docs: [{ section: 'cli', meaning: 'the redis-server binary the process launchers of src/procs start (`npm run chaos`, the tests)' }],
  }),
} satisfies Record<string, EnvSpec<never, undefined> | EnvSpec<any, any>>;

export type EnvName = keyof typeof ENV;
type SpecOf<K extends EnvName> = (typeof ENV)[K];
/** What readEnv returns for a variable: its parsed type, undefined when unset and without a static default. */
export type EnvValue<K extends EnvName> = SpecOf<K> extends EnvSpec<infer T, infer D> ? T | D : never;
/** A variable's parsed type. */
export type EnvType<K extends EnvName> = SpecOf<K> extends EnvSpec<infer T, infer _D> ? T : never;

export function isEnvName(name: string): name is EnvName {
  return Object.hasOwn(ENV, name);
}

/** A declared variable's value as set: trimmed (raw specs: as is), undefined when unset or blank. Not parsed. */
export function envValue(env: Env, name: EnvName): string | undefined {
  const v = env[name];
  if (v === undefined) return undefined;
  if ((ENV[name] as EnvSpec).raw) return v === '' ? undefined : v;
  return v.trim() === '' ? undefined : v.trim();
}

/** Parse `value` as variable `name` would be; throws ConfigError naming it. */
export function parseEnvValue<K extends EnvName>(name: K, value: string): EnvType<K> {
  const r = (ENV[name] as EnvSpec).schema.safeParse(value);
  if (!r.success) throw new ConfigError(name, r.error.issues[0]?.message ?? 'bad value');
  return r.data as EnvType<K>;
}

/** A declared variable, parsed, or its default when unset or blank; throws ConfigError naming it. */
export function readEnv<K extends EnvName>(env: Env, name: K): EnvValue<K> {
  const v = envValue(env, name);
  return (v === undefined ? ENV[name].default : parseEnvValue(name, v)) as EnvValue<K>;
}
