// `npm run schema`: write docs/protocol.schema.json, the JSON Schema of every confab.v1 frame,
// generated from the zod definitions in src/protocol/ (frames.ts, schema.ts, codes.ts).
// `--check`: write nothing, exit 1 when the committed file is out of date.
// Runs the TypeScript source through tsx (`node --import tsx scripts/schema.mjs`).
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderProtocolJsonSchema } from '../src/protocol/schema.ts';

const file = fileURLToPath(new URL('../docs/protocol.schema.json', import.meta.url));
const want = renderProtocolJsonSchema();
if (process.argv.includes('--check')) {
  let have = '';
  try {
    have = readFileSync(file, 'utf8');
  } catch {
    // missing: out of date
  }
  if (have !== want) {
    console.error('docs/protocol.schema.json is out of date with src/protocol/: run npm run schema');
    process.exit(1);
  }
  console.log('docs/protocol.schema.json is up to date');
} else {
  writeFileSync(file, want);
  console.log(`wrote docs/protocol.schema.json (${want.length} bytes)`);
}
