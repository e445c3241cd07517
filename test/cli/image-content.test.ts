/**
 * What the Docker image holds, without Docker: the build stage of deploy/Dockerfile is repeated in a
 * temp dir (its COPY lines, filtered by .dockerignore, then its build command, with node_modules
 * standing in for `npm ci`), and the result must hold no test kit, bench or chaos code and import
 * nothing but Node built-ins and production dependencies. The image's later stages copy only
 * package.json, the pruned node_modules and dist/ from it; package-lock.json says what
 * `npm prune --omit=dev` keeps, and socket.io and playwright-core are not in it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TOOLS = ['testkit', 'bench', 'chaos'];
/** Dev-only packages that must never reach the image (the bench uses socket.io, the tests playwright-core). */
const DEV_ONLY = /^(socket\.io|socket\.io-.*|engine\.io|engine\.io-.*|playwright|playwright-core|esbuild|tsx|typescript|typescript-native|eslint|dependency-cruiser|axe-core)$/;

interface Stage {
  name: string;
  lines: string[];
}

/** The Dockerfile's stages, each with its instructions (continuation lines joined, comments dropped). */
function stages(text: string): Stage[] {
  const out: Stage[] = [];
  const joined = text.replace(/\\\n/g, ' ');
  for (const raw of joined.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const from = /^FROM\s+\S+(?:\s+AS\s+(\S+))?/i.exec(line);
    if (from) out.push({ name: from[1] ?? '', lines: [] });
    else out.at(-1)?.lines.push(line);
  }
  return out;
}

/** .dockerignore patterns as matchers of context-relative paths (the subset this repository uses: names, `*` globs). */
function ignoreMatchers(text: string): ((path: string) => boolean)[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((p) => {
      assert.ok(!p.startsWith('!') && !p.includes('**'), `.dockerignore pattern ${p}: this check understands names and * only`);
      const re = new RegExp(`^${p.replace(/\/$/, '').replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}(/|$)`);
      // a pattern without a slash matches at the root only (Docker's rule), e.g. `*.log`
      return (path: string) => re.test(path);
    });
}

function files(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...files(p));
    else out.push(p);
  }
  return out;
}

/** Package name of a bare import specifier (`@scope/pkg/sub` → `@scope/pkg`). */
const packageOf = (spec: string) => spec.split('/').slice(0, spec.startsWith('@') ? 2 : 1).join('/');

describe('the Docker image content (deploy/Dockerfile build stage, repeated without Docker)', () => {
  const dockerfile = stages(readFileSync(join(ROOT, 'deploy/Dockerfile'), 'utf8'));
  const ignored = ignoreMatchers(readFileSync(join(ROOT, '.dockerignore'), 'utf8'));
  const isIgnored = (path: string) => ignored.some((m) => m(path));
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string>; scripts: Record<string, string> };
  const dir = mkdtempSync(join(tmpdir(), 'confab-image-'));
  let build: ReturnType<typeof spawnSync> | undefined;
  after(() => rmSync(dir, { recursive: true, force: true }));

  before(() => {
    const stage = dockerfile.find((s) => s.name === 'build');
    assert.ok(stage, 'deploy/Dockerfile has a stage named build');
    for (const line of stage.lines) {
      const copy = /^COPY\s+(?!--)(.+)$/i.exec(line);
      if (!copy) continue;
      const parts = copy[1]!.trim().split(/\s+/);
      const dest = parts.pop()!;
      for (const src of parts) {
        const from = join(ROOT, src);
        const to = dest.endsWith('/') || parts.length > 1 ? join(dir, dest, src.split('/').pop()!) : join(dir, dest);
        mkdirSync(dirname(to), { recursive: true });
        // what .dockerignore keeps out of the context is not there to copy
        cpSync(from, to, { recursive: true, filter: (p) => !isIgnored(relative(ROOT, p).split('\\').join('/')) });
      }
    }
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir'); // stands in for `npm ci`
    const run = stage.lines.find((l) => /^RUN\s+npm run (\S+)/.test(l));
    const script = /^RUN\s+npm run (\S+)/.exec(run ?? '')?.[1];
    assert.ok(script && pkg.scripts[script], `the build stage runs an npm script (${run})`);
    assert.match(run!, /npm prune --omit=dev/, 'the build stage drops dev dependencies');
    build = spawnSync('sh', ['-c', pkg.scripts[script]], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
  });

  it('the build stage compiles from a context without the tools', () => {
    assert.equal(build?.status, 0, `${String(build?.stdout)}${String(build?.stderr)}`);
    for (const t of TOOLS) assert.equal(existsSync(join(dir, 'src', t)), false, `src/${t} is in the build context`);
    assert.ok(existsSync(join(dir, 'dist/cli/confab.js')), 'dist/cli/confab.js was built');
    assert.ok(existsSync(join(dir, 'dist/web/app.js')), 'the web bundle was built');
  });

  it('dist/ holds no test kit, bench or chaos code', () => {
    const rel = files(join(dir, 'dist')).map((f) => relative(join(dir, 'dist'), f).split('\\').join('/'));
    assert.ok(rel.length > 50, `only ${rel.length} files in dist`);
    assert.deepEqual(rel.filter((f) => TOOLS.some((t) => f.startsWith(`${t}/`))), []);
  });

  it('everything dist/ imports is a Node built-in or a production dependency', () => {
    const bad: string[] = [];
    for (const f of files(join(dir, 'dist')).filter((p) => p.endsWith('.js') && !p.includes('/dist/web/'))) {
      const text = readFileSync(f, 'utf8');
      for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*)['"]([^'"]+)['"]/g)) {
        const spec = m[1]!;
        if (spec.startsWith('.') || spec.startsWith('node:') || builtinModules.includes(spec)) continue;
        if (!Object.hasOwn(pkg.dependencies, packageOf(spec))) bad.push(`${relative(dir, f)}: ${spec}`);
      }
    }
    assert.deepEqual(bad, []);
  });

  it('the image stages copy only package.json, node_modules and dist/ from the build', () => {
    for (const s of dockerfile.filter((x) => x.name === 'gateway' || x.name === 'nats')) {
      const fromBuild = s.lines.filter((l) => /^COPY\s+--from=build\b/i.test(l)).map((l) => l.split(/\s+/)[2]);
      assert.deepEqual(fromBuild.sort(), ['/app/dist', '/app/node_modules', '/app/package.json'], `stage ${s.name}`);
    }
  });

  it('the production dependency tree (package-lock.json, what npm prune --omit=dev keeps) has no socket.io, playwright or build tools', () => {
    for (const name of ['socket.io', 'playwright-core']) {
      assert.ok(Object.hasOwn(pkg.devDependencies, name), `${name} is a devDependency`);
      assert.ok(!Object.hasOwn(pkg.dependencies, name), `${name} is not a dependency`);
    }
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean; name?: string }> };
    const kept = Object.entries(lock.packages)
      .filter(([path, p]) => path.startsWith('node_modules/') && p.dev !== true)
      .map(([path]) => path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length));
    assert.ok(kept.includes('ws') && kept.includes('pino'), 'the lock file marks production packages');
    assert.deepEqual(kept.filter((n) => DEV_ONLY.test(n)), []);
  });
});
