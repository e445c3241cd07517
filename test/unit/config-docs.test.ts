/**
 * The environment variable tables of README.md, docs/nats.md and docs/redis.md are what
 * `npm run docs:config` renders from src/config/env.ts today, and every variable src/ reads is
 * declared there: a new variable cannot go undocumented, a removed one cannot stay documented.
 * (`npm run docs:config -- --check` itself runs as a process in test/cli/generated-files.test.ts.)
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { applyEnvDocs, DOC_FILES, DOC_TABLES, renderEnvTable, sectionRows } from '../../src/config/env-docs.js';
import { ENV, isEnvName, type DocSection, type EnvName, type EnvSpec } from '../../src/config/env.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** Tools, not the product: their own variables (CONFAB_BENCH_*, chaos settings) are documented with them. */
const NOT_PRODUCT = ['src/testkit/', 'src/bench/', 'src/chaos/', 'src/web/'];

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (name.endsWith('.ts')) out.push(p);
  }
  return out;
}

const productFiles = sources(join(ROOT, 'src'))
  .map((p) => relative(ROOT, p).split('\\').join('/'))
  .filter((f) => !NOT_PRODUCT.some((d) => f.startsWith(d)));

/** Every environment variable name a source reads or names in a ConfigError. */
function namesRead(text: string): Set<string> {
  const out = new Set<string>();
  const patterns = [
    /\benv\.([A-Z][A-Z0-9_]*)\b/g, // process.env.X, env.X
    /\benv\[['"]([A-Z][A-Z0-9_]*)['"]\]/g, // env['X']
    /\(\s*(?:process\.)?env\s*,\s*['"]([A-Z][A-Z0-9_]*)['"]/g, // readEnv(env, 'X'), str(env, 'X'), int(env, 'X', …)
    /\b(?:parseEnvValue|ConfigError)\(\s*['"]([A-Z][A-Z0-9_]*)['"]/g,
  ];
  for (const re of patterns) for (const m of text.matchAll(re)) out.add(m[1]!);
  return out;
}

describe('environment variable docs', () => {
  for (const file of DOC_FILES) {
    it(`${file}: its tables are what src/config/env.ts renders (else run npm run docs:config)`, () => {
      const text = readFileSync(join(ROOT, file), 'utf8');
      assert.equal(applyEnvDocs(file, text), text);
    });
  }

  it('every variable the product reads is declared in src/config/env.ts', () => {
    const undeclared: string[] = [];
    for (const f of productFiles) for (const name of namesRead(readFileSync(join(ROOT, f), 'utf8'))) if (!isEnvName(name)) undeclared.push(`${name} (${f})`);
    assert.deepEqual(undeclared, [], 'declare these in ENV (src/config/env.ts composes env-gateway.ts, env-adapters.ts and the CLI table), then run npm run docs:config');
  });

  it('every declared variable is read: through readEnv/envValue/parseEnvValue, or directly where readIn says', () => {
    const all = productFiles.map((f) => readFileSync(join(ROOT, f), 'utf8')).join('\n');
    const viaSchema = new Set<string>();
    for (const m of all.matchAll(/\b(?:readEnv|envValue)\(\s*[\w.]+\s*,\s*'([A-Z][A-Z0-9_]*)'/g)) viaSchema.add(m[1]!);
    for (const m of all.matchAll(/\bparseEnvValue\(\s*'([A-Z][A-Z0-9_]*)'/g)) viaSchema.add(m[1]!);
    for (const [name, spec] of Object.entries(ENV) as [EnvName, EnvSpec][]) {
      for (const f of spec.readIn ?? []) {
        assert.ok(existsSync(join(ROOT, f)), `${name}: readIn names ${f}, which does not exist`);
        assert.ok(namesRead(readFileSync(join(ROOT, f), 'utf8')).has(name), `${name}: readIn names ${f}, which does not read it`);
      }
      assert.ok(viaSchema.has(name) || (spec.readIn?.length ?? 0) > 0, `${name} is declared but nothing reads it`);
    }
  });

  it('every variable is listed in a table, and each table has its place', () => {
    for (const [name, spec] of Object.entries(ENV) as [EnvName, EnvSpec][]) {
      assert.ok(spec.docs.length > 0, `${name} is in no table`);
      assert.equal(new Set(spec.docs.map((d) => d.section)).size, spec.docs.length, `${name} is listed twice in one table`);
      for (const d of spec.docs) assert.ok(!d.meaning.includes('\n') && d.meaning.trim() !== '', `${name}: one line of meaning`);
    }
    for (const section of Object.keys(DOC_TABLES) as DocSection[]) {
      const rows = sectionRows(section);
      assert.ok(rows.length > 0, `${section} table is empty`);
      assert.equal(renderEnvTable(section).split('\n').filter(Boolean).length, rows.length + 2);
    }
  });

  it('every static default is a value its own schema accepts (within the bounds)', () => {
    for (const [name, spec] of Object.entries(ENV) as [EnvName, EnvSpec][]) {
      const d = spec.default;
      if (d === undefined) continue;
      const text = Array.isArray(d) ? d.join(',') : String(d as string | number);
      if (text === '') continue; // an empty list: unset
      const r = spec.schema.safeParse(text);
      assert.ok(r.success, `${name}: default ${text} is refused: ${r.error?.issues[0]?.message}`);
      assert.deepEqual(r.data, d, `${name}: default ${text} parses to something else`);
    }
  });
});
