"""The Lua scripts that keep the counters in Redis: one atomic step per admission and per settlement.

Time is Redis's own (``TIME``), so replicas with drifting clocks share one
minute and one budget period. Every party's keys carry its client in a hash
tag (``pp:{client}...``), so a client and its end users live in one slot.

Per party, with ``B`` its base key:

- ``B:r:<minute>`` and ``B:t:<minute>``: requests and tokens in a minute (expire after two);
- ``B:b:<period>``: nano-USD spent in a UTC day (``d<days>``) or month (``m<yyyymm>``), kept 40 days past its end;
- ``B:h``: the requests it holds (a sorted set, scored by lease deadline) and ``B:hv`` what each reserved.

A hold whose lease ran out (its process died) is reclaimed by the next
admission: its reservation is taken back. Live holds are renewed by their
process (``REFRESH``). Settling is idempotent: a ticket settles once.
"""

from __future__ import annotations

COMMON = r"""
local t = redis.call('TIME')
local sec = tonumber(t[1])
local now_ms = sec * 1000 + math.floor(tonumber(t[2]) / 1000)
local minute = math.floor(sec / 60)

local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mp = (m > 2) and (m - 3) or (m + 9)
  local doy = math.floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

local function civil_from_days(z)
  z = z + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local m = (mp < 10) and (mp + 3) or (mp - 9)
  if m <= 2 then y = y + 1 end
  return y, m
end

-- The budget period holding a time (default now): its key suffix and its end (Unix seconds).
local function period(kind, at)
  at = at or sec
  local day = math.floor(at / 86400)
  if kind == 'day' then return 'd' .. day, (day + 1) * 86400 end
  local y, m = civil_from_days(day)
  local ny, nm = y, m + 1
  if nm > 12 then ny, nm = y + 1, 1 end
  return 'm' .. (y * 100 + m), days_from_civil(ny, nm, 1) * 86400
end

local function num(key) return tonumber(redis.call('GET', key) or '0') end

-- Take back what expired holds reserved (their process is gone).
local function reclaim(base)
  local expired = redis.call('ZRANGEBYSCORE', base .. ':h', '-inf', now_ms, 'LIMIT', 0, 64)
  for _, ticket in ipairs(expired) do
    local v = redis.call('HGET', base .. ':hv', ticket)
    if v and v ~= 'x' then
      local tkey, tokens, bkey, cost = string.match(v, '^(.-)|(%-?%d+)|(.-)|(%-?%d+)$')
      if redis.call('EXISTS', tkey) == 1 then redis.call('DECRBY', tkey, tokens) end
      if redis.call('EXISTS', bkey) == 1 then redis.call('DECRBY', bkey, cost) end
    end
    -- 'x': reclaimed, so a late settlement charges in full instead of adjusting.
    redis.call('HSET', base .. ':hv', ticket, 'x')
    redis.call('ZREM', base .. ':h', ticket)
  end
end
"""

# For tests: the period a given time falls in, as the scripts compute it.
PERIOD = COMMON + "local suffix, ends = period(ARGV[1], tonumber(ARGV[2]))\nreturn {suffix, ends}\n"

# KEYS: each party's base. ARGV: ticket, lease_ms, tokens, cost, then per party rpm tpm par budget period
# (0 for no limit). Returns {1, per party: requests, tokens, window_ms, spent, period_s, in_flight}
# or {0, party (1-based), limit, reset_ms, too_large, the counter's value}.
ADMIT = COMMON + r"""
local ticket, lease, tokens, cost = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local window_ms = (minute + 1) * 60000 - now_ms
local plan = {}
for i, base in ipairs(KEYS) do
  local o = 4 + (i - 1) * 5
  local rpm, tpm, par, budget = tonumber(ARGV[o + 1]), tonumber(ARGV[o + 2]), tonumber(ARGV[o + 3]),
    tonumber(ARGV[o + 4])
  local suffix, period_end = period(ARGV[o + 5])
  reclaim(base)
  local rkey, tkey, bkey = base .. ':r:' .. minute, base .. ':t:' .. minute, base .. ':b:' .. suffix
  local requests, used, spent = num(rkey), num(tkey), num(bkey)
  local held = redis.call('ZCARD', base .. ':h')
  if rpm > 0 and requests + 1 > rpm then return {0, i, 'rpm', window_ms, 0, requests} end
  if tpm > 0 and used + tokens > tpm then return {0, i, 'tpm', window_ms, (tokens > tpm) and 1 or 0, used} end
  if par > 0 and held + 1 > par then return {0, i, 'max_parallel', 0, 0, held} end
  if budget > 0 and spent + cost > budget then
    return {0, i, 'budget_usd', (period_end - sec) * 1000, (cost > budget) and 1 or 0, spent}
  end
  plan[i] = {base, rkey, tkey, bkey, period_end, requests, used, spent, held}
end
local out = {1}
for _, p in ipairs(plan) do
  local base, rkey, tkey, bkey, period_end = p[1], p[2], p[3], p[4], p[5]
  redis.call('INCR', rkey)
  redis.call('EXPIRE', rkey, 120)
  redis.call('INCRBY', tkey, ARGV[3])
  redis.call('EXPIRE', tkey, 120)
  redis.call('INCRBY', bkey, ARGV[4])
  redis.call('EXPIREAT', bkey, period_end + 40 * 86400)
  redis.call('ZADD', base .. ':h', now_ms + lease, ticket)
  redis.call('HSET', base .. ':hv', ticket, tkey .. '|' .. ARGV[3] .. '|' .. bkey .. '|' .. ARGV[4])
  redis.call('PEXPIRE', base .. ':h', lease * 2)
  redis.call('PEXPIRE', base .. ':hv', lease * 2)
  for _, v in ipairs({p[6] + 1, p[7] + tokens, window_ms, p[8] + cost, period_end - sec, p[9] + 1}) do
    out[#out + 1] = v
  end
end
return out
"""

# KEYS: each party's base. ARGV: ticket, tokens used, cost, then each party's period kind.
SETTLE = COMMON + r"""
local ticket, tokens, cost = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
for i, base in ipairs(KEYS) do
  local v = redis.call('HGET', base .. ':hv', ticket)
  if v == 'x' then
    -- Its reservation was taken back: charge what it used to the current window and period.
    local suffix, period_end = period(ARGV[3 + i])
    redis.call('INCRBY', base .. ':t:' .. minute, ARGV[2])
    redis.call('EXPIRE', base .. ':t:' .. minute, 120)
    redis.call('INCRBY', base .. ':b:' .. suffix, ARGV[3])
    redis.call('EXPIREAT', base .. ':b:' .. suffix, period_end + 40 * 86400)
  elseif v then
    local tkey, reserved, bkey, held = string.match(v, '^(.-)|(%-?%d+)|(.-)|(%-?%d+)$')
    if redis.call('EXISTS', tkey) == 1 then redis.call('INCRBY', tkey, tokens - tonumber(reserved)) end
    if redis.call('EXISTS', bkey) == 1 then redis.call('INCRBY', bkey, cost - tonumber(held)) end
  end
  redis.call('HDEL', base .. ':hv', ticket)
  redis.call('ZREM', base .. ':h', ticket)
end
return 1
"""

# KEYS: a base per ticket. ARGV: lease_ms, then the tickets. Renews the leases of holds still held.
REFRESH = COMMON + r"""
local lease = tonumber(ARGV[1])
for i, base in ipairs(KEYS) do
  redis.call('ZADD', base .. ':h', 'XX', now_ms + lease, ARGV[i + 1])
  redis.call('PEXPIRE', base .. ':h', lease * 2)
  redis.call('PEXPIRE', base .. ':hv', lease * 2)
end
return 1
"""

# KEYS: each party's base. ARGV: each party's period kind. The same numbers as an admission, read only.
STATES = COMMON + r"""
local out = {}
local window_ms = (minute + 1) * 60000 - now_ms
for i, base in ipairs(KEYS) do
  local suffix, period_end = period(ARGV[i])
  for _, v in ipairs({num(base .. ':r:' .. minute), num(base .. ':t:' .. minute), window_ms,
                      num(base .. ':b:' .. suffix), period_end - sec,
                      redis.call('ZCOUNT', base .. ':h', now_ms, '+inf')}) do
    out[#out + 1] = v
  end
end
return out
"""
