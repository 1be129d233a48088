-- settle.lua (appended to scope.lua): ScopeState::settle. Gives back reserved - used (or
-- takes the overage), never above capacity, and frees the reservation's slot; an unknown
-- or expired id changes nothing but the time-driven state. Requests are never given back.
--
-- KEYS[1..3]  state, live, expiry: as in scope.lua
-- ARGV[1..9]  limits and constants: as in scope.lua
-- ARGV[10]    reservation id
-- ARGV[11]    tokens used
-- Returns {'settled'} or {'unknown'}.

local id = ARGV[10]
local used = tonumber(ARGV[11])

advance()

local reserved = redis.call('HGET', live_key, id)
if not reserved then
  save()
  return {'unknown'}
end
local delta = tonumber(reserved) - used
local capacity = minute_capacity()
if s.minute_level and capacity then
  s.minute_level = math.min(s.minute_level + delta, capacity)
end
if s.day_level and tpd then
  s.day_level = math.min(s.day_level + delta, tpd)
end
redis.call('HDEL', live_key, id)
redis.call('ZREM', expiry_key, id)
save()
return {'settled'}
