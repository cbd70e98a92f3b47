/**
 * The Lua scripts of the Redis store. Each call is one script, so that an entry, its size,
 * its LRU rank and its expiry change together (Redis runs a script atomically) and a write
 * reaches the other nodes (PUBLISH) in the same round trip.
 *
 * Keys, under the prefix P (default `cp:`):
 *   P e:<key>   the entry's bytes (a Redis TTL = its useful life + a margin, or none)
 *   P size      hash key -> bytes;  P bytes: their sum;  P seq: the LRU clock
 *   P lru       sorted set key -> last access (P seq);  P exp: key -> expiresAt (epoch ms)
 *   P keys      sorted set of every key at score 0, in byte order (keys(prefix): ZRANGEBYLEX)
 *   P l:<key>   a lease: "<owner>|<client id>|<expiresAt>"
 * Scripts name keys they build from the prefix, so this is for a single Redis (or a
 * primary with replicas), not Redis Cluster.
 */

const DROP = `
local function drop (p, k)
  local size = redis.call('HGET', p .. 'size', k)
  if size then
    redis.call('HDEL', p .. 'size', k)
    redis.call('DECRBY', p .. 'bytes', size)
  end
  redis.call('ZREM', p .. 'lru', k)
  redis.call('ZREM', p .. 'exp', k)
  redis.call('ZREM', p .. 'keys', k)
  return redis.call('DEL', p .. 'e:' .. k) == 1 or size ~= false
end
`

/** ARGV: prefix, key, value, ttl ms (0: none), expiresAt ('' : none), channel, message. */
export const SET = `
local p, k, v = ARGV[1], ARGV[2], ARGV[3]
local ttl = tonumber(ARGV[4])
local old = redis.call('HGET', p .. 'size', k)
if old then redis.call('DECRBY', p .. 'bytes', old) end
if ttl > 0 then redis.call('SET', p .. 'e:' .. k, v, 'PX', ttl) else redis.call('SET', p .. 'e:' .. k, v) end
redis.call('HSET', p .. 'size', k, string.len(v))
redis.call('INCRBY', p .. 'bytes', string.len(v))
redis.call('ZADD', p .. 'lru', redis.call('INCR', p .. 'seq'), k)
redis.call('ZADD', p .. 'keys', 0, k)
if ARGV[5] == '' then redis.call('ZREM', p .. 'exp', k) else redis.call('ZADD', p .. 'exp', ARGV[5], k) end
redis.call('PUBLISH', ARGV[6], ARGV[7])
return 1
`

/** ARGV: prefix, key, channel, message. */
export const DELETE = `${DROP}
drop(ARGV[1], ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
`

/** ARGV: prefix, key. The bytes, counted as an access; the metadata of an entry Redis dropped (TTL, maxmemory) goes too. */
export const GET = `${DROP}
local p, k = ARGV[1], ARGV[2]
local v = redis.call('GET', p .. 'e:' .. k)
if v then
  redis.call('ZADD', p .. 'lru', 'XX', redis.call('INCR', p .. 'seq'), k)
  return v
end
if redis.call('HEXISTS', p .. 'size', k) == 1 then drop(p, k) end
return false
`

/** ARGV: prefix, key... Marks accesses made elsewhere (a memory tier), in order; unknown keys are ignored. */
export const TOUCH = `
local p = ARGV[1]
for i = 2, #ARGV do redis.call('ZADD', p .. 'lru', 'XX', redis.call('INCR', p .. 'seq'), ARGV[i]) end
return 1
`

/** ARGV: prefix. {entries, bytes}. */
export const STATS = `
local p = ARGV[1]
return { redis.call('HLEN', p .. 'size'), tonumber(redis.call('GET', p .. 'bytes') or '0') }
`

/** ARGV: prefix, now, maxBytes, limit. Deletes the expired, then the least recently used past maxBytes: {expired, evicted}. */
export const SWEEP = `${DROP}
local p, now, max, limit = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local expired, evicted = 0, 0
for _, k in ipairs(redis.call('ZRANGEBYSCORE', p .. 'exp', '-inf', now, 'LIMIT', 0, limit)) do
  drop(p, k)
  expired = expired + 1
end
while evicted < limit and tonumber(redis.call('GET', p .. 'bytes') or '0') > max do
  local oldest = redis.call('ZRANGE', p .. 'lru', 0, 0)
  if #oldest == 0 then
    redis.call('SET', p .. 'bytes', 0)
    break
  end
  drop(p, oldest[1])
  evicted = evicted + 1
end
return { expired, evicted }
`

/**
 * ARGV: lease key, owner, value, now, ttl ms, taken-over value (''). Takes the lease if it
 * is free, expired, already ours, or still holds exactly the given value of a dead holder.
 * Returns 1, or the holder's value.
 */
export const ACQUIRE = `
local current = redis.call('GET', ARGV[1])
if current and current ~= ARGV[6] then
  local owner, _, expires = string.match(current, '^(.*)|(%d*)|(%d+)$')
  if owner ~= ARGV[2] and tonumber(expires) > tonumber(ARGV[4]) then return current end
end
redis.call('SET', ARGV[1], ARGV[3], 'PX', ARGV[5])
return 1
`

/** ARGV: lease key, owner. Deletes the lease only if `owner` holds it (compare and delete). */
export const RELEASE = `
local current = redis.call('GET', ARGV[1])
if current and string.sub(current, 1, string.len(ARGV[2]) + 1) == ARGV[2] .. '|' then redis.call('DEL', ARGV[1]) end
return 1
`
