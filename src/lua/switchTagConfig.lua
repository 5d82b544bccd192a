--[[
  Switches the active tag config (profile tags apply), compare-and-set: only when the active
  version is still the one the caller planned against, so two applies at once cannot both
  switch and a plan made against another config is never applied. The new config's
  document must be recorded first (field doc:<version>). The config switched from becomes
  `previous`; until `previous_until` (the grace period) the realtime consumers keep its
  window state up to date when it lives in another generation, so switching back is instant.

  Input:
    KEYS[1] the tag config hash cfg:{tags} (fields active, active_since, previous,
            previous_since, previous_until, pending, pending_since, generations,
            gen:<version>, doc:<version>)
    ARGV[1] the active version the caller planned against ('' when none was recorded)
    ARGV[2] the new version
    ARGV[3] now (ms)
    ARGV[4] the grace period (ms) during which the old config's state is still written
    ARGV[5] '' or the version that must be pending (a switch at the end of a backfill)
    ARGV[6] the generation of pane keys the new version's state is in; '' for the active
            one's (a change that needs no backfill reads the state the active config keeps)

  Output: 1 when switched; 0 when the active (or pending) version is not the expected one
  (nothing changed); -1 when the new version's document is not recorded
]]
local rcall = redis.call
local key = KEYS[1]

--@include tagConfigCas

local refusal = tagConfigRefusal(key, ARGV[1], ARGV[2])
if refusal then return refusal end
if ARGV[5] ~= '' and rcall('HGET', key, 'pending') ~= ARGV[5] then
  return 0
end
local gen = ARGV[6]
if gen == '' then gen = rcall('HGET', key, 'gen:' .. ARGV[1]) or '0' end
if ARGV[1] ~= '' then
  local since = rcall('HGET', key, 'active_since') or ARGV[3]
  rcall('HSET', key, 'previous', ARGV[1], 'previous_since', since, 'previous_until', tonumber(ARGV[3]) + tonumber(ARGV[4]))
end
rcall('HSET', key, 'active', ARGV[2], 'active_since', ARGV[3], 'gen:' .. ARGV[2], gen)
if rcall('HGET', key, 'pending') == ARGV[2] then rcall('HDEL', key, 'pending', 'pending_since') end
return 1
