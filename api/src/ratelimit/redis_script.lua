-- GCRA over several keys at once, all-or-nothing (the Lua twin of api/src/ratelimit/gcra.rs).
-- KEYS: the limited keys. ARGV: per key, its emission interval and its tolerance (burst x
-- interval), in microseconds. The clock is Redis's own, so every API node agrees on it.
-- Returns {refused_by (1-based, 0 = allowed), retry_after_us, then per key: remaining, reset_us}.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local result = {0, 0}
local new_tats = {}
local refused_by, retry_after = 0, 0
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i - 1])
  local tolerance = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then tat = now end
  local new_tat = tat + interval
  local allow_at = new_tat - tolerance
  if allow_at > now then
    if allow_at - now > retry_after then
      retry_after = allow_at - now
      refused_by = i
    end
    result[2 * i + 1] = 0
    result[2 * i + 2] = tat - now
  else
    result[2 * i + 1] = math.floor((now + tolerance - new_tat) / interval)
    result[2 * i + 2] = new_tat - now
  end
  new_tats[i] = new_tat
end
if refused_by == 0 then
  for i = 1, #KEYS do
    -- The TAT expires when it falls behind now: an absent key means a full allowance.
    redis.call('SET', KEYS[i], string.format('%d', new_tats[i]),
      'PX', math.ceil((new_tats[i] - now) / 1000))
  end
end
result[1] = refused_by
result[2] = retry_after
return result
