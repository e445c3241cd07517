/**
 * The dependency rules of .dependency-cruiser.cjs (`npm run depcheck`): the source tree keeps them,
 * and each rule really fails on a planted violation (a fixture tree in a temp dir, cruised with the
 * same config), while the imports the rules allow (tools importing the product, type-only imports of
 * a devDependency) pass.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CONFIG = join(ROOT, '.dependency-cruiser.cjs');
const BIN = join(ROOT, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs');

interface Violation {
  rule: { name: string };
  from: string;
  to: string;
}

/** Run depcruise with the project's config in `cwd` on `dirs`; the violations it reports (exit status aside). */
function cruise(cwd: string, dirs: string[]): Promise<{ violations: Violation[]; modules: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [BIN, '--config', CONFIG, '--output-type', 'json', ...dirs], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => c.kill('SIGKILL'), 60_000);
    c.on('error', reject);
    c.on('close', () => {
      clearTimeout(timer);
      try {
        const r = JSON.parse(out) as { summary: { violations: Violation[]; totalCruised: number } };
        resolve({ violations: r.summary.violations, modules: r.summary.totalCruised, stderr: err });
      } catch (e) {
        reject(new Error(`depcruise gave no JSON: ${err || out}`, { cause: e }));
      }
    });
  });
}

const FIXTURE: Record<string, string> = {
  'package.json': JSON.stringify({ name: 'fixture', type: 'module', dependencies: { ws: '*' }, devDependencies: { 'socket.io': '*' } }),
  'tsconfig.test.json': JSON.stringify({ compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', strict: true, noEmit: true }, include: ['src/**/*.ts', 'test/**/*.ts'] }),
  'src/testkit/kit.ts': "import { g } from '../gateway/g.js';\nimport { Server } from 'socket.io';\nexport const k = [g, Server];\n",
  'src/bench/b.ts': "import { k } from '../testkit/kit.js';\nexport const b = k;\n",
  'src/chaos/c.ts': 'export const c = 3;\n',
  'src/gateway/g.ts': "import { WebSocketServer } from 'ws';\nexport const g = WebSocketServer;\n",
  'src/protocol/p.ts': "import { randomUUID } from 'node:crypto';\nexport const p = randomUUID;\n",
  'src/protocol/frames.ts': 'export const SUBPROTOCOL = 1;\n',
  'test/helper.ts': 'export const h = 1;\n',
  // violations, one per rule (file name = what it breaks)
  'src/cli/imports-testkit.ts': "import { k } from '../testkit/kit.js';\nexport const x = k;\n",
  'src/load/imports-bench.ts': "import { b } from '../bench/b.js';\nexport const x = b;\n",
  'src/gateway/imports-chaos.ts': "import { c } from '../chaos/c.js';\nexport const x = c;\n",
  'src/cli/imports-test.ts': "import { h } from '../../test/helper.js';\nexport const x = h;\n",
  'src/gateway/imports-devdep.ts': "import { Server } from 'socket.io';\nexport const x = Server;\n",
  'src/client/imports-gateway.ts': "import { g } from '../gateway/g.js';\nexport const x = g;\n",
  'src/web/imports-node.ts': "import { readFileSync } from 'node:fs';\nexport const x = readFileSync;\n",
  'src/client/reaches-node.ts': "import { p } from '../protocol/p.js';\nexport const x = p;\n",
  'src/shared/imports-node.ts': "import { setTimeout } from 'node:timers/promises';\nexport const x = setTimeout;\n",
  'src/shared/imports-gateway.ts': "import { g } from '../gateway/g.js';\nexport const x = g;\n",
  'src/nats/imports-gateway.ts': "import { g } from '../gateway/g.js';\nexport const x = g;\n",
  'src/redis/imports-missing.ts': "import { m } from './no-such-file.js';\nexport const x = m;\n",
  // allowed
  'src/gateway/type-only-devdep.ts': "import type { Server } from 'socket.io';\nexport type X = Server;\n",
  'src/client/ok.ts': "import { SUBPROTOCOL } from '../protocol/frames.js';\nexport const x = SUBPROTOCOL;\n",
  'test/uses-everything.ts': "import { k } from '../src/testkit/kit.js';\nimport { b } from '../src/bench/b.js';\nimport { g } from '../src/gateway/g.js';\nexport const x = [k, b, g];\n",
};

describe('dependency rules (.dependency-cruiser.cjs)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'confab-depcruise-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('the source tree keeps every rule (npm run depcheck)', async () => {
    const r = await cruise(ROOT, ['src', 'test', 'scripts']);
    assert.ok(r.modules > 150, `cruised only ${r.modules} modules: ${r.stderr}`);
    assert.deepEqual(r.violations.map((v) => `${v.rule.name}: ${v.from} → ${v.to}`), []);
  });

  it('fails on each planted violation and on nothing the rules allow', async () => {
    for (const [file, text] of Object.entries(FIXTURE)) {
      mkdirSync(dirname(join(dir, file)), { recursive: true });
      writeFileSync(join(dir, file), text);
    }
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
    const r = await cruise(dir, ['src', 'test']);
    // a package is named by its folder (node_modules is a symlink, so the resolved path varies)
    const got = r.violations.map((v) => `${v.rule.name}: ${v.from} → ${v.to.replace(/^.*node_modules\/([^/]+)\/.*$/, '$1')}`).sort();
    assert.deepEqual(got, [
      'adapter-imports-gateway: src/nats/imports-gateway.ts → src/gateway/g.ts',
      'browser-imports-server: src/client/imports-gateway.ts → src/gateway/g.ts',
      'browser-imports-server: src/shared/imports-gateway.ts → src/gateway/g.ts',
      'browser-reaches-node: src/client/reaches-node.ts → crypto',
      'browser-reaches-node: src/shared/imports-node.ts → timers/promises',
      'browser-reaches-node: src/web/imports-node.ts → fs',
      'imports-test: src/cli/imports-test.ts → test/helper.ts',
      'not-to-unresolvable: src/redis/imports-missing.ts → ./no-such-file.js',
      'product-imports-dev-dependency: src/gateway/imports-devdep.ts → socket.io',
      'product-imports-tool: src/cli/imports-testkit.ts → src/testkit/kit.ts',
      'product-imports-tool: src/gateway/imports-chaos.ts → src/chaos/c.ts',
      'product-imports-tool: src/load/imports-bench.ts → src/bench/b.ts',
    ]);
  });
});
