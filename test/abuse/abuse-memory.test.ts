/**
 * Memory and disk under abuse (issue 11, S10): a gateway process with LMDB history and small,
 * explicit budgets is attacked from a child process (src/testkit/attacker.ts), every socket within
 * its per-connection rate: users filling as many rooms as they may with 2,000-character messages,
 * users resuming from offset 0 and paging `history` over and over (half of them never reading, so
 * the server's send buffers fill), and silent sockets up to past the node's socket budget. Beside
 * them a canary publishes in its own room. Asserted: the gateway's anonymous RSS (heap, buffers,
 * native allocations) and V8 heap stay under the budget docs/limits.md derives from the settings,
 * LMDB's file under the disk bound docs/retention.md derives from them, every refusal is typed, and
 * the canary loses nothing (G1–G3).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { spawnAttacker, type AttackResult } from '../../src/testkit/attacker.js';
import { Canary, type CanaryReport } from '../../src/testkit/canary.js';
import { spawnGateway, type GatewayProcess } from '../../src/testkit/gateway.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const S = {
  CACHE_BYTES: 4 * MiB,
  MAX_SOCKETS: 100,
  MAX_ROOMS_PER_NODE: 150,
  SEND_BUFFER: 256 * KiB,
  HISTORY_LIMIT: 100,
  HISTORY_MAX_BYTES: 64 * KiB,
};

/** docs/limits.md "Memory budget": what the node may hold above its idle footprint. */
function memoryBudget(idleAnon: number): number {
  return idleAnon + 2 * S.CACHE_BYTES + S.MAX_SOCKETS * (S.SEND_BUFFER + 64 * KiB) + S.MAX_ROOMS_PER_NODE * 16 * KiB + 48 * MiB;
}

/**
 * docs/retention.md "Disk under sustained abuse", for rooms ≤ the node's maximum: 3 × the live bound
 * under a replay flood (pages freed by trims are reused only once no reader still sees them).
 */
function diskBound(appends: number): number {
  return 3 * (S.MAX_ROOMS_PER_NODE * S.HISTORY_MAX_BYTES + appends * 200) + 2 * MiB;
}

function procStatus(pid: number): { rss: number; anon: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN) * KiB;
  return { rss: kb('VmRSS'), anon: kb('RssAnon') };
}

/** V8 heap used and the room caches' accounted bytes, from the gateway's /metrics. */
async function metrics(url: string): Promise<{ heap: number; cache: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const value = (name: string) => Number(text.split('\n').find((l) => l.startsWith(name))?.split(' ').at(-1));
  return { heap: value('nodejs_heap_size_used_bytes'), cache: value('confab_room_cache_bytes') };
}

describe('abuse: memory and disk within the configured budgets', () => {
  let gw: GatewayProcess;
  let dir: string;
  let idle = { rss: 0, anon: 0 };
  const peak = { rss: 0, anon: 0, heap: 0, cache: 0 };
  let attack: AttackResult;
  let canaryReport: CanaryReport;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'confab-abuse-mem-'));
    gw = await spawnGateway({
      CONFAB_HISTORY: 'lmdb',
      CONFAB_DATA_DIR: dir,
      CONFAB_CACHE_BYTES: String(S.CACHE_BYTES),
      CONFAB_MAX_SOCKETS: String(S.MAX_SOCKETS),
      CONFAB_MAX_ROOMS_PER_NODE: String(S.MAX_ROOMS_PER_NODE),
      CONFAB_SEND_BUFFER_BYTES: String(S.SEND_BUFFER),
      CONFAB_HISTORY_LIMIT: String(S.HISTORY_LIMIT),
      CONFAB_HISTORY_MAX_BYTES: String(S.HISTORY_MAX_BYTES),
      // the attack stands for many addresses: the per-address limits are out of the way, the node's budgets decide
      CONFAB_MAX_CONN_PER_IP: '100000',
    });
    const wsUrl = gw.url.replace(/^http/, 'ws') + '/ws';
    const canary = await Canary.start({ url: gw.url, wsUrl }, { intervalMs: 100 });
    await new Promise((r) => setTimeout(r, 500)); // a few canary round trips before the idle figure (not a synchronisation)
    idle = procStatus(gw.pid);
    let sampling = true;
    const sampler = (async () => {
      let k = 0;
      while (sampling) {
        const p = procStatus(gw.pid);
        peak.rss = Math.max(peak.rss, p.rss);
        peak.anon = Math.max(peak.anon, p.anon);
        if (k++ % 5 === 0) {
          const m = await metrics(gw.url).catch(() => ({ heap: 0, cache: 0 }));
          peak.heap = Math.max(peak.heap, m.heap);
          peak.cache = Math.max(peak.cache, m.cache);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    attack = await spawnAttacker({
      url: gw.url,
      wsUrl,
      durationMs: 10_000,
      groups: [
        // room fill: 2 sockets per user at 15 frames/s each (the user's 30/s), 2,000-character messages into 6 rooms each
        { users: 24, sockets: 2, rooms: 6, rate: 15, mix: ['pub'] },
        // replay and history floods, reading
        { users: 6, sockets: 2, rooms: 3, rate: 15, mix: ['pub', 'replay', 'history', 'pub', 'replay', 'history'] },
        // the same, never reading: the server's send buffers fill
        { users: 4, sockets: 2, rooms: 3, rate: 15, mix: ['pub', 'replay', 'history'], slowReader: true },
        // never reading, resuming from offset 0 in 50 of the filled rooms at once (a page of history per room)
        { users: 4, sockets: 2, rooms: 0, roomsOf: 0, roomsPerSocket: 50, rate: 18, mix: ['replay'], slowReader: true },
        // silent sockets past the node's socket budget
        { users: 4, sockets: 16, rooms: 0, rate: 1, mix: ['idle'] },
      ],
    });
    sampling = false;
    await sampler;
    canaryReport = await canary.stop();
  });
  after(async () => {
    await gw?.kill();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the canary lost nothing and saw no error', (t) => {
    t.diagnostic(`canary: ${JSON.stringify(canaryReport)}`);
    assert.ok(canaryReport.sent >= 100, `the canary kept publishing (${canaryReport.sent})`);
    assert.equal(canaryReport.lost + canaryReport.duplicated + canaryReport.reordered, 0);
    assert.deepEqual(canaryReport.errors, []);
    assert.equal(canaryReport.closeCode, undefined);
  });

  it('every refusal the attacker got is typed, and the node\'s budgets were reached', (t) => {
    t.diagnostic(`attacker: ${JSON.stringify(attack)}`);
    const typed = new Set(['rate_limited', 'fenced', 'node_full', 'too_many_rooms', 'too_many_sockets', 'not_joined']);
    assert.deepEqual(Object.keys(attack.refused).filter((c) => !typed.has(c)), [], 'every error frame has a known code');
    assert.deepEqual(Object.keys(attack.socketsRefused), ['503'], 'sockets past the budget: 503 node_full');
    assert.ok(attack.sockets <= S.MAX_SOCKETS - 1, `at most the node's sockets (${attack.sockets})`);
    assert.ok((attack.refused.node_full ?? 0) > 0, 'rooms past the node\'s maximum refused');
    // 1006 (ours: terminated at the end), 4001 (a slow consumer cut at its send buffer; replays are paced, so rarely)
    assert.deepEqual(Object.keys(attack.closes).filter((c) => c !== '1006' && c !== '4001'), [], JSON.stringify(attack.closes));
    assert.ok(attack.acked > 3000, `the attacker wrote (${attack.acked} messages)`);
  });

  it('anonymous RSS and heap stay under the memory budget derived from the settings', (t) => {
    const budget = memoryBudget(idle.anon);
    t.diagnostic(`idle anon ${(idle.anon / MiB).toFixed(1)} MiB rss ${(idle.rss / MiB).toFixed(1)}; peak anon ${(peak.anon / MiB).toFixed(1)} MiB, rss ${(peak.rss / MiB).toFixed(1)}, heap used ${(peak.heap / MiB).toFixed(1)}, room caches ${(peak.cache / MiB).toFixed(2)}; budget ${(budget / MiB).toFixed(1)} MiB`);
    assert.ok(peak.cache > S.CACHE_BYTES / 2 && peak.cache <= S.CACHE_BYTES, `the room caches filled up to their node-wide budget and no further (${peak.cache} of ${S.CACHE_BYTES})`);
    assert.ok(peak.anon <= budget, `peak anonymous RSS ${peak.anon} <= ${budget}`);
    assert.ok(peak.heap > 0 && peak.heap <= budget, `peak heap ${peak.heap} <= ${budget}`);
  });

  it('LMDB stays under its disk bound', (t) => {
    const size = statSync(join(dir, 'history', 'data.mdb')).size;
    const bound = diskBound(attack.acked + canaryReport.acked);
    t.diagnostic(`data.mdb ${(size / MiB).toFixed(2)} MiB, bound ${(bound / MiB).toFixed(2)} MiB; written ${(attack.acked * 2 / 1000).toFixed(1)} MB of text`);
    assert.ok(size <= bound, `${size} <= ${bound}`);
  });
});
