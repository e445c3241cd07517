/** The retention settings of the config, in the shape every History adapter takes. */
import type { Config } from '../config/config.js';
import { DEFAULT_RETENTION, type Retention } from './types.js';

/** The config's retention fields that may be left out (their defaults: DEFAULT_RETENTION). */
export type RetentionConfig = Pick<Config, 'historyLimit'> & Partial<Pick<Config, 'historyMaxAgeMs' | 'historyMaxBytes' | 'dedupeWindowMs'>>;

export function retentionOf(config: RetentionConfig): Retention {
  const d = DEFAULT_RETENTION;
  return { limit: config.historyLimit, maxAgeMs: config.historyMaxAgeMs ?? d.maxAgeMs, maxBytes: config.historyMaxBytes ?? d.maxBytes, dedupeWindowMs: config.dedupeWindowMs ?? d.dedupeWindowMs };
}

/** How long a room with nothing stored is remembered: until its messages aged out and its ids expired. */
export function roomKeepMs(r: Retention): number {
  return Math.max(r.maxAgeMs, r.dedupeWindowMs);
}
