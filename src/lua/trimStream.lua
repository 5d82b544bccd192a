--[[
  Trims a stream partition below the lowest id that some consumer group still needs: for
  each group, its oldest pending id, or (nothing pending) the id right after its
  last-delivered-id. Atomic, so no group can move between the check and the trim.
  Nothing is trimmed while a required group is missing: an archiver that has never run
  must still find every entry.

  Input:
    KEYS[1] stream partition ev:{pN}
    ARGV[1..n] names of the groups that must exist (realtime, archive)

  Output: number of entries trimmed; -1 when a required group is missing (nothing trimmed)
]]
local rcall = redis.call

if rcall('EXISTS', KEYS[1]) == 0 then
  return 0
end

local found = {}
local minMs, minSeq
local function consider(id, bump)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  ms, seq = tonumber(ms), tonumber(seq) + bump
  if minMs == nil or ms < minMs or (ms == minMs and seq < minSeq) then
    minMs, minSeq = ms, seq
  end
end

for _, group in ipairs(rcall('XINFO', 'GROUPS', KEYS[1])) do
  local info = {}
  for i = 1, #group, 2 do info[group[i]] = group[i + 1] end
  found[info['name']] = true
  if info['pending'] > 0 then
    consider(rcall('XPENDING', KEYS[1], info['name'])[2], 0)
  else
    consider(info['last-delivered-id'], 1)
  end
end

for i = 1, #ARGV do
  if not found[ARGV[i]] then return -1 end
end
if minMs == nil then
  return -1
end
return rcall('XTRIM', KEYS[1], 'MINID', string.format('%d-%d', minMs, minSeq))
