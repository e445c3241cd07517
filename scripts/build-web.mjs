#!/usr/bin/env node
// Bundle the web UI (src/web/app.ts + the client SDK) with esbuild into dist/web/, copy
// index.html, style.css and favicon.svg beside it, and build the service worker (src/web/sw.ts →
// dist/web/sw.js) with a cache name derived from the hash of everything else, so each build's
// app shell replaces the last. Run from anywhere: `node scripts/build-web.mjs`.
// `--out DIR` writes the same files into DIR instead (the bundle test builds into a temporary
// directory, so it never rewrites dist/web under a gateway that another test is serving from).
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src', 'web');
const outFlag = process.argv.indexOf('--out');
const out = outFlag > 0 && process.argv[outFlag + 1] ? resolve(process.argv[outFlag + 1]) : join(root, 'dist', 'web');
const common = { bundle: true, format: 'esm', platform: 'browser', target: ['es2022'], minify: true, legalComments: 'none', logLevel: 'warning' };

await mkdir(out, { recursive: true });
const result = await build({ ...common, entryPoints: [join(src, 'app.ts')], outfile: join(out, 'app.js'), sourcemap: true, metafile: true });
const files = ['index.html', 'style.css', 'favicon.svg'];
await Promise.all(files.map((f) => copyFile(join(src, f), join(out, f))));
const hash = createHash('sha256');
for (const f of ['app.js', ...files]) hash.update(await readFile(join(out, f)));
const version = hash.digest('hex').slice(0, 12);
await build({ ...common, format: 'iife', entryPoints: [join(src, 'sw.ts')], outfile: join(out, 'sw.js'), define: { __CONFAB_BUILD__: JSON.stringify(version) } });
const bytes = result.metafile.outputs[Object.keys(result.metafile.outputs).find((k) => k.endsWith('app.js'))]?.bytes ?? 0;
console.log(`web: ${out === join(root, 'dist', 'web') ? 'dist/web' : out}/app.js ${(bytes / 1024).toFixed(1)} KiB, sw.js (shell ${version}), index.html, style.css, favicon.svg`);
