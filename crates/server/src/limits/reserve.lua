-- reserve.lua (appended to scope.lua): ScopeState::check, then, if the ask fits,
-- ScopeState::commit and one request from the requests-per-minute bucket, atomically.
--
-- KEYS[1..3]  state, live, expiry: as in scope.lua
-- ARGV[1..9]  limits and constants: as in scope.lua
-- ARGV[10]    tokens asked
-- ARGV[11]    TTL of the reservation in ms
-- ARGV[12]    CONCURRENCY_RETRY_MS
-- Returns one of
--   {'granted', id, tokens}
--   {'wait', retry_after_ms, limit}   (limit as LimitKind::as_str)
--   {'never', limit}

local tokens = tonumber(ARGV[10])
local ttl_ms = tonumber(ARGV[11])
local concurrency_retry_ms = ARGV[12]

advance()

local function check()
  if tpm and tokens > tpm then
    return {'never', 'tokens_per_minute'}
  end
  if tpd and tokens > tpd then
    return {'never', 'tokens_per_day'}
  end
  if max_concurrency and redis.call('HLEN', live_key) >= max_concurrency then
    return {'wait', concurrency_retry_ms, 'concurrency'}
  end
  local wait, limit = nil, nil
  local function longest(ms, kind)
    if ms > 0 and (wait == nil or ms > wait) then
      wait, limit = ms, kind
    end
  end
  local capacity = minute_capacity()
  if capacity and s.minute_level then
    local ms
    if tokens > capacity then
      -- The admitted rate was lowered below the ask: wait for it to climb back.
      local rate_needed = tokens / math.max(tpm, 1)
      ms = (rate_needed - s.rate) / AI_PER_SEC * 1000 + MINUTE_MS * rate_needed
    else
      ms = wait_ms(s.minute_level, tokens, capacity, MINUTE_MS)
    end
    longest(ms, 'tokens_per_minute')
  end
  if tpd and s.day_level then
    longest(wait_ms(s.day_level, tokens, tpd, DAY_MS), 'tokens_per_day')
  end
  if rpm and s.rpm_level then
    longest(wait_ms(s.rpm_level, 1, rpm, MINUTE_MS), 'requests_per_minute')
  end
  if wait then
    return {'wait', fmt(math.max(wait, 1)), limit}
  end
  return nil
end

local refused = check()
if refused then
  save()
  return refused
end

-- ScopeState::commit.
if s.minute_level then
  s.minute_level = s.minute_level - tokens
end
if s.day_level then
  s.day_level = s.day_level - tokens
end
if s.rpm_level then
  s.rpm_level = s.rpm_level - 1
end
local id = string.format('%d', redis.call('HINCRBY', state_key, 'next_id', 1))
redis.call('HSET', live_key, id, ARGV[10])
redis.call('ZADD', expiry_key, fmt(now + ttl_ms), id)
save()
return {'granted', id, ARGV[10]}
