/**
 * Deploy files, validated as far as this machine allows (no container engine):
 * deploy/haproxy.cfg passes `haproxy -c`; deploy/compose.yaml parses and is
 * consistent (every HAProxy server is a gateway service, every NATS config it
 * implies passes `nats-server -t`); both fly.toml files parse and keep their
 * promises (drain fits in kill_timeout, checks on /readyz and :8222/healthz,
 * volume = store dir); the Dockerfile has the required shape; and the NATS
 * entrypoint really renders, checks and execs a nats-server that turns healthy.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parse as parseToml } from 'smol-toml';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../../src/config/config.js';
import { renderNatsConfig } from '../../src/nats/config-gen.js';
import { REPO_ROOT } from '../../src/testkit/gateway.js';
import { checkHaproxyConfig } from '../../src/procs/haproxy.js';
import { freePort } from '../../src/procs/ports.js';
import { waitFor } from '../../src/procs/wait.js';

const read = (p: string) => readFileSync(join(REPO_ROOT, p), 'utf8');
const dir = mkdtempSync(join(tmpdir(), 'confab-deploy-'));

function natsCheck(name: string, text: string): void {
  const file = join(dir, `${name}.conf`);
  writeFileSync(file, text);
  const r = spawnSync('nats-server', ['-t', '-c', file], { encoding: 'utf8', timeout: 15_000 });
  assert.equal(r.status, 0, `nats-server -t ${name}:\n${r.stdout}${r.stderr}\n${text}`);
}

const seconds = (s: string) => {
  const m = /^(\d+)(s|m)$/.exec(s);
  assert.ok(m, `duration ${s}`);
  return Number(m[1]) * (m[2] === 'm' ? 60 : 1);
};

describe('deploy files', () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('deploy/haproxy.cfg is valid and balances over exactly the compose gateways, with /readyz checks', async () => {
    await checkHaproxyConfig(join(REPO_ROOT, 'deploy/haproxy.cfg'));
    const cfg = read('deploy/haproxy.cfg');
    assert.match(cfg, /balance leastconn/);
    assert.match(cfg, /option httpchk GET \/readyz/);
    assert.match(cfg, /timeout tunnel/);
    const compose = parseYaml(read('deploy/compose.yaml'), { merge: true }) as { services: Record<string, any> };
    const servers = [...cfg.matchAll(/^\s*server (\S+) (\S+):(\d+) /gm)].map((m) => ({ name: m[1]!, host: m[2]!, port: m[3]! }));
    const gateways = Object.entries(compose.services).filter(([, s]) => s.build?.target === 'gateway');
    assert.deepEqual(servers.map((s) => s.host).sort(), gateways.map(([n]) => n).sort());
    for (const s of servers) assert.equal(compose.services[s.host].environment.PORT, s.port);
  });

  it('deploy/compose.yaml: 3 NATS nodes whose generated configs pass nats-server -t, 3 gateways on all of them, HAProxy', () => {
    const compose = parseYaml(read('deploy/compose.yaml'), { merge: true }) as { services: Record<string, any> };
    const nats = Object.entries(compose.services).filter(([, s]) => s.build?.target === 'nats');
    const gws = Object.entries(compose.services).filter(([, s]) => s.build?.target === 'gateway');
    assert.equal(nats.length, 3);
    assert.equal(gws.length, 3);
    assert.ok(compose.services.haproxy?.volumes.some((v: string) => v.startsWith('./haproxy.cfg:')));
    for (const [name, s] of nats) {
      assert.ok(s.healthcheck.test.join(' ').includes(':8222/healthz'), `${name} health check`);
      assert.ok(s.volumes.some((v: string) => v.endsWith(`:${s.environment.NATS_STORE_DIR}`)), `${name} keeps JetStream on a volume`);
      const text = renderNatsConfig({ ...s.environment, NATS_STORE_DIR: join(dir, name) });
      for (const [other] of nats) if (other !== name) assert.match(text, new RegExp(`nats-route://${other}:4248`));
      assert.match(text, /authorization \{/, `${name} requires client authentication`);
      natsCheck(name, text);
    }
    const natsNames = nats.map(([n]) => n);
    for (const [name, s] of gws) {
      const env = s.environment;
      const hosts = env.NATS_URL.split(',').map((u: string) => new URL(u).hostname);
      assert.deepEqual(hosts.sort(), [...natsNames].sort(), `${name} connects to every NATS node`);
      assert.equal(env.NATS_USER, nats[0]![1].environment.NATS_USER, `${name} authenticates to NATS`);
      assert.equal(env.NATS_PASS, nats[0]![1].environment.NATS_PASS);
      assert.ok(Number(env.CONFAB_STREAM_REPLICAS) <= nats.length);
      assert.ok(seconds(s.stop_grace_period) * 1000 > Number(env.CONFAB_SHUTDOWN_TIMEOUT_MS), `${name}: drain fits in stop_grace_period`);
      assert.equal(s.stop_signal, 'SIGTERM');
      for (const n of natsNames) assert.equal(s.depends_on[n].condition, 'service_healthy');
    }
    assert.equal(new Set(gws.map(([, s]) => s.environment.FLY_ALLOC_ID)).size, 3, 'unique node ids');
  });

  it('deploy/fly.gateway.toml: SIGTERM, kill_timeout above the drain, /readyz check on the service port', () => {
    const t = parseToml(read('deploy/fly.gateway.toml')) as any;
    assert.equal(t.kill_signal, 'SIGTERM');
    assert.ok(seconds(t.kill_timeout) * 1000 > Number(t.env.CONFAB_SHUTDOWN_TIMEOUT_MS));
    assert.ok(Number(t.env.CONFAB_SHUTDOWN_TIMEOUT_MS) > Number(t.env.CONFAB_DRAIN_READY_DELAY_MS) + Number(t.env.CONFAB_DRAIN_WINDOW_MS));
    assert.equal(String(t.http_service.internal_port), t.env.PORT);
    assert.ok(t.http_service.checks.some((c: any) => c.path === '/readyz'));
    assert.equal(t.checks.alive.path, '/healthz');
    assert.equal(t.build['build-target'], 'gateway');
  });

  it('per-address limits work behind the proxies: compose trusts exactly HAProxy, Fly its proxy range by Fly-Client-IP, nobody raises the limit', () => {
    const compose = parseYaml(read('deploy/compose.yaml'), { merge: true }) as { services: Record<string, any>; networks: any };
    const haproxyIp = compose.services.haproxy.networks.default.ipv4_address as string;
    for (const [name, s] of Object.entries(compose.services).filter(([, s]) => s.build?.target === 'gateway')) {
      assert.equal(s.environment.CONFAB_TRUSTED_PROXIES, `${haproxyIp}/32`, name);
      assert.equal(s.environment.CONFAB_MAX_CONN_PER_IP, undefined, `${name}: the per-address limit keeps its default`);
      loadConfig(Object.fromEntries(Object.entries(s.environment as Record<string, string>).filter(([k]) => k.startsWith('CONFAB_TRUSTED') || k.startsWith('CONFAB_CLIENT')))); // parses
    }
    assert.match(read('deploy/haproxy.cfg'), /http-request del-header X-Forwarded-For\s+option forwardfor/);
    const fly = (parseToml(read('deploy/fly.gateway.toml')) as any).env;
    assert.equal(fly.CONFAB_CLIENT_IP_HEADER, 'fly-client-ip');
    assert.equal(fly.CONFAB_MAX_CONN_PER_IP, undefined);
    const c = loadConfig({ CONFAB_TRUSTED_PROXIES: fly.CONFAB_TRUSTED_PROXIES, CONFAB_CLIENT_IP_HEADER: fly.CONFAB_CLIENT_IP_HEADER });
    assert.ok(!c.trustedProxies.some((r) => r.startsWith('fdaa')), 'machines on 6PN are not trusted');
  });

  it('deploy/fly.nats.toml: volume at the store dir, :8222/healthz check, and its env renders a config nats-server accepts', () => {
    const t = parseToml(read('deploy/fly.nats.toml')) as any;
    assert.equal(t.mounts.destination, t.env.NATS_STORE_DIR);
    assert.equal(t.checks.health.port, 8222);
    assert.equal(t.checks.health.path, '/healthz');
    assert.ok(seconds(t.kill_timeout) > 30, 'lame duck duration fits');
    assert.equal(t.build['build-target'], 'nats');
    const appended = Buffer.from(t.env.NATS_APPEND_CONFIG, 'base64').toString('utf8');
    assert.match(appended, /lame_duck_duration/);
    // as on a machine of the app: FLY_* set by the platform
    // NATS_PASS is a Fly secret (fly secrets set), not in the file
    assert.equal(t.env.NATS_USER, 'confab');
    assert.equal(t.env.NATS_PASS, undefined, 'the password is a secret, not in fly.nats.toml');
    const text = renderNatsConfig({ ...t.env, NATS_PASS: 'fly-secret-0123456789', NATS_STORE_DIR: join(dir, 'fly'), FLY_APP_NAME: t.app, FLY_REGION: 'ord', FLY_ALLOC_ID: '148e272b' });
    assert.match(text, /nats-route:\/\/ord\.confab-nats\.internal:4248/);
    assert.match(text, /name: "syd", urls: \["nats:\/\/syd\.confab-nats\.internal:7222"\]/);
    natsCheck('fly', text);
  });

  it('deploy/Dockerfile: multi-stage node:20-slim, npm ci, dev deps pruned, non-root, HEALTHCHECK /healthz, EXPOSE 8080, the start CMD', () => {
    const df = read('deploy/Dockerfile');
    const stages = df.split(/^FROM /m).slice(1);
    assert.ok(stages.length >= 3);
    assert.ok(stages.filter((s) => s.startsWith('node:20-slim')).length >= 2);
    assert.match(df, /RUN npm ci\b/);
    assert.match(df, /npm prune --omit=dev/);
    const final = stages.at(-1)!;
    assert.match(final, /^node:20-slim AS gateway/);
    assert.match(final, /^USER node$/m);
    assert.match(final, /^HEALTHCHECK[\s\S]*\/healthz/m);
    assert.match(final, /^EXPOSE 8080$/m);
    assert.match(final, /^CMD \["node","dist\/cli\/confab\.js","start"\]$/m);
    assert.doesNotMatch(final, /npm (ci|install)/, 'the runtime stage installs nothing');
    for (const m of df.matchAll(/^COPY (?!--from)(\S+)/gm)) assert.ok(existsSync(join(REPO_ROOT, m[1]!)), `COPY source ${m[1]} exists`);
    const ignored = read('.dockerignore').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    for (const needed of ['src', 'scripts', 'package.json', 'package-lock.json', 'deploy/nats', 'tsconfig.json']) assert.ok(!ignored.includes(needed), `${needed} is in the build context`);
  });

  it('deploy/nats/entrypoint.sh renders and checks the config, then execs a nats-server that turns healthy (single node)', async () => {
    const script = join(REPO_ROOT, 'deploy/nats/entrypoint.sh');
    assert.equal(spawnSync('sh', ['-n', script]).status, 0);
    const [port, http] = [await freePort(), await freePort()];
    const conf = join(dir, 'etc', 'nats.conf');
    const env = {
      PATH: process.env.PATH,
      CONFAB_CLI: `${process.execPath} --import tsx ${join(REPO_ROOT, 'src/cli/confab.ts')}`,
      NATS_CONFIG_FILE: conf,
      NATS_USER: 'confab',
      NATS_PASS: 'entry-password-0123',
      NATS_STORE_DIR: join(dir, 'entry-store'),
      NATS_SERVER_NAME: 'entry-1',
      NATS_LISTEN_HOST: '127.0.0.1',
      NATS_PORT: String(port),
      NATS_HTTP_PORT: String(http),
      NATS_MAX_MEM_STORE: '64MB',
      NATS_MAX_FILE_STORE: '1GB',
      NATS_APPEND_CONFIG: Buffer.from('max_payload: 1MB\n').toString('base64'),
    };
    const child = spawn('sh', [script], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d));
    child.stderr!.on('data', (d: Buffer) => (out += d));
    let exited = false;
    child.once('exit', () => (exited = true));
    try {
      await waitFor(async () => {
        if (exited) throw new Error(`entrypoint exited:\n${out}`);
        return (await fetch(`http://127.0.0.1:${http}/healthz`).then((r) => r.status, () => 0)) === 200;
      }, { timeoutMs: 30_000, intervalMs: 100, what: 'entrypoint nats-server /healthz' });
      assert.match(out, /is valid/);
      assert.match(readFileSync(conf, 'utf8'), /max_payload: 1MB/);
      // exec: the entrypoint's PID is nats-server itself (signals reach it directly)
      assert.match(readFileSync(`/proc/${child.pid}/cmdline`, 'utf8'), /nats-server/);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
