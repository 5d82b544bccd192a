--[[
  Switches the active tag config (profile tags apply), compare-and-set: only when the active
  version is still the one the caller planned against, so two applies at once cannot both
  switch and a plan made against another config is never applied. The new config's
  document must be recorded first (field doc:<version>).

  Input:
    KEYS[1] the tag config hash cfg:{tags} (fields active, active_since, previous,
            previous_since, doc:<version>)
    ARGV[1] the active version the caller planned against ('' when none was recorded)
    ARGV[2] the new version
    ARGV[3] now (ms)

  Output: 1 when switched; 0 when the active version is not ARGV[1] (nothing changed); -1
  when the new version's document is not recorded
]]
local rcall = redis.call

if (rcall('HGET', KEYS[1], 'active') or '') ~= ARGV[1] then
  return 0
end
if rcall('HEXISTS', KEYS[1], 'doc:' .. ARGV[2]) == 0 then
  return -1
end
if ARGV[1] ~= '' then
  rcall('HSET', KEYS[1], 'previous', ARGV[1], 'previous_since', rcall('HGET', KEYS[1], 'active_since') or ARGV[3])
end
rcall('HSET', KEYS[1], 'active', ARGV[2], 'active_since', ARGV[3])
return 1
