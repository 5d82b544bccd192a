-- readFast(bin, pos, paneKey, indexKey, now, out): the common read of one event type,
-- straight from the binary plan (type block at `pos`, see plan.lua) without decoding it
-- into tables: every tag is a count or count_by whose running total's window overlaps
-- now's, or a distinct with no value waiting ahead of now, or any tag whose window holds
-- none of the type's events. Appends name, value of each tag to the flat list `out` and
-- returns the type's newest event time; returns nil, having appended nothing, when a tag
-- needs the general path (typeTagValues).
local function readFast(bin, pos, paneKey, indexKey, now, out)
  local _, nValues, nDistinct, nTags
  _, _, _, _, _, nValues, pos = struct.unpack('>Bc0I4BBBB', bin, pos)
  nDistinct, pos = struct.unpack('>B', bin, pos + 2 * nValues)
  local text
  if nDistinct == 0 then
    text = redis.call('HGET', paneKey, 'T')
  else
    local names = { 'T' }
    for i = 0, nDistinct - 1 do names[#names + 1] = 'F' .. string.byte(bin, pos + i) end
    local got = redis.call('HMGET', paneKey, unpack(names))
    for i = 2, #got do if got[i] then return nil end end
    text = got[1]
  end
  local meta = parseMeta(text)
  if not meta then return nil end
  local newest, oldest = meta.newest, meta.oldest
  nTags, pos = struct.unpack('>B', bin, pos + nDistinct)
  local start = #out
  local function giveUp()
    for i = #out, start + 1, -1 do out[i] = nil end
    return nil
  end
  for _ = 1, nTags do
    local name, agg, field, window, res, mask, top, total
    name, agg, field, window, res, mask, top, total, pos = struct.unpack('>Bc0BBI4BBI4Bc0', bin, pos)
    window, res = window * 1000, RESOLUTIONS[res]
    local from, to = windowRange(window, res, now)
    local value
    if newest < from then -- every event is older than the window
      value = emptyValue(AGGREGATIONS[agg])
    elseif agg == 7 then -- distinct
      local base = field * DISTINCT_BASE
      value = redis.call('ZCOUNT', indexKey, base + from, '(' .. (base + to))
    elseif agg == 1 or agg == 8 then -- count, count_by
      local tag = { window = window, res = res, levels = levelList(mask), prefix = agg == 8 and tostring(field) or '', total = total }
      if agg == 8 then loadOwnField(paneKey, meta, total) end
      local plan = totalPlan(meta, tag, from, to, oldest, newest, true)
      if not plan then return giveUp() end
      local addNames, subNames = jobNames(indexKey, tag, plan, from, to, newest)
      value = totalValue(AGGREGATIONS[agg], plan.base, fetchFields(paneKey, addNames), fetchFields(paneKey, subNames))
    else
      return giveUp()
    end
    out[#out + 1] = name
    out[#out + 1] = value
  end
  return newest
end
