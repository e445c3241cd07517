#!/usr/bin/env node
// Bundle the web UI (src/web/app.ts + the client SDK) with esbuild into dist/web/,
// and copy index.html and style.css beside it. Run from anywhere: `node scripts/build-web.mjs`.
// `--out DIR` writes the same files into DIR instead (the bundle test builds into a temporary
// directory, so it never rewrites dist/web under a gateway that another test is serving from).
import { build } from 'esbuild';
import { copyFile, mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src', 'web');
const outFlag = process.argv.indexOf('--out');
const out = outFlag > 0 && process.argv[outFlag + 1] ? resolve(process.argv[outFlag + 1]) : join(root, 'dist', 'web');

await mkdir(out, { recursive: true });
const result = await build({
  entryPoints: [join(src, 'app.ts')],
  outfile: join(out, 'app.js'),
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022'],
  minify: true,
  sourcemap: true,
  legalComments: 'none',
  logLevel: 'warning',
  metafile: true,
});
await Promise.all(['index.html', 'style.css', 'favicon.svg'].map((f) => copyFile(join(src, f), join(out, f))));
const bytes = result.metafile.outputs[Object.keys(result.metafile.outputs).find((k) => k.endsWith('app.js'))]?.bytes ?? 0;
console.log(`web: ${out === join(root, 'dist', 'web') ? 'dist/web' : out}/app.js ${(bytes / 1024).toFixed(1)} KiB, index.html, style.css, favicon.svg`);
