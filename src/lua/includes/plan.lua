-- decodePlan(bin): the window plan (what each event type's panes keep, and its tags) from
-- the binary form windowPlan in src/lua/windowPlan.ts writes, big-endian:
--   B types, I4 longest window of any type (s); per type: I2 length of its block, then B name length + name, I4 longest
--   window (s), B numeric (bit 1: numeric panes; bit 2: they keep the spread m2; bit 3: the first time and value), B numeric field, B numeric levels (mask: 1 = 1 s, 2 = 1 min,
--   4 = 1 h), B value fields + per field (B field, B levels, B length + a histogram's
--   edges ('' for a count_by field, 'P' for a percentile's log buckets), B a histogram's, percentile's or
--   list's source field, B list (0: none, 1: the k newest values, 2: the k oldest, 3: an approx_distinct
--   sketch's k smallest hashes; + 4: numeric values), I2 k), B distinct fields + per field B,
--   B tags + per tag: B name length + name, B aggregation (AGGREGATIONS index), B field
--   (0: none), I4 window (s), B resolution (RESOLUTIONS index), B levels, I4 top, B total
--   spec length + spec ('' when the kind keeps no running total).
-- Binary because the read decodes it on every call: cjson took ~18 µs for this plan, this ~3.
local AGGREGATIONS = { 'count', 'sum', 'avg', 'min', 'max', 'last', 'distinct', 'count_by', 'variance', 'stddev', 'first', 'last_k', 'first_k', 'approx_distinct' }
local RESOLUTIONS = { 1000, 60000, 3600000 }

local function levelList(mask)
  local out = {}
  if mask % 2 == 1 then out[#out + 1] = 1000 end
  if math.floor(mask / 2) % 2 == 1 then out[#out + 1] = 60000 end
  if mask >= 4 then out[#out + 1] = 3600000 end
  return out
end

-- One type's block at `pos` (after its length).
local function decodeType(bin, pos)
  local name, typeLongest, numeric, numericField, numericMask, nValues
  name, typeLongest, numeric, numericField, numericMask, nValues, pos = struct.unpack('>Bc0I4BBBB', bin, pos)
  local tp = { name = name, longest = typeLongest * 1000, numeric = numeric % 2 == 1, spread = math.floor(numeric / 2) % 2 == 1, first = numeric >= 4, numericField = numericField,
    numericLevels = levelList(numericMask), values = {}, distinct = {}, distinctFieldNames = {}, tags = {} }
  -- A count-only type's one-second panes are kept a minute to a field (SECONDS_FORM).
  tp.secondsForm = not tp.numeric and numericMask % 2 == 1
  for i = 1, nValues do
    local field, mask, edges, source, list, k
    field, mask, edges, source, list, k, pos = struct.unpack('>BBBc0BBI2', bin, pos)
    tp.values[i] = { field = field, levels = levelList(mask) }
    if list % 4 == 3 then
      -- An approx_distinct sketch: the k smallest hashes of field `source`'s values.
      tp.values[i].source, tp.values[i].k, tp.values[i].sketch = source, k, true
    elseif edges == 'P' then
      -- A percentile: the log bucket of the numeric field `source` is the value (percentileKey).
      tp.values[i].source, tp.values[i].percentile = source, true
    elseif list > 0 then
      -- A last_k / first_k list: the k newest (1) or oldest (2) values of field `source`.
      tp.values[i].source, tp.values[i].k = source, k
      tp.values[i].newest, tp.values[i].numeric = list % 4 == 1, list >= 4
    end
    if edges ~= '' and edges ~= 'P' then
      -- A histogram: the bucket of the numeric field `source` is the value (bucketOf).
      local e, labels = {}, {}
      for x in string.gmatch(edges, '[^,]+') do e[#e + 1] = x end
      labels[1] = '<' .. e[1]
      for j = 2, #e do labels[j] = '[' .. e[j - 1] .. ',' .. e[j] .. ')' end
      labels[#e + 1] = '>=' .. e[#e]
      for j = 1, #e do e[j] = tonumber(e[j]) end
      tp.values[i].source, tp.values[i].edges, tp.values[i].labels = source, e, labels
    end
  end
  local n
  n, pos = struct.unpack('>B', bin, pos)
  for i = 1, n do
    tp.distinct[i], pos = struct.unpack('>B', bin, pos)
    tp.distinctFieldNames[i] = 'F' .. tp.distinct[i]
  end
  n, pos = struct.unpack('>B', bin, pos)
  for i = 1, n do
    local tag, agg, field, window, res, mask, top, total
    tag, agg, field, window, res, mask, top, total, pos = struct.unpack('>Bc0BBI4BBI4Bc0', bin, pos)
    tp.tags[i] = { name = tag, agg = AGGREGATIONS[agg], field = field, window = window * 1000, res = RESOLUTIONS[res],
      levels = levelList(mask), mask = mask, prefix = (agg == 8 or agg >= 12) and tostring(field) or '', top = top, total = total }
  end
  -- A running total's twin: an earlier tag with a total over the same panes (the same
  -- window, resolution, levels and pane prefix: count and sum of a numeric type, say),
  -- whose corrections the read names once for both (readFast's nameCorrections).
  for i, tag in ipairs(tp.tags) do
    if tag.total ~= '' and tag.agg ~= 'distinct' then
      for j = 1, i - 1 do
        local o = tp.tags[j]
        if o.total ~= '' and o.agg ~= 'distinct' and o.window == tag.window and o.res == tag.res and o.mask == tag.mask and o.prefix == tag.prefix then
          tag.twin = j
          break
        end
      end
    end
  end
  -- How far back (s) the type's one-second panes are read (its longest window at one-second
  -- resolution, plus a second: TypePlan.secondsKept in windowPlan.ts); where that is shorter
  -- than its longest window, a write prunes them on their own (writeType's step 5).
  tp.secondsKept = 0
  for _, tag in ipairs(tp.tags) do
    if tag.res == 1000 and tag.window / 1000 + 1 > tp.secondsKept then tp.secondsKept = tag.window / 1000 + 1 end
  end
  tp.secondsPruned = tp.secondsKept > 0 and tp.secondsKept * 1000 < tp.longest
  -- A last_k / first_k tag reads its list's order from its value field.
  for _, tag in ipairs(tp.tags) do
    if tag.agg == 'last_k' or tag.agg == 'first_k' then
      for _, spec in ipairs(tp.values) do
        if spec.field == tag.field then tag.newest, tag.numeric = spec.newest, spec.numeric end
      end
    end
  end
  return tp
end

-- The plan's header; each type is decoded when first asked for (planType): a read decodes
-- only the types the user has.
local function decodePlan(bin)
  local nTypes, longest, pos = struct.unpack('>BI4', bin, 1)
  local plan = { bin = bin, count = nTypes, at = {}, types = {}, longest = longest * 1000 }
  for t = 1, nTypes do
    local length
    length, pos = struct.unpack('>I2', bin, pos)
    plan.at[t] = pos
    pos = pos + length
  end
  return plan
end

-- The name of plan type i, without decoding the rest of its block.
local function planTypeName(plan, i)
  return (struct.unpack('>Bc0', plan.bin, plan.at[i]))
end

local function planType(plan, i)
  local tp = plan.types[i]
  if not tp then
    tp = decodeType(plan.bin, plan.at[i])
    plan.types[i] = tp
  end
  return tp
end

-- Decoded plans kept between calls (the library lives as long as it is loaded): a process
-- sends the same plan on every call, so each type is decoded once per library load, not
-- per call. A few plans at most (one per tag config in use); past PLAN_CACHE_MAX a cache
-- starts again.
local PLAN_CACHE_MAX = 8
local function newPlanCache() return { plans = {}, size = 0 } end

-- Decodes `bin` and keeps it in `cache` under `key`.
local function keepPlan(cache, key, bin)
  if cache.size >= PLAN_CACHE_MAX then cache.plans, cache.size = {}, 0 end
  local plan = decodePlan(bin)
  cache.plans[key] = plan
  cache.size = cache.size + 1
  return plan
end

-- The decoded plan of `bin` (the write scripts send it whole).
local byBinary = newPlanCache()
local function cachedPlan(bin)
  return byBinary.plans[bin] or keepPlan(byBinary, bin, bin)
end

-- The decoded plan of id `id` (a read's: it sends the id alone, the binary `bin` only when
-- told this library load lacks it): decoded from `bin` when given and kept under `id`, else
-- the one kept; nil when neither (the read answers -1 and is sent again with the binary).
local byId = newPlanCache()
local function cachedPlanById(id, bin)
  local plan = byId.plans[id]
  if not plan and bin ~= '' then plan = keepPlan(byId, id, bin) end
  return plan
end
