--[[
  Window tag values at `now` (used by readProfile and, for triggers, by updateWindows):
  each tag's panes merged over the cover of its window (src/core/panes.ts), a distinct tag
  one ZCOUNT. Expects `rcall`, DISTINCT_BASE and the panes include in scope.

  tagValues(K, A, base, n, now): the n tags described by A[base..] (8 values each: name,
  index in K of its pane hash (its time index is the next key), aggregation, field index,
  window, resolution, levels, top) as a flat {name1, value1, ...} array: integer for count
  and distinct, decimal string for sum/avg/min/max/last (false when the window has no
  value), flat {key, n, ...} array for count_by, sorted by key.
]]
-- Minutes (sorted) and hours holding state from `from` on, in one time index; fetched once
-- per index for the earliest `from` of its tags (see the first pass below).
local function active(activeCache, indexKey, from)
  local cached = activeCache[indexKey]
  if cached then return cached end
  local list, minutes, hours, newest = {}, {}, {}, math.huge
  -- Pane members and L (distinct-value members score from DISTINCT_BASE up).
  local flat = rcall('ZRANGEBYSCORE', indexKey, math.floor(from / 60000) * 60000 - 3600000, '(' .. DISTINCT_BASE, 'WITHSCORES')
  for i = 1, #flat, 2 do
    local member = flat[i]
    local kind = string.sub(member, 1, 1)
    if member == 'L' then
      newest = tonumber(flat[i + 1])
    elseif kind == 'm' then
      local idx = tonumber(string.sub(member, 2))
      list[#list + 1] = idx
      minutes[idx] = true
    elseif kind == 'h' then
      hours[tonumber(string.sub(member, 2))] = true
    end
  end
  -- newest: the type's newest event time (math.huge when unknown: no pane is then taken as
  -- free of events after a window's end).
  cached = { list = list, minutes = minutes, hours = hours, newest = newest }
  activeCache[indexKey] = cached
  return cached
end

-- Is pane `idx` of `level` one that may hold state?
local function live(act, level, idx)
  if level == 1000 then return act.minutes[math.floor(idx / 60)] == true end
  if level == 60000 then return act.minutes[idx] == true end
  return act.hours[idx] == true
end

-- The cover by arithmetic (see coverPanes in src/core/panes.ts): fine panes at the
-- edges, coarse ones in the middle, skipping panes of minutes/hours without state.
local function coverByLevels(act, from, to, levels, fieldPrefix)
  local names = {}
  local function add(level, lo, hi)
    for t = lo, hi - level, level do
      local idx = t / level
      if live(act, level, idx) then names[#names + 1] = fieldPrefix .. PREFIX[level] .. idx end
    end
  end
  local lo, hi = from, to
  for i, level in ipairs(levels) do
    local nextLevel = levels[i + 1]
    local loUp = nextLevel and math.ceil(lo / nextLevel) * nextLevel or hi
    local hiDown = nextLevel and math.floor(hi / nextLevel) * nextLevel or hi
    if not nextLevel or loUp >= hiDown then
      add(level, lo, hi)
      return names
    end
    add(level, lo, loUp)
    add(level, hiDown, hi)
    lo, hi = loUp, hiDown
  end
  return names
end

-- The same cover, walking only the minutes that hold state: what a sparse user costs.
local function coverByActiveMinutes(inRange, from, to, levels, fieldPrefix, newest)
  local hasMinutes, hasHours = false, false
  for _, level in ipairs(levels) do
    if level == 60000 then hasMinutes = true elseif level == 3600000 then hasHours = true end
  end
  -- A pane that reaches past `to` still holds only events before it when the type's newest
  -- event is before `to` (the usual case at the window's leading edge).
  local endsBefore = function(paneEnd) return paneEnd <= to or newest < to end
  local names, hourDone = {}, {}
  for _, m in ipairs(inRange) do
    local ms, me = m * 60000, (m + 1) * 60000
    local h = math.floor(m / 60)
    if hasHours and h * 3600000 >= from and endsBefore((h + 1) * 3600000) then
      if not hourDone[h] then
        hourDone[h] = true
        names[#names + 1] = fieldPrefix .. 'h' .. h
      end
    elseif hasMinutes and ms >= from and endsBefore(me) then
      names[#names + 1] = fieldPrefix .. 'm' .. m
    else -- an edge minute, or a window without minute panes: its seconds in range
      for t = math.max(ms, from), math.min(me, to) - 1000, 1000 do names[#names + 1] = fieldPrefix .. 's' .. (t / 1000) end
    end
  end
  return names
end

-- The field names of the panes covering [from, to) that may hold state.
local function coverNames(act, from, to, levels, fieldPrefix)
  local first, last = math.floor(from / 60000), math.ceil(to / 60000) - 1
  local inRange = {}
  for _, m in ipairs(act.list) do
    if m >= first and m <= last then inRange[#inRange + 1] = m end
  end
  -- Few active minutes: walk them; many (a busy user): the arithmetic cover is shorter.
  if #inRange <= 64 then return coverByActiveMinutes(inRange, from, to, levels, fieldPrefix, act.newest) end
  return coverByLevels(act, from, to, levels, fieldPrefix)
end

-- HMGET in chunks: unpack() of a long list would overflow Lua's C stack.
local function fetch(hashKey, names)
  local out = {}
  for first = 1, #names, 1000 do
    local got = rcall('HMGET', hashKey, unpack(names, first, math.min(first + 999, #names)))
    for i = 1, #got do if got[i] then out[#out + 1] = got[i] end end
  end
  return out
end

local function numericTag(agg, panes)
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

local function valueTag(agg, panes, top)
  local counts = {}
  for _, text in ipairs(panes) do addValues(counts, text) end
  local keys = {}
  for k in pairs(counts) do keys[#keys + 1] = k end
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
-- waiting in F<f> (seen only ahead of the write's now) whose time has come and whose
-- indexed latest time is before the window.
local function distinctTag(hashKey, indexKey, field, from, to)
  local base = field * DISTINCT_BASE
  local n = rcall('ZCOUNT', indexKey, base + from, '(' .. (base + to))
  local waiting = rcall('HGET', hashKey, 'F' .. field)
  if waiting then
    local parts, counted = {}, {}
    for x in string.gmatch(waiting, '[^\31]+') do parts[#parts + 1] = x end
    for j = 1, #parts, 2 do
      local value, ts = parts[j], tonumber(parts[j + 1])
      if ts >= from and ts < to and not counted[value] then
        counted[value] = true
        local indexed = tonumber(rcall('ZSCORE', indexKey, 'v' .. field .. ':' .. value))
        if not indexed or indexed < base + from or indexed >= base + to then n = n + 1 end
      end
    end
  end
  return n
end

local function tagValues(K, A, base0, n, now)
  local tags, activeCache = {}, {}
  -- First pass: each tag's [from, to) and the earliest `from` per time index, so each index
  -- is read once for all its tags.
  local ranges, earliest = {}, {}
  for i = 0, n - 1 do
    local base = base0 + i * 8
    local window, resolution = tonumber(A[base + 4]), tonumber(A[base + 5])
    local pane = math.floor(now / resolution)
    local from, to = (pane - window / resolution + 1) * resolution, (pane + 1) * resolution
    ranges[i] = { from, to }
    local indexKey = K[tonumber(A[base + 1]) + 1]
    if not earliest[indexKey] or from < earliest[indexKey] then earliest[indexKey] = from end
  end
  for i = 0, n - 1 do
    local base = base0 + i * 8
    local keyIndex = tonumber(A[base + 1])
    local agg = A[base + 2]
    local field = tonumber(A[base + 3])
    local from, to = ranges[i][1], ranges[i][2]
    tags[#tags + 1] = A[base]
    if agg == 'distinct' then
      tags[#tags + 1] = distinctTag(K[keyIndex], K[keyIndex + 1], field, from, to)
    else
      local act = active(activeCache, K[keyIndex + 1], earliest[K[keyIndex + 1]])
      local valued = agg == 'count_by'
      local names = coverNames(act, from, to, numberList(A[base + 6]), valued and tostring(field) or '')
      local panes = fetch(K[keyIndex], names)
      tags[#tags + 1] = valued and valueTag(agg, panes, tonumber(A[base + 7])) or numericTag(agg, panes)
    end
  end
  return tags
end
