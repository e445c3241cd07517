/**
 * The kinds of environment variable (int, port, text, oneOf, file, list, parsed) that the tables
 * of env-gateway.ts, env-adapters.ts and env.ts declare each variable with, the value parsers they
 * share (URLs, CIDR lists, room lists), and ConfigError, which names the variable.
 */
import { existsSync } from 'node:fs';
import { z } from 'zod';
import { parseCidr } from '../gateway/address.js';

export type Env = Record<string, string | undefined>;

/** A bad configuration value; `variable` names the environment variable. */
export class ConfigError extends Error {
  readonly variable: string;
  constructor(variable: string, message: string) {
    super(`invalid ${variable}: ${message}`);
    this.name = 'ConfigError';
    this.variable = variable;
  }
}

/** The doc tables: where each is rendered is in env-docs.ts (DOC_TABLES). */
export type DocSection = 'gateway' | 'cli' | 'nats' | 'nats-config' | 'redis' | 'pubsub' | 'postgres';

export interface EnvDoc {
  section: DocSection;
  /** One line of Markdown. */
  meaning: string;
  /** The default column when the default is not a plain value (computed, derived, generated). */
  default?: string;
  /** List it at the top of the section's table (a variable whose home is another table). */
  first?: boolean;
  /** List it right after this variable's row. */
  after?: string;
}

export interface EnvSpec<T = unknown, D extends T | undefined = T | undefined> {
  /** Parses a set value (trimmed unless `raw`); its first issue's message becomes the ConfigError's. */
  readonly schema: z.ZodType<T, string>;
  /** The value when unset or blank; undefined when the reader derives one (documented in `docs`). */
  readonly default: D;
  /** What is accepted, one short line of Markdown (the tables' `values` column). */
  readonly values: string;
  /** Read as is, not trimmed (only '' counts as unset): a password may begin or end with a space. */
  readonly raw?: boolean;
  /** Files that read it straight from the environment rather than through readEnv (kept in sync by the docs test). */
  readonly readIn?: readonly string[];
  /** The tables it is listed in; the first is its home. */
  readonly docs: readonly EnvDoc[];
}

interface Common {
  values?: string;
  raw?: boolean;
  readIn?: readonly string[];
  docs: readonly EnvDoc[];
}

export const spec = <T, D extends T | undefined>(schema: z.ZodType<T, string>, def: D, values: string, o: Common): EnvSpec<T, D> => ({
  schema,
  default: def,
  values: o.values ?? values,
  ...(o.raw ? { raw: true } : {}),
  ...(o.readIn ? { readIn: o.readIn } : {}),
  docs: o.docs,
});

/** An integer within [min, max]; `refine` adds one more rule. */
export function int<D extends number | undefined = undefined>(o: Common & { min: number; max: number; default?: D; refine?: { check: (n: number) => boolean; message: string } }): EnvSpec<number, D> {
  const { min, max } = o;
  let schema: z.ZodType<number, string> = z
    .string()
    .regex(/^-?\d+$/, { error: (iss) => `expected an integer, got ${JSON.stringify(iss.input)}` })
    .transform(Number)
    .refine((n) => n >= min && n <= max, { error: (iss) => `must be between ${min} and ${max}, got ${String(iss.input)}` });
  if (o.refine) schema = schema.refine(o.refine.check, { error: o.refine.message });
  return spec(schema, o.default as D, `${min}–${max}`, o);
}

/** A port 1–65535. */
export const port = <D extends number | undefined = undefined>(o: Common & { default?: D }) => int({ ...o, min: 1, max: 65535 });

/** Free text, or text matching `pattern` (else `message`). */
export function text<D extends string | undefined = undefined>(o: Common & { default?: D; pattern?: RegExp; message?: string | ((v: string) => string) }): EnvSpec<string, D> {
  const { pattern, message } = o;
  const schema = pattern ? z.string().regex(pattern, { error: (iss) => (typeof message === 'function' ? message(String(iss.input)) : (message ?? 'bad value')) }) : z.string();
  return spec(schema, o.default as D, 'text', o);
}

/** One of `options`; anything else fails with `expected a, b or c, got "x"` (or `message`). */
export function oneOf<const V extends string>(options: readonly [V, ...V[]], o: Common & { default: V; message?: (v: string) => string }): EnvSpec<V, V>;
export function oneOf<const V extends string>(options: readonly [V, ...V[]], o: Common & { message?: (v: string) => string }): EnvSpec<V, undefined>;
export function oneOf<const V extends string>(options: readonly [V, ...V[]], o: Common & { default?: V; message?: (v: string) => string }): EnvSpec<V> {
  const names = options.length === 1 ? options[0] : `${options.slice(0, -1).join(', ')} or ${options.at(-1)!}`;
  const message = o.message ?? ((v: string) => `expected ${names}, got ${JSON.stringify(v)}`);
  const schema = z.enum(options as unknown as [V, ...V[]], { error: (iss) => message(String(iss.input)) }) as unknown as z.ZodType<V, string>;
  return spec(schema, o.default, options.map((x) => `\`${x}\``).join(', '), o);
}

/** A path to a file that exists. */
export function file(o: Common): EnvSpec<string, undefined> {
  return spec(z.string().refine((f) => existsSync(f), { error: (iss) => `file not found: ${String(iss.input)}` }), undefined, 'path to an existing file', o);
}

/** Thrown by `parsed` parse functions: a bad value, with the message for the ConfigError. */
class Invalid extends Error {}

/** A value `fn` parses; `fn` reports a bad value by throwing Invalid. */
export function parsed<T, D extends T | undefined = undefined>(fn: (s: string) => T, values: string, o: Common & { default?: D }): EnvSpec<T, D> {
  const schema = z.string().transform((s, ctx) => {
    try {
      return fn(s);
    } catch (e) {
      if (!(e instanceof Invalid)) throw e;
      ctx.issues.push({ code: 'custom', message: e.message, input: s });
      return z.NEVER;
    }
  }) as unknown as z.ZodType<T, string>;
  return spec(schema, o.default as D, values, o);
}

/** A comma-separated list, items trimmed, empty items dropped. */
export const splitList = (s: string): string[] => s.split(',').map((x) => x.trim()).filter(Boolean);

export const list = <D extends string[] | undefined = undefined>(o: Common & { default?: D }) => parsed(splitList, 'comma list', o);

export const MAX_PUBLIC_URLS = 16;

export function publicUrlList(s: string): string[] {
  const raw = splitList(s);
  if (raw.length > MAX_PUBLIC_URLS) throw new Invalid(`at most ${MAX_PUBLIC_URLS} URLs, got ${raw.length}`);
  const out: string[] = [];
  for (const x of raw) {
    let u: URL;
    try {
      u = new URL(x);
    } catch {
      throw new Invalid(`not a URL: ${JSON.stringify(x)}`);
    }
    if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new Invalid(`expected ws:// or wss://, got ${JSON.stringify(x)}`);
    if (u.username || u.password || u.search || u.hash) throw new Invalid(`no credentials, query or fragment allowed: ${JSON.stringify(x)}`);
    if (!out.includes(u.href)) out.push(u.href);
  }
  return out;
}

export function cidrList(s: string): string[] {
  const items = splitList(s);
  for (const x of items) {
    try {
      parseCidr(x);
    } catch (e) {
      throw new Invalid((e as Error).message);
    }
  }
  return items;
}

export function roomList(s: string): string[] {
  const rooms = splitList(s);
  for (const r of rooms) if (!/^[a-z0-9][a-z0-9_-]{0,31}$/.test(r)) throw new Invalid(`bad room name ${JSON.stringify(r)}`);
  return rooms;
}

export function regionList(s: string): string[] {
  const names = splitList(s);
  for (const r of names) if (!/^[A-Za-z0-9_-]{1,32}$/.test(r)) throw new Invalid(`bad region name ${JSON.stringify(r)} (1-32 of [A-Za-z0-9_-], the NATS cluster name)`);
  if (new Set(names).size !== names.length) throw new Invalid('a region is listed twice');
  return names;
}

/** CONFAB_ROOM_HOMES: `prefix=region` pairs (src/nats/shards.ts). */
export function roomHomes(s: string): { prefix: string; region: string }[] {
  return splitList(s).map((pair) => {
    const eq = pair.lastIndexOf('=');
    const prefix = pair.slice(0, eq);
    const region = pair.slice(eq + 1);
    if (eq <= 0 || !/^[A-Za-z0-9_-]{1,32}$/.test(region)) throw new Invalid(`expected prefix=region, got ${JSON.stringify(pair)}`);
    return { prefix, region };
  });
}

/** One NATS_URL entry: nats://, tls:// or bare host:port (given nats://). */
export function natsServer(u: string): string {
  const withScheme = /^[a-z]+:\/\//.test(u) ? u : `nats://${u}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new Invalid(`not a URL: ${JSON.stringify(u)}`);
  }
  if (url.protocol !== 'nats:' && url.protocol !== 'tls:') throw new Invalid(`scheme must be nats:// or tls://, got ${url.protocol}`);
  if (!url.hostname) throw new Invalid(`missing host in ${JSON.stringify(u)}`);
  return withScheme;
}

/** REDIS_URL, checked without echoing a password back in the error. */
export function redisUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Invalid('not a URL (expected redis://host:port)');
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw new Invalid(`scheme must be redis:// or rediss://, got ${url.protocol}`);
  if (!url.hostname) throw new Invalid('missing host');
  const db = url.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d{1,2}$/.test(db)) throw new Invalid(`database must be a number, got ${JSON.stringify(db)}`);
  return raw;
}

/** DATABASE_URL, checked without echoing a password back in the error. */
export function databaseUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Invalid('not a URL (expected postgres://user@host:port/db)');
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') throw new Invalid(`scheme must be postgres:// or postgresql://, got ${url.protocol}`);
  if (!url.hostname && !url.searchParams.get('host')) throw new Invalid('missing host');
  return raw;
}

export const NAME_64 = /^[A-Za-z0-9_-]{1,64}$/;
export const NAME_32 = /^[A-Za-z0-9_-]{1,32}$/;
export const SIZE_RE = /^\d+(\.\d+)?\s*(B|K|KB|M|MB|G|GB|T|TB)?$/i;
export const DAY = 24 * 3600;
export const CONFIG_GEN = 'src/nats/config-gen.ts';
