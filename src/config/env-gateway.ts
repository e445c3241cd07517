/** The gateway's own environment variables, in table order (README "Configuration"; read in src/config/config.ts). */
import { z } from 'zod';
import { cidrList, CONFIG_GEN, databaseUrl, DAY, type EnvSpec, file, int, list, MAX_PUBLIC_URLS, NAME_32, NAME_64, natsServer, oneOf, parsed, publicUrlList, redisUrl, roomList, spec, splitList, text } from './env-kinds.js';

export const GATEWAY_ENV = {
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
} satisfies Record<string, EnvSpec<never, undefined> | EnvSpec<any, any>>;
