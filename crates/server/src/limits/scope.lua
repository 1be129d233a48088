-- scope.lua: the prelude of every limits script (reserve.lua, settle.lua, throttled.lua and
-- snapshot.lua are each appended to it and sent as one script). It reads the scope, takes
-- Redis' clock and brings the scope to now, as ScopeState::advance in local.rs does.
--
-- KEYS (every key of the scope carries the hash tag {<scope key>}: one Cluster slot):
--   KEYS[1]  <prefix>:{<scope>}:state   hash: rate, rate_at, last_decrease, minute_level,
--            minute_at, day_level, day_at, rpm_level, rpm_at (numbers as '%.17g' strings,
--            times in ms of Redis' clock), next_id (the INCR counter of reservation ids)
--   KEYS[2]  <prefix>:{<scope>}:live    hash: live reservation id -> tokens reserved
--   KEYS[3]  <prefix>:{<scope>}:expiry  sorted set: live reservation id -> expires at (ms)
-- ARGV (a limit that is not set is the empty string):
--   ARGV[1]  tokens per minute (configured, before adaptation)
--   ARGV[2]  tokens per day
--   ARGV[3]  requests per minute
--   ARGV[4]  max concurrency
--   ARGV[5]  adaptive: '1' or '0'
--   ARGV[6]  key TTL in ms: the scope's keys expire after this long unused (and never
--            before its last live reservation expires)
--   ARGV[7]  MINUTE_MS, ARGV[8] DAY_MS, ARGV[9] AI_PER_SEC
--   ARGV[10...] the script's own (see the script)

-- Redis 5 and 6 replicate a script that reads TIME only as its effects; 7 always does.
if redis.replicate_commands then
  redis.replicate_commands()
end

local state_key, live_key, expiry_key = KEYS[1], KEYS[2], KEYS[3]
local tpm = tonumber(ARGV[1])
local tpd = tonumber(ARGV[2])
local rpm = tonumber(ARGV[3])
local max_concurrency = tonumber(ARGV[4])
local adaptive = ARGV[5] == '1'
local key_ttl_ms = tonumber(ARGV[6])
local MINUTE_MS = tonumber(ARGV[7])
local DAY_MS = tonumber(ARGV[8])
local AI_PER_SEC = tonumber(ARGV[9])

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000

-- A number as a string that reads back exactly (tostring keeps only 14 digits).
local function fmt(x)
  return string.format('%.17g', x)
end

local fields = {
  'rate', 'rate_at', 'last_decrease', 'minute_level', 'minute_at', 'day_level', 'day_at',
  'rpm_level', 'rpm_at',
}
local s = {}
do
  local raw = redis.call('HMGET', state_key, unpack(fields))
  for i, field in ipairs(fields) do
    s[field] = raw[i] and tonumber(raw[i]) or nil
  end
end

-- Runs `command key id...` over `ids`, a few hundred at a time (unpack has a stack limit).
local function batched(command, key, ids)
  for i = 1, #ids, 500 do
    redis.call(command, key, unpack(ids, i, math.min(i + 499, #ids)))
  end
end

local function minute_capacity()
  if tpm then
    return tpm * s.rate
  end
  return nil
end

-- refill() in local.rs: at capacity per window, never above capacity; a bucket whose limit
-- appeared is created full, one whose limit went is dropped.
local function refill(level_field, at_field, capacity, window_ms)
  if capacity == nil then
    s[level_field], s[at_field] = nil, nil
  elseif s[level_field] == nil or s[at_field] == nil then
    s[level_field], s[at_field] = capacity, now
  else
    local elapsed = math.max(now - s[at_field], 0)
    s[level_field] = math.min(s[level_field] + capacity * elapsed / window_ms, capacity)
    s[at_field] = now
  end
end

-- wait_ms() in local.rs: ms until `level` reaches `tokens`; 0 if it has.
local function wait_ms(level, tokens, capacity, window_ms)
  if level >= tokens or capacity <= 0 then
    return 0
  end
  return (tokens - level) / (capacity / window_ms)
end

-- ScopeState::advance: expired reservations dropped (no refund), the rate climbed, the
-- buckets refilled. A scope seen for the first time starts at rate 1 with full buckets.
local function advance()
  local expired = redis.call('ZRANGEBYSCORE', expiry_key, '-inf', fmt(now))
  if #expired > 0 then
    batched('HDEL', live_key, expired)
    redis.call('ZREMRANGEBYSCORE', expiry_key, '-inf', fmt(now))
  end
  if s.rate == nil or s.rate_at == nil then
    s.rate, s.rate_at = 1, now
  end
  if adaptive then
    local elapsed_s = math.max(now - s.rate_at, 0) / 1000
    s.rate = math.min(s.rate + AI_PER_SEC * elapsed_s, 1)
  else
    s.rate = 1
  end
  s.rate_at = now
  refill('minute_level', 'minute_at', minute_capacity(), MINUTE_MS)
  refill('day_level', 'day_at', tpd, DAY_MS)
  refill('rpm_level', 'rpm_at', rpm, MINUTE_MS)
end

-- Writes the state back and sets the keys' expiry.
local function save()
  local set, unset = {}, {}
  for _, field in ipairs(fields) do
    if s[field] == nil then
      unset[#unset + 1] = field
    else
      set[#set + 1] = field
      set[#set + 1] = fmt(s[field])
    end
  end
  if #set > 0 then
    redis.call('HSET', state_key, unpack(set))
  end
  if #unset > 0 then
    redis.call('HDEL', state_key, unpack(unset))
  end
  local ttl_ms = key_ttl_ms
  local last = redis.call('ZRANGE', expiry_key, -1, -1, 'WITHSCORES')
  if last[2] then
    ttl_ms = math.max(ttl_ms, tonumber(last[2]) - now + 1000)
  end
  ttl_ms = string.format('%d', math.max(math.ceil(ttl_ms), 1))
  for _, key in ipairs(KEYS) do
    redis.call('PEXPIRE', key, ttl_ms)
  end
end

