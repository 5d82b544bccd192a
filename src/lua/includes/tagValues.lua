-- typeTagValues(paneKey, indexKey, tp, now, only): the values at `now` of the window tags
-- of one event type (tp: the type's entry of the window plan, see windowPlan in
-- src/lua/scripts.ts), or of those whose names are keys of `only` (nil: all), as a list of
-- {name, value} in the plan's order: an integer for count and distinct, a decimal string
-- for sum/avg/min/max/last (false when the window has no value), a flat sorted {key, n, ...}
-- list for count_by. Also the type's newest event time (nil when unknown).
-- Count and count_by tags start from the write's running total and add/subtract the panes
-- between its window and now's (usually a few); the others, and any tag without a usable
-- total, merge the panes covering the window that the time index says hold state.

local function emptyValue(agg)
  if agg == 'count' or agg == 'distinct' then return 0 end
  if agg == 'sum' then return '0' end
  if agg == 'count_by' then return {} end
  return false
end

local function numericValue(agg, panes)
  local total = { c = 0 }
  for _, text in ipairs(panes) do mergeNumeric(total, parseNumeric(text)) end
  if agg == 'count' then return total.c end
  if not total.n or total.n == 0 then return agg == 'sum' and '0' or false end
  local value = total.s
  if agg == 'avg' then value = total.s / total.n
  elseif agg == 'min' then value = total.mn
  elseif agg == 'max' then value = total.mx
  elseif agg == 'last' then value = total.lv end
  -- 14 significant digits, as Lua's tostring: sums of money read 171.02, not 171.01999999999998.
  return string.format('%.14g', value)
end

-- {value = count} -> flat {key, n, ...} sorted by key, the `top` largest only (0: all).
local function countsValue(counts, top)
  local keys = {}
  for k, n in pairs(counts) do if n > 0 then keys[#keys + 1] = k end end
  if top > 0 and #keys > top then
    table.sort(keys, function(a, b) return counts[a] > counts[b] or (counts[a] == counts[b] and a < b) end)
    for i = #keys, top + 1, -1 do keys[i] = nil end
  end
  table.sort(keys)
  local flat = {}
  for _, k in ipairs(keys) do
    flat[#flat + 1] = k
    flat[#flat + 1] = counts[k]
  end
  return flat
end

-- distinct: values whose latest time (kept in the time index) is in [from, to), plus values
-- waiting in F<f> (`waiting`: seen only ahead of the write's now) whose time has come and
-- whose indexed latest time is before the window.
local function distinctValue(indexKey, field, from, to, waiting)
  local base = field * DISTINCT_BASE
  local n = redis.call('ZCOUNT', indexKey, base + from, '(' .. (base + to))
  if waiting then
    local parts, counted = {}, {}
    for x in string.gmatch(waiting, '[^\31]+') do parts[#parts + 1] = x end
    for j = 1, #parts, 2 do
      local value, ts = parts[j], tonumber(parts[j + 1])
      if ts >= from and ts < to and not counted[value] then
        counted[value] = true
        local indexed = tonumber(redis.call('ZSCORE', indexKey, 'v' .. field .. ':' .. value))
        if not indexed or indexed < base + from or indexed >= base + to then n = n + 1 end
      end
    end
  end
  return n
end

local function typeTagValues(paneKey, indexKey, tp, now, only)
  local tags, out = {}, {}
  for _, tag in ipairs(tp.tags) do
    if not only or only[tag.name] then tags[#tags + 1] = tag end
  end
  local fields = { 'T' }
  for _, f in ipairs(tp.distinct) do fields[#fields + 1] = 'F' .. f end
  local got = redis.call('HMGET', paneKey, unpack(fields))
  local meta = parseMeta(got[1])
  if not meta and not got[2] and redis.call('EXISTS', paneKey) == 0 then
    for _, tag in ipairs(tags) do out[#out + 1] = { tag.name, emptyValue(tag.agg) } end
    return out, nil
  end
  local waiting = {}
  for i, f in ipairs(tp.distinct) do waiting[f] = got[i + 1] or nil end
  local newest = meta and meta.newest or tonumber(redis.call('ZSCORE', indexKey, 'L'))
  -- Each tag's panes: from its total, or by the time index (read once for all such tags).
  local names, slot, jobs, earliest = {}, {}, {}, nil
  local function want(list)
    local slots = {}
    for _, name in ipairs(list) do
      if not slot[name] then
        names[#names + 1] = name
        slot[name] = #names
      end
      slots[#slots + 1] = slot[name]
    end
    return slots
  end
  for _, tag in ipairs(tags) do
    local from, to = windowRange(tag.window, tag.res, now)
    local job = { tag = tag, from = from, to = to }
    jobs[#jobs + 1] = job
    if tag.agg ~= 'distinct' then
      job.plan = totalPlan(meta, tag, from, to)
      local needsIndex = not job.plan or job.plan.span > SHORT_DIFF_MS
      local start = job.plan and math.min(from, windowRange(tag.window, tag.res, meta.at)) or from
      if needsIndex and (not earliest or start < earliest) then earliest = start end
    end
  end
  local act = earliest and activePanes(indexKey, earliest) or nil
  for _, job in ipairs(jobs) do
    local plan, tag = job.plan, job.tag
    if plan then
      local byIndex = plan.span > SHORT_DIFF_MS and act or nil
      job.base, job.adds, job.subs = plan.base, want(rangeNames(plan.adds, tag, byIndex, newest or math.huge)), want(rangeNames(plan.subs, tag, byIndex, newest or math.huge))
    elseif tag.agg ~= 'distinct' then
      job.adds, job.subs = want(coverNames(act, job.from, job.to, tag.levels, tag.prefix, newest or math.huge)), {}
    end
  end
  local panes = fetchFields(paneKey, names)
  for _, job in ipairs(jobs) do
    local tag, value = job.tag, nil
    if tag.agg == 'distinct' then
      value = distinctValue(indexKey, tag.field, job.from, job.to, waiting[tag.field])
    elseif tag.agg == 'count' then
      value = tonumber(job.base or 0)
      for _, s in ipairs(job.adds) do if panes[s] then value = value + paneCount(panes[s]) end end
      for _, s in ipairs(job.subs) do if panes[s] then value = value - paneCount(panes[s]) end end
    elseif tag.agg == 'count_by' then
      local counts = addValues({}, job.base, 1)
      for _, s in ipairs(job.adds) do addValues(counts, panes[s] or nil, 1) end
      for _, s in ipairs(job.subs) do addValues(counts, panes[s] or nil, -1) end
      value = countsValue(counts, tag.top)
    else
      local list = {}
      for _, s in ipairs(job.adds) do if panes[s] then list[#list + 1] = panes[s] end end
      value = numericValue(tag.agg, list)
    end
    out[#out + 1] = { tag.name, value }
  end
  return out, newest
end
