-- aggregateTag(zkey, vkey, agg, fieldIdx, fromMs, toMs): the value of one window tag over
-- the events of `zkey` (member event_id, score event time) with fromMs <= time <= toMs.
-- `vkey` maps event_id -> field values packed with "\31" in WINDOW_FIELDS order; fieldIdx
-- is the 1-based position of the aggregated field. Returns an integer (count, distinct),
-- a decimal string (sum: Lua numbers would be truncated to integers in the reply) or a
-- flat array {key1, n1, key2, n2, ...} sorted by key (count_by).
local function aggregateTag(zkey, vkey, agg, fieldIdx, fromMs, toMs)
  if agg == 'count' then
    return rcall('ZCOUNT', zkey, fromMs, toMs)
  end
  local ids = rcall('ZRANGEBYSCORE', zkey, fromMs, toMs)
  local sum, distinct, counts = 0, 0, {}
  -- HMGET in chunks: unpack() of a long list would overflow Lua's C stack.
  for first = 1, #ids, 1000 do
    local last = math.min(first + 999, #ids)
    local packed = rcall('HMGET', vkey, unpack(ids, first, last))
    for i = 1, #packed do
      local value = ''
      if packed[i] then
        local n = 1
        for part in string.gmatch(packed[i] .. '\31', '([^\31]*)\31') do
          if n == fieldIdx then value = part break end
          n = n + 1
        end
      end
      if agg == 'sum' then
        sum = sum + (tonumber(value) or 0)
      elseif value ~= '' then
        if counts[value] == nil then
          counts[value] = 0
          distinct = distinct + 1
        end
        counts[value] = counts[value] + 1
      end
    end
  end
  if agg == 'sum' then return tostring(sum) end
  if agg == 'distinct' then return distinct end
  local keys = {}
  for k in pairs(counts) do keys[#keys + 1] = k end
  table.sort(keys)
  local flat = {}
  for _, k in ipairs(keys) do
    flat[#flat + 1] = k
    flat[#flat + 1] = counts[k]
  end
  return flat
end
