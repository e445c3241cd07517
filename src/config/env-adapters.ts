/**
 * The environment variables of the bus and history adapters and of `confab nats-config`, in table
 * order (docs/nats.md, docs/redis.md, docs/pubsub.md, docs/postgres.md).
 */
import { CONFIG_GEN, DAY, type EnvSpec, file, int, list, NAME_32, NAME_64, oneOf, parsed, port, regionList, roomHomes, SIZE_RE, text } from './env-kinds.js';

export const ADAPTER_ENV = {
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
} satisfies Record<string, EnvSpec<never, undefined> | EnvSpec<any, any>>;
