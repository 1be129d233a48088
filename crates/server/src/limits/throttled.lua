-- throttled.lua (appended to scope.lua): ScopeState::throttled. Adaptive scopes only:
-- multiplicative decrease of the admitted rate at most once per interval, never below
-- the floor, and an empty minute bucket (a debt is kept).
--
-- KEYS[1..3]  state, live, expiry: as in scope.lua
-- ARGV[1..9]  limits and constants: as in scope.lua
-- ARGV[10]    MD_FACTOR
-- ARGV[11]    MD_INTERVAL_MS
-- ARGV[12]    MIN_RATE
-- Returns {'decreased'}, {'kept'} (within the interval) or {'not_adaptive'}.

local md_factor = tonumber(ARGV[10])
local md_interval_ms = tonumber(ARGV[11])
local min_rate = tonumber(ARGV[12])

if not adaptive then
  return {'not_adaptive'}
end

advance()

local due = s.last_decrease == nil or now - s.last_decrease >= md_interval_ms
if due then
  s.rate = math.max(s.rate * md_factor, min_rate)
  s.last_decrease = now
end
if s.minute_level then
  s.minute_level = math.min(s.minute_level, 0)
end
save()
if due then
  return {'decreased'}
end
return {'kept'}
