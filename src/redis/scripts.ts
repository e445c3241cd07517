/**
 * Lua scripts of the Redis history, run atomically by Redis (EVALSHA through
 * ioredis defineCommand, which falls back to EVAL after a restart emptied the
 * script cache). Offsets, prev and the epoch are decided inside Redis, so any
 * number of gateways can append to one room concurrently.
 *
 * Keys (prefix P; room, user and id escaped so ':' cannot collide):
 *   P:hist:<room>             stream, entry id "<offset>-0", fields m=<message JSON> p=<prev> t=<ts>;
 *                             PEXPIRE max age after each append (an idle room's messages all go at once)
 *   P:id:<room>:<user>:<id>   dedupe key → "offset|prev|ts|hash", SET PX the dedupe window (kept when the
 *                             message is trimmed; a bare offset in data written before the window)
 *   P:rooms                   hash room → last offset (room list and offset counter)
 *   P:bytes                   hash room → stored bytes (the per-room byte budget)
 *   P:active                  sorted set room → last append time (ms): rooms to forget once idle past
 *                             max(max age, dedupe window)
 *   P:floor                   the highest last offset of a forgotten room: a room made again starts above it
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
 * append: KEYS stream, dedupe, epoch, run, rooms, bytes, floor, active;
 * ARGV room, body, limit, dedupeMs, policy, candidateEpoch, runId, hash, size, ts, maxAgeMs, maxBytes.
 * Returns {dup(0|1), offset, prev, epoch, storedBody, hash, ts}. A dedupe hit answers the original
 * offset also when its message was trimmed (storedBody ''); the caller compares the hash (a bare
 * offset from before the window has hash '' and is compared by the stored body, when still there).
 * Trims the oldest entries while the room has more than `limit`, more than `maxBytes` (newest kept),
 * or entries older than `ts - maxAgeMs`.
 */
export const APPEND_LUA = `${EPOCH}
local epoch = current_epoch(KEYS[3], KEYS[4], ARGV[5], ARGV[6], ARGV[7])
local seen = redis.call('GET', KEYS[2])
if seen then
  local off, prev, ts, hash = string.match(seen, '^(%d+)|(%d+)|(%d+)|(.*)$')
  if off == nil then
    local e = redis.call('XRANGE', KEYS[1], seen .. '-0', seen .. '-0')
    if #e > 0 then
      local f = e[1][2]
      return {1, seen, f[4], epoch, f[2], '', '0'}
    end
  else
    local e = redis.call('XRANGE', KEYS[1], off .. '-0', off .. '-0')
    local body = ''
    if #e > 0 then body = e[1][2][2] end
    return {1, off, prev, epoch, body, hash, ts}
  end
end
local last = redis.call('HGET', KEYS[5], ARGV[1])
if not last then last = redis.call('GET', KEYS[7]) or '0' end
last = tonumber(last)
local offset = string.format('%d', last + 1)
local prev = string.format('%d', last)
redis.call('XADD', KEYS[1], offset .. '-0', 'm', ARGV[2], 'p', prev, 't', ARGV[10])
redis.call('HSET', KEYS[5], ARGV[1], offset)
local bytes = tonumber(redis.call('HGET', KEYS[6], ARGV[1]) or '0') + tonumber(ARGV[9])
local limit = tonumber(ARGV[3])
local maxAge = tonumber(ARGV[11])
local maxBytes = tonumber(ARGV[12])
local cutoff = tonumber(ARGV[10]) - maxAge
local n = redis.call('XLEN', KEYS[1])
if n > limit then
  local olds = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', n - limit)
  for _, e in ipairs(olds) do bytes = bytes - string.len(e[2][2]) end
  redis.call('XTRIM', KEYS[1], 'MAXLEN', '=', limit)
  n = limit
end
while n > 1 do
  local e = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
  local over = maxBytes > 0 and bytes > maxBytes
  local old = maxAge > 0 and e[2][6] ~= nil and tonumber(e[2][6]) < cutoff
  if not (over or old) then break end
  redis.call('XDEL', KEYS[1], e[1])
  bytes = bytes - string.len(e[2][2])
  n = n - 1
end
if bytes < 0 then bytes = 0 end
redis.call('HSET', KEYS[6], ARGV[1], bytes)
redis.call('SET', KEYS[2], offset .. '|' .. prev .. '|' .. ARGV[10] .. '|' .. ARGV[8], 'PX', ARGV[4])
if maxAge > 0 then
  redis.call('PEXPIRE', KEYS[1], maxAge)
  redis.call('ZADD', KEYS[8], ARGV[10], ARGV[1])
end
return {0, offset, prev, epoch}
`;

/**
 * forget: KEYS stream, rooms, bytes, floor, active; ARGV room, cutoff. A room idle since before
 * `cutoff` whose stream is gone (its messages aged out) is forgotten; the floor keeps its offsets.
 * Returns 1 when forgotten.
 */
export const FORGET_LUA = `
local s = redis.call('ZSCORE', KEYS[5], ARGV[1])
if not s or tonumber(s) >= tonumber(ARGV[2]) then return 0 end
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local last = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if last > tonumber(redis.call('GET', KEYS[4]) or '0') then redis.call('SET', KEYS[4], string.format('%d', last)) end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
return 1
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
