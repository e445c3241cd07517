/**
 * Lua scripts of the Redis history, run atomically by Redis (EVALSHA through
 * ioredis defineCommand, which falls back to EVAL after a restart emptied the
 * script cache). Offsets, prev and the epoch are decided inside Redis, so any
 * number of gateways can append to one room concurrently.
 *
 * Keys (prefix P; room, user and id escaped so ':' cannot collide):
 *   P:hist:<room>             stream, entry id "<offset>-0", fields m=<message JSON> p=<prev>
 *   P:id:<room>:<user>:<id>   dedupe key → offset, SET EX (CONFAB_REDIS_DEDUPE_S)
 *   P:rooms                   hash room → last offset (room list and offset counter)
 *   P:epoch                   the history epoch, created on first use
 *   P:epoch:run               run_id of the Redis server the epoch was last confirmed on (policy 'restart')
 */

/**
 * Shared prologue: the current epoch, made (or rotated, see EpochPolicy) atomically.
 * `run` is the run_id of the server, read by the caller on this very connection after it
 * connected (a connection never outlives its server process, so it is current).
 */
const EPOCH = `
local function current_epoch(epochKey, runKey, policy, candidate, run)
  local epoch = redis.call('GET', epochKey)
  if policy == 'restart' and run ~= '' then
    if redis.call('GET', runKey) ~= run then
      redis.call('SET', runKey, run)
      epoch = false
    end
  end
  if not epoch then
    epoch = candidate
    redis.call('SET', epochKey, epoch)
  end
  return epoch
end
`;

/**
 * append: KEYS stream, dedupe, epoch, run, rooms; ARGV room, body, limit, dedupeSec, policy, candidateEpoch, runId.
 * Returns {dup(0|1), offset, prev, epoch, storedBody?}. A dedupe hit whose message was trimmed
 * away counts as new (the id may be stored again, like every other adapter).
 */
export const APPEND_LUA = `${EPOCH}
local epoch = current_epoch(KEYS[3], KEYS[4], ARGV[5], ARGV[6], ARGV[7])
local seen = redis.call('GET', KEYS[2])
if seen then
  local e = redis.call('XRANGE', KEYS[1], seen .. '-0', seen .. '-0')
  if #e > 0 then
    local f = e[1][2]
    return {1, seen, f[4], epoch, f[2]}
  end
end
local last = tonumber(redis.call('HGET', KEYS[5], ARGV[1]) or '0')
local offset = string.format('%d', last + 1)
local prev = string.format('%d', last)
redis.call('XADD', KEYS[1], 'MAXLEN', '=', ARGV[3], offset .. '-0', 'm', ARGV[2], 'p', prev)
redis.call('HSET', KEYS[5], ARGV[1], offset)
redis.call('SET', KEYS[2], offset, 'EX', ARGV[4])
return {0, offset, prev, epoch}
`;

/**
 * read: KEYS stream, epoch, run, rooms; ARGV room, mode, a, b, policy, candidateEpoch, runId.
 * mode 'after': entries with offset >= a (a = after+1), at most b; 'recent': the newest a, newest first;
 * 'info': the oldest entry only; 'epoch': none. Returns {epoch, last, entries}.
 */
export const READ_LUA = `${EPOCH}
local epoch = current_epoch(KEYS[2], KEYS[3], ARGV[5], ARGV[6], ARGV[7])
local mode = ARGV[2]
local last = '0'
local entries = {}
if mode ~= 'epoch' then
  last = redis.call('HGET', KEYS[4], ARGV[1]) or '0'
end
if mode == 'after' then
  entries = redis.call('XRANGE', KEYS[1], ARGV[3] .. '-0', '+', 'COUNT', ARGV[4])
elseif mode == 'recent' then
  entries = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', ARGV[3])
elseif mode == 'info' then
  entries = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
end
return {epoch, last, entries}
`;

/** Escape a key component so ':' (the separator) and '%' cannot make two keys collide. */
export function keyPart(s: string): string {
  return s.replace(/[%:]/g, (c) => (c === '%' ? '%25' : '%3A'));
}
