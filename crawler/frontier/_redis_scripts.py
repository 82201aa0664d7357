"""The Lua scripts of the Redis frontier: every step two workers could race on is
one script, run atomically by the server. See ``_redis.py`` for the key layout."""

__all__ = ["COMMIT", "COMMON", "HEARTBEAT", "JOIN", "KEYS", "LEASE"]

KEYS = ("ready", "deferred", "data", "owner", "workers", "seen", "state", "checkpoint", "who")

# KEYS: the KEYS above, in order. ARGV: prefix, worker, now, expiry, then per script.
COMMON = """
local function requeue(id)
  local value = redis.call('HGET', KEYS[3], id)
  if value then
    redis.call('ZADD', KEYS[1], string.sub(value, 1, string.find(value, '\\n', 1, true) - 1), id)
  end
end
local function give_back(worker)
  local key = ARGV[1] .. 'leased:' .. worker
  for _, id in ipairs(redis.call('SMEMBERS', key)) do
    requeue(id)
    redis.call('HDEL', KEYS[4], id)
  end
  redis.call('DEL', key)
end
"""

# ARGV[5]: 'join', 'take' or 'leave'; ARGV[6]: this process, "<host> <pid>".
# join: refused (returns the holder) while another process's heartbeat under this
# name is alive; else, or on take, that earlier process is gone, so are its leases.
# leave: give them back and the name free.
JOIN = """
if ARGV[5] == 'join' then
  local score = redis.call('ZSCORE', KEYS[5], ARGV[2])
  local holder = redis.call('HGET', KEYS[9], ARGV[2])
  if score and tonumber(score) > tonumber(ARGV[3]) and holder and holder ~= ARGV[6] then
    return holder
  end
end
give_back(ARGV[2])
if ARGV[5] == 'leave' then
  redis.call('ZREM', KEYS[5], ARGV[2])
  redis.call('HDEL', KEYS[9], ARGV[2])
else
  redis.call('ZADD', KEYS[5], ARGV[4], ARGV[2])
  redis.call('HSET', KEYS[9], ARGV[2], ARGV[6])
end
return ''
"""

# Refresh only a live heartbeat: a worker declared dead must not come back (it must
# restart, which gives back what it held; see LEASE too).
HEARTBEAT = """
local score = redis.call('ZSCORE', KEYS[5], ARGV[2])
if score and tonumber(score) > tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[5], ARGV[4], ARGV[2])
  return 1
end
return 0
"""

# ARGV[5]: limit, ARGV[6]: DUE_PER_LEASE. Returns {finished, next_at or '', data...}.
LEASE = """
for _, worker in ipairs(redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', ARGV[3])) do
  give_back(worker)
  redis.call('ZREM', KEYS[5], worker)
  redis.call('HDEL', KEYS[9], worker)
end
if not redis.call('ZSCORE', KEYS[5], ARGV[2]) then
  -- Declared dead (its leases given back) while it still holds their requests: it
  -- must stop, not lease them again beside the copies it has in flight.
  return redis.error_reply('LEASELOST 0')
end
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[3], 'LIMIT', 0, ARGV[6])
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[2], id)
  requeue(id)
end
local out = {0, ''}
local limit = tonumber(ARGV[5])
if limit > 0 then
  local mine = ARGV[1] .. 'leased:' .. ARGV[2]
  local popped = redis.call('ZPOPMIN', KEYS[1], limit)
  for i = 1, #popped, 2 do
    local value = redis.call('HGET', KEYS[3], popped[i])
    if value then
      redis.call('SADD', mine, popped[i])
      redis.call('HSET', KEYS[4], popped[i], ARGV[2])
      out[#out + 1] = value
    end
  end
end
local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if first[2] then out[2] = first[2] end
if #out == 2 and not first[2] and redis.call('ZCARD', KEYS[1]) == 0
    and redis.call('HLEN', KEYS[4]) == 0 then
  out[1] = 1
end
return out
"""

# ARGV[5..9]: how many done ids, released (id, not_before, json), links (id, depth,
# json), checkpoint (key, value), counters (key, increment); then those items.
COMMIT = """
local now = tonumber(ARGV[3])
local nd, nr, nl, nc, nk = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]),
  tonumber(ARGV[8]), tonumber(ARGV[9])
local mine = ARGV[1] .. 'leased:' .. ARGV[2]
local score = redis.call('ZSCORE', KEYS[5], ARGV[2])
local alive = score and tonumber(score) > now
local done, released, links = 10, 10 + nd, 10 + nd + 3 * nr
local lost, named = 0, {}
for i = 0, nd + nr - 1 do
  local id = i < nd and ARGV[done + i] or ARGV[released + 3 * (i - nd)]
  if not alive or named[id] or redis.call('SISMEMBER', mine, id) == 0 then lost = lost + 1 end
  named[id] = true
end
if lost > 0 or not alive then return redis.error_reply('LEASELOST ' .. lost) end
for i = done, released - 1 do
  if redis.call('SREM', mine, ARGV[i]) == 1 then
    redis.call('HDEL', KEYS[4], ARGV[i])
    redis.call('HDEL', KEYS[3], ARGV[i])
    redis.call('HINCRBY', KEYS[7], 'done', 1)
  end
end
for i = released, links - 1, 3 do
  local id = ARGV[i]
  if redis.call('SREM', mine, id) == 1 then
    redis.call('HDEL', KEYS[4], id)
    local value = redis.call('HGET', KEYS[3], id)
    local order = string.sub(value, 1, string.find(value, '\\n', 1, true) - 1)
    redis.call('HSET', KEYS[3], id, order .. '\\n' .. ARGV[i + 2])
    if tonumber(ARGV[i + 1]) > now then redis.call('ZADD', KEYS[2], ARGV[i + 1], id)
    else redis.call('ZADD', KEYS[1], order, id) end
  end
end
local added = {}
local pairs_at = links + 3 * nl
for i = links, pairs_at - 1, 3 do
  local new = redis.call('SADD', KEYS[6], ARGV[i])
  if new == 1 then
    local seq = redis.call('HINCRBY', KEYS[7], 'seq', 1)
    local order = string.format('%.0f', tonumber(ARGV[i + 1]) * 4294967296 + seq)
    redis.call('HSET', KEYS[3], ARGV[i], order .. '\\n' .. ARGV[i + 2])
    redis.call('ZADD', KEYS[1], order, ARGV[i])
  end
  added[#added + 1] = new
end
for i = pairs_at, pairs_at + 2 * nc - 1, 2 do redis.call('HSET', KEYS[8], ARGV[i], ARGV[i + 1]) end
local counters_at = pairs_at + 2 * nc
for i = counters_at, counters_at + 2 * nk - 1, 2 do
  redis.call('HINCRBY', KEYS[8], ARGV[i], ARGV[i + 1])
end
return added
"""
