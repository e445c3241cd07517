/**
 * Secrets on disk. The gateway's session secret comes from CONFAB_SECRET, else CONFAB_SECRET_FILE,
 * else `<CONFAB_DATA_DIR>/secret`, generated once (embedded mode). A secret file that is empty,
 * shorter than 16 characters, or readable by group/others is refused with a message naming it.
 * A generated secret is written to a new file (0600, O_EXCL), fsynced, and so is its directory;
 * CONFAB_DATA_DIR is created 0700.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ConfigError } from '../config/env.js';

export const MIN_SECRET_CHARS = 16;

/** Read a secret file, refusing one that is empty, short or readable by anyone but its owner. */
export function readSecretFile(file: string, variable: string): string {
  let st;
  try {
    st = statSync(file);
  } catch (err) {
    throw new ConfigError(variable, `cannot read the secret file ${file}: ${(err as Error).message}`);
  }
  if (!st.isFile()) throw new ConfigError(variable, `${file} is not a file`);
  if ((st.mode & 0o077) !== 0) {
    throw new ConfigError(variable, `${file} is readable by group or others (mode ${(st.mode & 0o777).toString(8)}); run chmod 600 ${file}`);
  }
  const secret = readFileSync(file, 'utf8').trim();
  if (secret.length === 0) throw new ConfigError(variable, `${file} is empty`);
  if (secret.length < MIN_SECRET_CHARS) throw new ConfigError(variable, `${file} holds ${secret.length} characters; a secret needs at least ${MIN_SECRET_CHARS}`);
  return secret;
}

/** Create `dir` (and parents) with mode 0700 when it does not exist. */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}

function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // not every platform can open a directory: the file itself is synced
  }
}

/** Write a new file with mode 0600 (fails if it exists), fsync it and its directory. */
export function writePrivateFile(file: string, data: string): void {
  const fd = openSync(file, 'wx', 0o600);
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  fsyncDir(dirname(file));
}

/** The configured secret, or the secret file's, or one generated once and kept in `<dataDir>/secret`. */
export function loadOrCreateSecret(configured: string | undefined, dataDir: string, secretFile?: string): string {
  if (configured) return configured;
  if (secretFile) return readSecretFile(secretFile, 'CONFAB_SECRET_FILE');
  ensurePrivateDir(dataDir);
  const file = join(dataDir, 'secret');
  try {
    return readSecretFile(file, 'CONFAB_DATA_DIR');
  } catch (err) {
    if (!(err instanceof ConfigError) || !/cannot read/.test(err.message)) throw err;
  }
  const secret = randomBytes(32).toString('base64url');
  try {
    writePrivateFile(file, secret);
  } catch (err) {
    // another process of this data dir wrote it first: use that one
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return readSecretFile(file, 'CONFAB_DATA_DIR');
    throw err;
  }
  return secret;
}
