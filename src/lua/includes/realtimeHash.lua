-- touchRealtime(rtKey, seen, newest, newestBefore, now, longest): the realtime hash
-- u:{<user>}:rt after a write: HSET of `seen` (type, its newest event time, ...) for the
-- types whose newest event moved. The hash lives as long as any of the user's pane keys
-- can (keyExpiry of the newest event with the longest window, moved only when that value
-- moves): a read takes the types to read from it. Its expiry never moves back
-- (GT); a new field (maybe a new hash) sets it outright. `newest`: the newest of `seen`'s
-- times; `newestBefore`: the newest those types had before (math.huge when one had none).
local function touchRealtime(rtKey, seen, newest, newestBefore, now, longest)
  local expiry = keyExpiry(newest, longest)
  if redis.call('HSET', rtKey, unpack(seen)) > 0 then
    local pttl = redis.call('PTTL', rtKey)
    if pttl > 0 and now + pttl > expiry then expiry = now + pttl end
    redis.call('PEXPIRE', rtKey, expiry - now)
  elseif newestBefore == math.huge or keyExpiry(newestBefore, longest) < expiry then
    redis.call('PEXPIRE', rtKey, expiry - now, 'GT')
  end
end
