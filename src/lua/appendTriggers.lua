--[[
  Appends trigger firings to one partition's trigger stream exactly once, and trims the
  stream and its dedup set by age. A firing comes from a user's outbox (updateWindows.lua);
  the consumer appends it, then removes it from the outbox. A consumer that dies between
  the two appends the same firing again on redelivery: its id is then already in the dedup
  set, so the stream gets it once.

  Input:
    KEYS[1] trigger stream    trig:{p<N>}
    KEYS[2] dedup set         trig:{p<N>}:seen  member: firing id, score: when appended (ms)
    ARGV[1] now (ms)
    ARGV[2] retention (ms): entries and dedup ids older than now - retention are dropped
    then per firing: its id, the number of field values n, and n values (field, value, ...)

  Output: the number of firings appended (those not seen before)
]]
local rcall = redis.call
local now = tonumber(ARGV[1])
local oldest = now - tonumber(ARGV[2])
local appended = 0
local i = 3
while i <= #ARGV do
  local id, n = ARGV[i], tonumber(ARGV[i + 1])
  if rcall('ZADD', KEYS[2], 'NX', now, id) == 1 then
    rcall('XADD', KEYS[1], '*', unpack(ARGV, i + 2, i + 1 + n))
    appended = appended + 1
  end
  i = i + 2 + n
end
rcall('XTRIM', KEYS[1], 'MINID', oldest)
rcall('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. oldest)
return appended
