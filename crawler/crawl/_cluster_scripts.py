"""The Lua scripts of ``cluster.SharedPoliteness``: each runs whole inside Redis, so
the workers of a crawl never race on a host's pace, slots, robots.txt or rate."""

__all__ = ["ADAPT", "CLAIM", "NOW", "PUSH_BACK", "PUT", "TAKE"]

# Lua 5.1 numbers are doubles: µs since 1970 (~2**51) are exact, and written with
# '%.0f' because tostring would print them in exponent form.
NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local function push(key, at)
  redis.call('SET', key, string.format('%.0f', at), 'PX', math.ceil((at - now) / 1000) + 1)
end
"""

# KEYS: pace, busy. ARGV: interval µs, limit (0: none), holder, lease µs.
# Returns -1 when the host has `limit` holders, else the µs to wait for the start slot.
TAKE = """
local limit = tonumber(ARGV[2])
if limit > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if redis.call('ZCARD', KEYS[2]) >= limit then return -1 end
end
local start = math.max(now, tonumber(redis.call('GET', KEYS[1])) or 0)
local after = start + tonumber(ARGV[1])
if after > now then push(KEYS[1], after) end
if limit > 0 then
  local expiry = start + tonumber(ARGV[4])
  redis.call('ZADD', KEYS[2], string.format('%.0f', expiry), ARGV[3])
  local keep = math.ceil((expiry - now) / 1000) + 1
  if redis.call('PTTL', KEYS[2]) < keep then redis.call('PEXPIRE', KEYS[2], keep) end
end
return start - now
"""

# KEYS: pace. ARGV: µs from now before the host's next start.
PUSH_BACK = """
local at = now + tonumber(ARGV[1])
if at > (tonumber(redis.call('GET', KEYS[1])) or 0) then push(KEYS[1], at) end
return 0
"""

# KEYS: claim. ARGV: token, ms. A retried claim finds its own token: still ours.
CLAIM = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then return 1 end
return 0
"""

# KEYS: answer, claim. ARGV: token, answer, ms (0: store nothing, just let go).
PUT = """
if tonumber(ARGV[3]) > 0 then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 0
"""

# KEYS: rate. ARGV: event ("ok" | "seen" | "back"), start, ceiling, age µs (of the
# request answered), resumed rate (0: none), then autorate.TUNING: floor, decrease,
# fast, slow, near, growth, used, min_step, hold, resumed. The same moves as AutoRate, on one
# state for every worker; "used" is the clean answers' rate of the whole cluster,
# counted in windows of a second or more. Returns the rate, as text (Redis would
# truncate a number).
ADAPT = """
local tuning = {}
for i = 6, 15 do tuning[#tuning + 1] = tonumber(ARGV[i]) end
local floor, decrease, fast, slow, near = tuning[1], tuning[2], tuning[3], tuning[4], tuning[5]
local growth, used, min_step, hold = tuning[6], tuning[7], tuning[8], tuning[9] * 1000000
local resumed_over = tuning[10]
local start, ceiling = tonumber(ARGV[2]), tonumber(ARGV[3])
local f = redis.call('HMGET', KEYS[1], 'r', 'l', 'd', 'g', 's', 'w', 'c', 'u')
local rate, lim, dec, grown, ss, w, c, u
if f[1] then
  rate, lim, dec, grown = tonumber(f[1]), tonumber(f[2]), tonumber(f[3]), tonumber(f[4])
  ss, w, c, u = tonumber(f[5]), tonumber(f[6]), tonumber(f[7]), tonumber(f[8])
else
  local resumed = tonumber(ARGV[5])
  if resumed > 0 then
    rate = math.min(math.max(resumed, floor), ceiling); lim = rate * resumed_over; ss = 0
  else
    rate = math.min(start, ceiling); lim = 0; ss = 1
  end
  dec, grown, w, c, u = 0, now, now, 0, 0
end
local event = ARGV[1]
if event == 'back' then
  local started = now - tonumber(ARGV[4])
  if started > dec and now - dec >= hold then
    if u > 0 then lim = math.min(rate, u) else lim = rate end
    rate = math.max(floor, lim * decrease)
    ss, dec, grown = 0, now, now
  end
else
  c = c + 1
  if now - w >= 1000000 then
    u = c * 1000000 / (now - w); w = now; c = 0
  end
  local elapsed = (now - grown) / 1000000
  grown = now
  if event == 'ok' then
    if ss == 1 then
      rate = rate * growth ^ math.min(elapsed, 1)
    else
      if lim > 0 and rate >= lim then lim = 0 end
      local step
      if lim == 0 then step = fast * rate
      elseif rate >= near * lim then step = slow * lim
      else step = fast * lim end
      rate = rate + math.max(step, min_step) * elapsed
    end
    local cap = ceiling
    if u > 0 then cap = math.min(cap, math.max(start, used * u)) end
    rate = math.min(rate, cap)
  end
end
redis.call('HSET', KEYS[1], 'r', tostring(rate), 'l', tostring(lim),
  'd', string.format('%.0f', dec), 'g', string.format('%.0f', grown), 's', ss,
  'w', string.format('%.0f', w), 'c', c, 'u', tostring(u))
redis.call('PEXPIRE', KEYS[1], 86400000)
return tostring(rate)
"""
