/**
 * A history stream: one JetStream stream, one subject per room, limits retention.
 * Without home regions or shards that is the one stream `CONFAB` (subjects
 * `<prefix>.hist.>`); with them, one stream per (home region, shard)
 * (src/nats/shards.ts) with its own subject space and placement. Created or updated
 * idempotently by every node at start; a concurrent create by another node is not an error.
 */
import { DiscardPolicy, JetStreamApiCodes, JetStreamApiError, RetentionPolicy, StorageType, type JetStreamManager, type StreamConfig, type StreamInfo } from '@nats-io/jetstream';
import { randomBytes } from 'node:crypto';
import type pino from 'pino';
import { Backoff, sleep } from '../shared/backoff.js';
import { isTransientNatsError } from './errors.js';
import type { StreamSettings } from './options.js';

/** JSStreamNameExistErr: a stream of that name exists with another configuration. */
const STREAM_NAME_IN_USE = 10058;

const NS = 1_000_000_000;
/** Stream creation while JetStream elects its leaders: full jitter from 50 ms, capped at 1 s. */
const ENSURE_BACKOFF = new Backoff({ minMs: 50, maxMs: 1000 });

/** Room name -> subject token. Names that are not plain tokens are base64url-encoded behind '='. */
export function roomToken(room: string): string {
  return /^[A-Za-z0-9_-]{1,128}$/.test(room) ? room : `=${Buffer.from(room, 'utf8').toString('base64url')}`;
}

export function tokenRoom(token: string): string {
  return token.startsWith('=') ? Buffer.from(token.slice(1), 'base64url').toString('utf8') : token;
}

export function histSubject(prefix: string, room: string): string {
  return `${prefix}.hist.${roomToken(room)}`;
}

/** One history stream: its settings (name included), subject space and placement. */
export interface StreamTarget {
  settings: StreamSettings;
  /** Every room subject of this stream is `<subjectBase>.<room token>`. */
  subjectBase: string;
  /** JetStream placement: the NATS cluster (region) whose servers hold every replica, so also the leader. */
  cluster?: string;
}

/** The one stream of an unsharded deployment: `<prefix>.hist.<room>` in CONFAB_STREAM_NAME, placed by JetStream. */
export function legacyTarget(prefix: string, s: StreamSettings): StreamTarget {
  return { settings: s, subjectBase: `${prefix}.hist` };
}

/** The stream config confab wants for this target. */
export function desiredConfig(t: StreamTarget): Partial<StreamConfig> & { name: string } {
  const s = t.settings;
  return {
    name: s.name,
    subjects: [`${t.subjectBase}.>`],
    ...(t.cluster ? { placement: { cluster: t.cluster, tags: [] } } : {}),
    retention: RetentionPolicy.Limits,
    storage: s.storage === 'memory' ? StorageType.Memory : StorageType.File,
    num_replicas: s.replicas,
    max_age: s.maxAgeSec * NS,
    max_bytes: s.maxBytes,
    max_msgs_per_subject: s.perRoom,
    max_msgs: -1,
    discard: DiscardPolicy.Old,
    duplicate_window: s.duplicateWindowSec * NS,
    allow_direct: true,
  };
}

/** The fields compared to decide whether an update is needed. */
const COMPARED = ['subjects', 'num_replicas', 'max_age', 'max_bytes', 'max_msgs_per_subject', 'duplicate_window', 'allow_direct', 'discard'] as const;

const EPOCH_RE = /^confab history; epoch=([A-Za-z0-9_-]{1,64})$/;

/** A new epoch id: creation time (readable) plus randomness (two streams made in one second differ). */
export function newEpoch(now = new Date()): string {
  return `js${now.toISOString().replace(/[^0-9]/g, '').slice(0, 14)}${randomBytes(3).toString('hex')}`;
}

/** The stream description that carries the epoch (part of the replicated config: every replica agrees). */
export function epochDescription(epoch: string): string {
  return `confab history; epoch=${epoch}`;
}

/**
 * The history epoch: written into the stream's description when the stream is created, so it is
 * replicated with the config and read the same on every node from the first second (the stream's
 * `created` time is not: each replica keeps its own, and a fresh stream can report zero). It changes
 * only when the stream is recreated. Streams made before this scheme fall back to their creation
 * time until `ensureStream` writes the description.
 */
export function epochOf(info: StreamInfo): string {
  const m = EPOCH_RE.exec(info.config.description ?? '');
  if (m) return m[1]!;
  return `js${info.created.replace(/[^0-9]/g, '')}`;
}

/**
 * Create the stream, or update it when its settings differ. Returns the current info.
 * Transient failures (a fresh cluster still electing its JetStream meta leader, a stream
 * without a leader) are retried with jittered backoff for up to `deadlineMs`.
 */
export async function ensureStream(jsm: JetStreamManager, t: StreamTarget, log: pino.Logger, deadlineMs = 30_000): Promise<StreamInfo> {
  const deadline = Date.now() + deadlineMs;
  const s = t.settings;
  for (let attempt = 0; ; attempt++) {
    try {
      const info = await ensureOnce(jsm, t, log);
      if (info) return info;
    } catch (e) {
      if (!isTransientNatsError(e) || Date.now() > deadline) throw e;
      log.info({ stream: s.name, err: (e as Error).message }, 'JetStream not ready yet; retrying');
      await sleep(ENSURE_BACKOFF.delay(attempt));
      continue;
    }
    if (Date.now() > deadline) throw new Error(`could not create or read stream ${s.name}`);
  }
}

/**
 * The info of a stream just created: a stream placed in another region (cluster) can be answered
 * "not found" for a moment, until its new group has a leader there; asked again, bounded.
 */
async function readBack(jsm: JetStreamManager, name: string): Promise<StreamInfo> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await jsm.streams.info(name);
    } catch (e) {
      if (!(e instanceof JetStreamApiError) || e.code !== JetStreamApiCodes.StreamNotFound || attempt >= 20) throw e;
      await new Promise((r) => setTimeout(r, 50 + 25 * attempt));
    }
  }
}

/** One try: the stream's info once it exists with confab's settings, or undefined to try again (lost a create race). */
async function ensureOnce(jsm: JetStreamManager, t: StreamTarget, log: pino.Logger): Promise<StreamInfo | undefined> {
  const s = t.settings;
  const want = desiredConfig(t);
  let info: StreamInfo | undefined;
  try {
    info = await jsm.streams.info(s.name);
  } catch (e) {
    if (!(e instanceof JetStreamApiError) || e.code !== JetStreamApiCodes.StreamNotFound) throw e;
  }
  if (!info) {
    try {
      // a racing node adds a different description: one add wins, the other gets 10058 and reads the winner's
      await jsm.streams.add({ ...want, description: epochDescription(newEpoch()) });
      log.info({ stream: s.name, replicas: s.replicas, storage: s.storage, cluster: t.cluster }, 'created history stream');
      // read back what the cluster keeps: two creates racing on a fresh cluster can both be answered
      // with success on nats-server 2.9, and then the later one's description is the one stored
      return await readBack(jsm, s.name);
    } catch (e) {
      if (e instanceof JetStreamApiError && e.code === STREAM_NAME_IN_USE) return undefined; // another node created it meanwhile
      throw e;
    }
  }
  const have = info.config as unknown as Record<string, unknown>;
  const differs = COMPARED.filter((k) => JSON.stringify(have[k]) !== JSON.stringify((want as Record<string, unknown>)[k]));
  if (have.storage !== want.storage) log.warn({ stream: s.name, have: have.storage, want: want.storage }, 'stream storage type cannot change; keeping the existing one');
  const placed = (info.config.placement as { cluster?: string } | undefined)?.cluster;
  if (t.cluster && placed !== t.cluster) log.warn({ stream: s.name, have: placed, want: t.cluster }, 'stream placement cannot change here; keeping the existing one (move it with `nats stream edit` or recreate it)');
  const described = EPOCH_RE.test(info.config.description ?? '');
  if (differs.length === 0 && described) return info;
  log.info({ stream: s.name, fields: described ? differs : [...differs, 'description'] }, 'updating history stream settings');
  const { storage: _ignored, placement: _kept, ...rest } = want;
  // a stream from before the epoch description keeps the epoch it had (its creation time), now written down
  const description = described ? info.config.description : epochDescription(epochOf(info));
  await jsm.streams.update(s.name, { ...info.config, ...rest, description } as StreamConfig);
  // read back what is stored now (another node may have updated it at the same time)
  return await jsm.streams.info(s.name);
}
