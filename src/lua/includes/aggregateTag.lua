-- aggregateTag(zkey, vkey, agg, fieldIdx, fromMs, toMs): the value of one window tag over
-- the events of `zkey` (member event_id, score event time) with fromMs <= time <= toMs.
-- `vkey` maps event_id -> field values packed with "\31" in WINDOW_FIELDS order; fieldIdx
-- is the 1-based position of the aggregated field. Returns an integer (count, distinct),
-- a decimal string (sum: Lua numbers would be truncated to integers in the reply) or a
-- flat array {key1, n1, key2, n2, ...} sorted by key (count_by).
-- Tags over the same key and range share one fetch of the packed values (windowValues).
local windowValuesCache = {}

local function windowValues(zkey, vkey, fromMs, toMs)
  local cacheKey = zkey .. '\0' .. fromMs .. '\0' .. toMs
  local cached = windowValuesCache[cacheKey]
  if cached then return cached end
  local ids = rcall('ZRANGEBYSCORE', zkey, fromMs, toMs)
  local values = {}
  -- HMGET in chunks: unpack() of a long list would overflow Lua's C stack.
  for first = 1, #ids, 1000 do
    local packed = rcall('HMGET', vkey, unpack(ids, first, math.min(first + 999, #ids)))
    for i = 1, #packed do values[#values + 1] = packed[i] or '' end
  end
  windowValuesCache[cacheKey] = values
  return values
end

local function packedField(packed, idx)
  local start = 1
  for _ = 2, idx do
    local sep = string.find(packed, '\31', start, true)
    if not sep then return '' end
    start = sep + 1
  end
  local sep = string.find(packed, '\31', start, true)
  return string.sub(packed, start, sep and sep - 1 or -1)
end

local function aggregateTag(zkey, vkey, agg, fieldIdx, fromMs, toMs)
  if agg == 'count' then
    return rcall('ZCOUNT', zkey, fromMs, toMs)
  end
  local values = windowValues(zkey, vkey, fromMs, toMs)
  local sum, distinct, counts = 0, 0, {}
  for i = 1, #values do
    local value = packedField(values[i], fieldIdx)
    if agg == 'sum' then
      sum = sum + (tonumber(value) or 0)
    elseif value ~= '' then
      local n = counts[value]
      if n == nil then
        distinct = distinct + 1
        counts[value] = 1
      else
        counts[value] = n + 1
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
