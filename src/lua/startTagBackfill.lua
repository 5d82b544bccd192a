--[[
  Starts (or resumes) the backfill of a tag config (profile tags apply of a change that
  needs one): the config becomes `pending` with a generation of pane keys of its own, which
  the realtime consumers then also write and the backfill fills. Compare-and-set on the
  active version, like switchTagConfig.lua. A pending config that is the same version keeps
  its generation (an apply run again after a crash resumes: every write is idempotent by
  event id); any other pending config is replaced (its state is written no more and expires).

  Input:
    KEYS[1] the tag config hash cfg:{tags}
    ARGV[1] the active version the caller planned against
    ARGV[2] the version to backfill (its doc:<version> recorded first)
    ARGV[3] now (ms)

  Output: the generation (≥ 1); 0 when the active version is not ARGV[1]; -1 when the
  document is not recorded
]]
local rcall = redis.call
local key = KEYS[1]

--@include tagConfigCas

local refusal = tagConfigRefusal(key, ARGV[1], ARGV[2])
if refusal then return refusal end
if rcall('HGET', key, 'pending') == ARGV[2] then
  local g = tonumber(rcall('HGET', key, 'gen:' .. ARGV[2]) or '0')
  if g > 0 then return g end
end
local g = rcall('HINCRBY', key, 'generations', 1)
rcall('HSET', key, 'pending', ARGV[2], 'pending_since', ARGV[3], 'gen:' .. ARGV[2], g)
return g
