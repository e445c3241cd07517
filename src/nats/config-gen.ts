/**
 * nats-server config generator, the way the seed NATS cluster app builds its
 * config from env (docs/nats.md lists every variable):
 *   - server_name from NATS_SERVER_NAME, else `<FLY_REGION>-<FLY_ALLOC_ID>`, else the host name;
 *   - cluster routes from NATS_ROUTES (list) or DNS `<FLY_REGION>.<FLY_APP_NAME>.internal`;
 *     no routes at all means a standalone server (a one-node "cluster" never turns healthy);
 *   - gateways per region from NATS_GATEWAYS (`ord,syd` with FLY_APP_NAME, or `ord=nats://h:7222|nats://h2:7222;syd=…`),
 *     advertised to other regions as NATS_GATEWAY_ADVERTISE when set (a proxy in front of the gateway port);
 *   - JetStream on NATS_STORE_DIR with NATS_MAX_FILE_STORE / NATS_MAX_MEM_STORE;
 *   - monitoring on 8222 (`/healthz`); NATS_APPEND_CONFIG (base64) appended verbatim;
 *   - client authentication required: `authorization { user, password }` from NATS_USER / NATS_PASS
 *     (the gateways connect with the same variables); refused without them unless NATS_NO_AUTH=1.
 *     Route and gateway ports carry no client credentials: keep them on the private network
 *     (docs/deploy.md, threat model).
 * The file is written atomically (temp file, fsync, rename) so a restart never reads half a config.
 */
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { hostname, totalmem } from 'node:os';
import { randomBytes } from 'node:crypto';
import { ConfigError } from '../config/config.js';

type Env = Record<string, string | undefined>;

const NAME_RE = /^[A-Za-z0-9_-]{1,64}$/;
const SIZE_RE = /^\d+(\.\d+)?\s*(B|K|KB|M|MB|G|GB|T|TB)?$/i;

function str(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

function port(env: Env, name: string, def: number): number {
  const v = str(env, name);
  if (v === undefined) return def;
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 65535) throw new ConfigError(name, `expected a port 1-65535, got ${JSON.stringify(v)}`);
  return Number(v);
}

function size(env: Env, name: string, def: string): string {
  const v = str(env, name) ?? def;
  if (!SIZE_RE.test(v)) throw new ConfigError(name, `expected a size like 10GB or 512MB, got ${JSON.stringify(v)}`);
  return v.replace(/\s+/g, '').toUpperCase();
}

function name(env: Env, n: string, v: string): string {
  if (!NAME_RE.test(v)) throw new ConfigError(n, `must be 1-64 chars of [A-Za-z0-9_-], got ${JSON.stringify(v)}`);
  return v;
}

const q = (s: string) => JSON.stringify(s);

function hostPort(host: string, p: number): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]:${p}` : `${host}:${p}`;
}

function routeUrl(entry: string, clusterPort: number): string {
  if (/^nats(-route)?:\/\//.test(entry)) return entry;
  if (/\s|\/|"/.test(entry)) throw new ConfigError('NATS_ROUTES', `bad route ${JSON.stringify(entry)}`);
  return /^(\[[^\]]+\]|[^:]+):\d+$/.test(entry) ? `nats-route://${entry}` : `nats-route://${hostPort(entry, clusterPort)}`;
}

interface GatewaySpec {
  name: string;
  urls: string[];
}

function gateways(env: Env, app: string | undefined, gwPort: number): GatewaySpec[] {
  const raw = str(env, 'NATS_GATEWAYS');
  if (!raw) return [];
  return raw.split(/[;,]/).map((s) => s.trim()).filter(Boolean).map((entry) => {
    const eq = entry.indexOf('=');
    if (eq < 0) {
      if (!app) throw new ConfigError('NATS_GATEWAYS', `region ${JSON.stringify(entry)} without a URL needs FLY_APP_NAME`);
      return { name: name(env, 'NATS_GATEWAYS', entry), urls: [`nats://${entry}.${app}.internal:${gwPort}`] };
    }
    const urls = entry.slice(eq + 1).split('|').map((u) => u.trim()).filter(Boolean);
    for (const u of urls) if (!/^nats:\/\/[^\s"]+$/.test(u)) throw new ConfigError('NATS_GATEWAYS', `bad gateway URL ${JSON.stringify(u)}`);
    if (urls.length === 0) throw new ConfigError('NATS_GATEWAYS', `no URL for ${entry.slice(0, eq)}`);
    return { name: name(env, 'NATS_GATEWAYS', entry.slice(0, eq).trim()), urls };
  });
}

/** Shortest NATS_PASS the generator accepts. */
export const MIN_NATS_PASS = 12;

/** The client credentials the config requires, or undefined with NATS_NO_AUTH=1. Throws ConfigError naming what is missing. */
function natsAuth(env: Env): { user: string; pass: string } | undefined {
  if (str(env, 'NATS_NO_AUTH') === '1') return undefined;
  const user = str(env, 'NATS_USER');
  const pass = env.NATS_PASS;
  if (!user) throw new ConfigError('NATS_USER', 'the generated config requires client authentication: set NATS_USER and NATS_PASS (the gateways connect with the same), or NATS_NO_AUTH=1 on a closed test network');
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(user)) throw new ConfigError('NATS_USER', 'must be 1-64 chars of [A-Za-z0-9_.-]');
  if (pass === undefined || pass === '') throw new ConfigError('NATS_PASS', 'the generated config requires client authentication: set NATS_PASS with NATS_USER');
  if (pass.length < MIN_NATS_PASS) throw new ConfigError('NATS_PASS', `must be at least ${MIN_NATS_PASS} characters`);
  if (/["\\\n\r]/.test(pass)) throw new ConfigError('NATS_PASS', 'must not contain quotes, backslashes or line breaks');
  return { user, pass };
}

/** Render a nats-server config from env (see file comment). Throws ConfigError naming the bad variable. */
export function renderNatsConfig(env: Env = process.env): string {
  const region = str(env, 'FLY_REGION');
  const alloc = str(env, 'FLY_ALLOC_ID') ?? str(env, 'FLY_MACHINE_ID');
  const app = str(env, 'FLY_APP_NAME');
  const serverName = name(env, 'NATS_SERVER_NAME', str(env, 'NATS_SERVER_NAME') ?? (region && alloc ? `${region}-${alloc}` : hostname().replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 64)));
  const clusterName = name(env, 'NATS_CLUSTER_NAME', str(env, 'NATS_CLUSTER_NAME') ?? region ?? 'confab');
  const listenHost = str(env, 'NATS_LISTEN_HOST') ?? (app ? '::' : '0.0.0.0');
  if (/[\s"]/.test(listenHost)) throw new ConfigError('NATS_LISTEN_HOST', 'bad host');
  const clientPort = port(env, 'NATS_PORT', 4222);
  const httpPort = port(env, 'NATS_HTTP_PORT', 8222);
  const clusterPort = port(env, 'NATS_CLUSTER_PORT', 4248);
  const gwPort = port(env, 'NATS_GATEWAY_PORT', 7222);
  const storeDir = str(env, 'NATS_STORE_DIR') ?? '/nats-store';
  if (/["\n]/.test(storeDir)) throw new ConfigError('NATS_STORE_DIR', 'bad path');
  const maxFile = size(env, 'NATS_MAX_FILE_STORE', '1TB');
  const maxMem = size(env, 'NATS_MAX_MEM_STORE', `${Math.floor((totalmem() * 0.75) / (1024 * 1024))}MB`);

  const routesRaw = str(env, 'NATS_ROUTES');
  const routes = routesRaw
    ? routesRaw.split(',').map((s) => s.trim()).filter(Boolean).map((r) => routeUrl(r, clusterPort))
    : app
      ? [`nats-route://${region ? `${region}.` : 'global.'}${app}.internal:${clusterPort}`]
      : [];
  const gws = gateways(env, app, gwPort);
  const gwAdvertise = str(env, 'NATS_GATEWAY_ADVERTISE');
  if (gwAdvertise !== undefined && !/^(\[[^\]\s"]+\]|[^:\s"]+):\d{1,5}$/.test(gwAdvertise)) throw new ConfigError('NATS_GATEWAY_ADVERTISE', `expected host:port, got ${JSON.stringify(gwAdvertise)}`);
  let append = '';
  const b64 = str(env, 'NATS_APPEND_CONFIG');
  if (b64) {
    if (!/^[A-Za-z0-9+/=\s_-]+$/.test(b64)) throw new ConfigError('NATS_APPEND_CONFIG', 'not base64');
    append = Buffer.from(b64, 'base64').toString('utf8');
    if (append.includes('\0')) throw new ConfigError('NATS_APPEND_CONFIG', 'decodes to binary data');
  }

  const auth = natsAuth(env);

  const out: string[] = [
    '# generated by `confab nats-config`; edit the environment, not this file',
    `server_name: ${q(serverName)}`,
    `listen: ${q(hostPort(listenHost, clientPort))}`,
    `http: ${q(hostPort(listenHost, httpPort))}`,
    '',
    'jetstream {',
    `  store_dir: ${q(storeDir)}`,
    `  max_file_store: ${maxFile}`,
    `  max_memory_store: ${maxMem}`,
    '}',
  ];
  if (routes.length > 0) {
    out.push('', 'cluster {', `  name: ${q(clusterName)}`, `  listen: ${q(hostPort(listenHost, clusterPort))}`, '  connect_retries: 120', '  routes: [');
    for (const r of routes) out.push(`    ${q(r)}`);
    out.push('  ]', '}');
  }
  if (gws.length > 0) {
    out.push('', 'gateway {', `  name: ${q(clusterName)}`, `  listen: ${q(hostPort(listenHost, gwPort))}`);
    // the address other regions are told (gossip) to reach this node at, e.g. a proxy in front of it
    if (gwAdvertise) out.push(`  advertise: ${q(gwAdvertise)}`);
    out.push('  gateways: [');
    for (const g of gws) out.push(`    { name: ${q(g.name)}, urls: [${g.urls.map(q).join(', ')}] }`);
    out.push('  ]', '}');
  }
  if (auth) out.push('', '# clients must authenticate (NATS_USER / NATS_PASS): whoever reaches the bus can forge any message', 'authorization {', `  user: ${q(auth.user)}`, `  password: ${q(auth.pass)}`, '}');
  if (append) out.push('', '# NATS_APPEND_CONFIG', append.trimEnd());
  return out.join('\n') + '\n';
}

/** Write `text` to `path` atomically (mode 0600): temp file in the same directory, fsync, rename over. */
export function writeNatsConfigAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const fd = openSync(tmp, 'w', 0o600); // it holds the client password
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {
      // nothing to remove
    }
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
}
