--[[
  Renews or releases a lock only for its owner (compare-and-set), so a process whose lock
  expired and was taken over can never extend or delete the new owner's lock.

  Input:
    KEYS[1] lock key (value: the owner's id)
    ARGV[1] owner id
    ARGV[2] new time to live in ms, or 0 to release the lock

  Output: 1 when the caller owned the lock (renewed or released), 0 otherwise
]]
local rcall = redis.call

if rcall('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if tonumber(ARGV[2]) == 0 then
  rcall('DEL', KEYS[1])
else
  rcall('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
