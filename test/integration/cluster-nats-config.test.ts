/**
 * `confab nats-config` (the NATS container entrypoint's generator): --check on a
 * generated config, a config nats-server rejects, a bad variable (exit 2), the
 * single-node fix (a lone node behind its DNS name is rendered standalone and
 * turns healthy), and the configs `confab cluster` renders for its layout.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { effectiveEnv } from '../../src/cli/nats-config.js';
import { renderNatsConfig } from '../../src/nats/config-gen.js';
import { REPO_ROOT } from '../../src/testkit/gateway.js';
import { startHaproxy } from '../../src/procs/haproxy.js';
import { runNatsOnConfig } from '../../src/procs/nats.js';

const CLI = ['--import', 'tsx', join(REPO_ROOT, 'src/cli/confab.ts')];

function runCli(args: string[], env: Record<string, string | undefined> = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [...CLI, ...args], { cwd: REPO_ROOT, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('confab nats-config', () => {
  const dir = mkdtempSync(join(tmpdir(), 'confab-nc-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const base = { NATS_USER: 'confab', NATS_PASS: 'test-password-0123', NATS_SERVER_NAME: 'ord-1', NATS_LISTEN_HOST: '127.0.0.1', NATS_STORE_DIR: join(dir, 'store'), NATS_MAX_FILE_STORE: '1GB', NATS_MAX_MEM_STORE: '64MB', FLY_APP_NAME: '', NATS_ROUTES: '', NATS_GATEWAYS: '' };

  it('writes a config atomically and validates it with nats-server -t (--check)', () => {
    const file = join(dir, 'nats.conf');
    const append = Buffer.from('max_payload: 2MB\n').toString('base64');
    const r = runCli(['nats-config', '--out', file, '--check'], { ...base, NATS_ROUTES: '127.0.0.1:16248,127.0.0.1:16249', NATS_CLUSTER_PORT: '16248', NATS_APPEND_CONFIG: append });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /is valid/);
    const text = readFileSync(file, 'utf8');
    assert.match(text, /max_payload: 2MB/);
    assert.match(text, /nats-route:\/\/127\.0\.0\.1:16249/);
    assert.match(text, /store_dir: ".*store"/);
  });

  it('--check fails on a config nats-server rejects, and a bad variable is named (exit 2)', () => {
    const bad = runCli(['nats-config', '--check'], { ...base, NATS_APPEND_CONFIG: Buffer.from('jetstream: { max_file_store: "lots" }\n').toString('base64') });
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /rejected/);
    const badVar = runCli(['nats-config'], { ...base, NATS_MAX_FILE_STORE: 'huge' });
    assert.equal(badVar.status, 2);
    assert.match(badVar.stderr, /NATS_MAX_FILE_STORE/);
    const badArg = runCli(['nats-config', '--bogus']);
    assert.equal(badArg.status, 2);
  });

  it('a single node whose route name resolves only to itself renders standalone and turns healthy', async () => {
    // rendered with fixed ports; the server runs it with kernel ports instead (-p -1 -m -1), read back from its ports file
    const env = { ...base, FLY_APP_NAME: 'confab-nats', FLY_REGION: 'ord', NATS_PORT: '4222', NATS_HTTP_PORT: '8222' };
    // DNS says: only this machine (as on the first deploy of the seed's app)
    const eff = await effectiveEnv(env, async () => [{ address: '10.9.8.7' }], new Set(['10.9.8.7']));
    assert.ok(eff.note, 'the fallback is reported');
    const text = renderNatsConfig(eff.env);
    assert.doesNotMatch(text, /cluster \{/, 'no one-node cluster (it would never elect a meta leader)');
    // with a peer in DNS the routes stay
    const peered = await effectiveEnv(env, async () => [{ address: '10.9.8.7' }, { address: '10.9.8.8' }], new Set(['10.9.8.7']));
    assert.match(renderNatsConfig(peered.env), /nats-route:\/\/ord\.confab-nats\.internal:4248/);
    // gateways named by region: standalone only while no other region has a server either
    const gwEnv = { ...env, NATS_GATEWAYS: 'ord,syd' };
    const alone = await effectiveEnv(gwEnv, async (h) => (h.startsWith('syd.') ? Promise.reject(new Error('ENOTFOUND')) : [{ address: '10.9.8.7' }]), new Set(['10.9.8.7']));
    assert.doesNotMatch(renderNatsConfig(alone.env), /gateway \{|cluster \{/);
    const withSyd = await effectiveEnv(gwEnv, async (h) => (h.startsWith('syd.') ? [{ address: '10.1.1.1' }] : [{ address: '10.9.8.7' }]), new Set(['10.9.8.7']));
    assert.equal(withSyd.note, undefined);
    assert.match(renderNatsConfig(withSyd.env), /gateway \{/);
    const file = join(dir, 'single.conf');
    writeFileSync(file, text.replace(/listen: "\[::\]:/g, 'listen: "127.0.0.1:'));
    const server = await runNatsOnConfig(file);
    try {
      await server.waitHealthy(15_000);
    } finally {
      await server.close();
    }
  });

  it('renders the local cluster layout: routes within a region, gateways between regions (valid for nats-server -t)', async () => {
    const { planCluster, natsConfigFor } = await import('../../src/cli/cluster-plan.js');
    const s = planCluster({ regions: 2, natsPerRegion: 3, gatewaysPerRegion: 2, basePort: 30000, dir, regionNames: ['ord', 'syd'] }, 'x');
    assert.equal(s.streamReplicas, 3);
    const text = natsConfigFor(s, s.regions[1]!, s.regions[1]!.nats[0]!);
    assert.match(text, /server_name: "syd-n1"/);
    assert.equal((text.match(/nats-route:\/\//g) ?? []).length, 3);
    assert.match(text, /name: "ord", urls: \["nats:\/\/127\.0\.0\.1:30140", "nats:\/\/127\.0\.0\.1:30141", "nats:\/\/127\.0\.0\.1:30142"\]/);
    const file = join(dir, 'syd-n1.conf');
    writeFileSync(file, text);
    const t = spawnSync('nats-server', ['-t', '-c', file], { encoding: 'utf8' });
    assert.equal(t.status, 0, t.stderr);
    // and the HAProxy kit refuses an unusable socket path instead of failing later
    await assert.rejects(startHaproxy({ backends: [], socketPath: '/tmp/' + 'x'.repeat(120) }), /too long/);
  });
});
