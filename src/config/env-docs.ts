/**
 * The variable tables of README.md, docs/nats.md and docs/redis.md, rendered from the schema in
 * env.ts. Each table sits between `<!-- config:<section>:start … -->` and `<!-- config:<section>:end -->`;
 * `npm run docs:config` (scripts/config-docs.mjs) rewrites what is between them, and
 * test/unit/config-docs.test.ts fails when a committed table differs from what this renders.
 */
import { ENV, type DocSection, type EnvDoc, type EnvName, type EnvSpec } from './env.js';

/** Where each section's table lives (paths from the repository root). */
export const DOC_TABLES: Readonly<Record<DocSection, string>> = {
  gateway: 'README.md',
  cli: 'README.md',
  nats: 'docs/nats.md',
  'nats-config': 'docs/nats.md',
  redis: 'docs/redis.md',
  pubsub: 'docs/pubsub.md',
  postgres: 'docs/postgres.md',
};

export const DOC_FILES: readonly string[] = [...new Set(Object.values(DOC_TABLES))];

function defaultCell(s: EnvSpec, doc: EnvDoc): string {
  if (doc.default !== undefined) return doc.default;
  const d = s.default;
  if (d === undefined || (Array.isArray(d) && d.length === 0)) return '—';
  return `\`${Array.isArray(d) ? d.join(',') : String(d as string | number)}\``;
}

type Row = { name: EnvName; doc: EnvDoc; spec: EnvSpec };

/**
 * The rows of one section, in table order: `first` rows, then the variables whose home it is, then
 * those borrowed from another table, each in declaration order; a row with `after` goes right after that row.
 */
export function sectionRows(section: DocSection): Row[] {
  const first: Row[] = [];
  const home: Row[] = [];
  const borrowed: Row[] = [];
  const after: Row[] = [];
  for (const [name, s] of Object.entries(ENV) as [EnvName, EnvSpec][]) {
    const i = s.docs.findIndex((d) => d.section === section);
    if (i < 0) continue;
    const row = { name, doc: s.docs[i]!, spec: s };
    if (row.doc.after !== undefined) after.push(row);
    else if (row.doc.first) first.push(row);
    else if (i === 0) home.push(row);
    else borrowed.push(row);
  }
  const rows = [...first, ...home, ...borrowed];
  for (const row of after) {
    const at = rows.findIndex((r) => r.name === row.doc.after);
    if (at < 0) throw new Error(`${row.name}: the ${section} table has no ${row.doc.after} row to follow`);
    rows.splice(at + 1, 0, row);
  }
  return rows;
}

/** One section's Markdown table. */
export function renderEnvTable(section: DocSection): string {
  const lines = ['| variable | default | values | meaning |', '|---|---|---|---|'];
  for (const { name, doc, spec } of sectionRows(section)) lines.push(`| \`${name}\` | ${defaultCell(spec, doc)} | ${spec.values} | ${doc.meaning} |`);
  return lines.join('\n') + '\n';
}

const START = (section: string) => new RegExp(`<!-- config:${section}:start[^>]*-->\\n`);
const END = (section: string) => `<!-- config:${section}:end -->`;

/**
 * `text` (the content of `file`) with every table of that file replaced by the rendered one.
 * Throws when a section's markers are missing or out of order.
 */
export function applyEnvDocs(file: string, text: string): string {
  let out = text;
  for (const [section, f] of Object.entries(DOC_TABLES) as [DocSection, string][]) {
    if (f !== file) continue;
    const start = START(section).exec(out);
    const end = out.indexOf(END(section));
    if (!start || end < start.index + start[0].length) throw new Error(`${file}: no <!-- config:${section}:start --> … <!-- config:${section}:end --> markers around the ${section} table`);
    out = out.slice(0, start.index + start[0].length) + renderEnvTable(section) + out.slice(end);
  }
  return out;
}
