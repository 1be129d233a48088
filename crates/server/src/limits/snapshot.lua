-- snapshot.lua (appended to scope.lua): ScopeState::snapshot. Brings the scope to now
-- (and stores that, as the local backend does) and reads its counters.
--
-- KEYS[1..3]  state, live, expiry: as in scope.lua
-- ARGV[1..9]  limits and constants: as in scope.lua
-- Returns {admitted_tokens_per_minute, minute_level, day_level, reserved_tokens,
-- in_flight}, numbers as strings, '' for a bucket that is not configured.

advance()

local reserved = 0
local live = redis.call('HVALS', live_key)
for _, tokens in ipairs(live) do
  reserved = reserved + tonumber(tokens)
end
local capacity = minute_capacity()
save()
return {
  capacity and fmt(capacity) or '',
  s.minute_level and fmt(s.minute_level) or '',
  s.day_level and fmt(s.day_level) or '',
  fmt(reserved),
  string.format('%d', #live),
}
