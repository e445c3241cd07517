// `npm run docs:config`: rewrite the environment variable tables of README.md, docs/nats.md and
// docs/redis.md from the schema in src/config/env.ts (rendering: src/config/env-docs.ts). Each
// table sits between `<!-- config:<section>:start … -->` and `<!-- config:<section>:end -->`.
// `--check`: write nothing, exit 1 when a committed table is out of date.
// Runs the TypeScript source through tsx (`node --import tsx scripts/config-docs.mjs`).
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { applyEnvDocs, DOC_FILES } from '../src/config/env-docs.ts';

const check = process.argv.includes('--check');
let stale = 0;
for (const f of DOC_FILES) {
  const file = fileURLToPath(new URL(`../${f}`, import.meta.url));
  const have = readFileSync(file, 'utf8');
  const want = applyEnvDocs(f, have);
  if (have === want) {
    console.log(`${f}: up to date`);
  } else if (check) {
    console.error(`${f}: out of date with src/config/env.ts: run npm run docs:config`);
    stale++;
  } else {
    writeFileSync(file, want);
    console.log(`${f}: rewritten`);
  }
}
if (stale > 0) process.exit(1);
