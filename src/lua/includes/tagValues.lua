-- The general read of one event type's tags (typeTagValues, at the end), for what the fast
-- path (readFast.lua) does not take: tags without a usable running total (an idle user,
-- state written before totals), sum/avg/min/max/last, distinct values waiting ahead of now;
-- and the trigger conditions' tags. Values: an integer for count and distinct, a decimal
-- string for sum/avg/min/max/last (false when the window has no value), signed value-pane
-- texts for count_by (signedTexts).
-- Count and count_by tags start from the write's running total and add/subtract the panes
-- between its window and now's (usually a few); the others, and any tag without a usable
-- total, merge the panes covering the window that the time index says hold state.

local function emptyValue(agg)
  if agg == 'count' or agg == 'distinct' then return 0 end
  if agg == 'last_k' or agg == 'first_k' or agg == 'approx_distinct' then return '' end
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
  elseif agg == 'last' then value = total.lv
  elseif agg == 'variance' or agg == 'stddev' then
    if not total.m2 then return false end -- panes without it (written before the tag existed)
    value = math.max(0, total.m2 / total.n)
    if agg == 'stddev' then value = math.sqrt(value) end
  elseif agg == 'first' then
    if not total.ft then return false end -- panes without it (written before the tag existed)
    value = total.fv
  end
  -- 14 significant digits, as Lua's tostring: sums of money read 171.02, not 171.01999999999998.
  return string.format('%.14g', value)
end

-- A last_k / first_k value from list entries {ts, v} of its window: the values of its k
-- newest / oldest, "v\31v\31..." ('' for none; the caller splits it).
local function listText(tag, entries, newest)
  local out = {}
  for _, e in ipairs(orderList(entries, newest, tag.numeric, tag.top)) do out[#out + 1] = e[2] end
  return table.concat(out, '\31')
end

-- A last_k / first_k value read from the panes covering its window (`names`), best panes
-- first, a few at a time: the panes cover disjoint times, so once those read hold k entries
-- no pane left can add one. A busy user's read fetches a pane or two, not the window's
-- every pane (it used to merge them all: ~900 µs for a hot user's 1 h last_10).
local LEVEL_OF = { s = 1000, m = 60000, h = 3600000 }
local function listRead(paneKey, tag, names)
  local plen, starts = #tag.prefix, {}
  for _, name in ipairs(names) do
    starts[name] = tonumber(string.sub(name, plen + 2)) * LEVEL_OF[string.sub(name, plen + 1, plen + 1)]
  end
  table.sort(names, function(a, b)
    if tag.newest then return starts[a] > starts[b] end
    return starts[a] < starts[b]
  end)
  local entries, i = {}, 1
  while i <= #names and #entries < tag.top do
    local got = redis.call('HMGET', paneKey, unpack(names, i, math.min(i + 3, #names)))
    for j = 1, #got do
      if #entries >= tag.top then break end
      if got[j] then parseList(got[j], entries) end
    end
    i = i + 4
  end
  return listText(tag, entries, tag.newest)
end

-- last_k's shortcut: when the pane of the type's newest event (at the tag's finest level)
-- lies in the window and holds k values, they are the window's k newest (no event is
-- newer), and a busy user's read is one HGET. Nil when it does not apply.
local function newestPaneList(paneKey, tag, newest, from, to)
  if tag.agg ~= 'last_k' then return nil end
  local level = tag.levels[1]
  local idx = math.floor(newest / level)
  if idx * level < from or (idx + 1) * level > to then return nil end
  local entries = parseList(redis.call('HGET', paneKey, tag.prefix .. PREFIX[level] .. idx) or nil)
  if #entries < tag.top then return nil end
  return listText(tag, entries, true)
end

-- The value of a tag without a running total (last_k and first_k aside: listRead) from the
-- panes covering its window. An approx_distinct tag's is their texts of hashes as a list,
-- not concatenated (a hot user's are kilobytes): the caller estimates from them, off the
-- Redis thread (triggers: sketchEstimate).
local function mergedValue(tag, panes)
  if tag.agg == 'approx_distinct' then return panes end
  return numericValue(tag.agg, panes)
end

-- The totals' corrections below come as one list of fetched pane texts `got` (false for a
-- missing pane) and a range in it: got[a..m] to add, got[m+1..b] to subtract (the panes of
-- a type's tags are fetched in one HMGET).

-- A count_by value as the reply carries it: {'+', text, '+', text, '-', text, ...}, value
-- pane texts ("v\31n\31...") to add or subtract, for the caller to merge, sort and cut
-- to `top` (src/profile/reader.ts): that work is the caller's CPU, not Redis's.
local function signedTexts(base, got, a, m, b)
  local out = {}
  if base and base ~= '' then out[1], out[2] = '+', base end
  for i = a, b do
    local text = got[i]
    if text and text ~= '' then
      out[#out + 1] = i <= m and '+' or '-'
      out[#out + 1] = text
    end
  end
  return out
end

-- A sum or avg tag's value from its running total `base` ("n,s") plus the numeric panes
-- got[a..m] minus got[m+1..b]: as numericValue gives it.
local function sumValue(agg, base, got, a, m, b)
  local n, s = sumTotal(base)
  for i = a, b do n, s = moveSum(n, s, got[i], i <= m and 1 or -1) end
  if n <= 0 then return agg == 'sum' and '0' or false end
  return string.format('%.14g', agg == 'avg' and s / n or s)
end

-- A variance or stddev tag's value from its running total `base` ("n,s,q") plus the
-- numeric panes got[a..m] minus got[m+1..b]: q / n - (s / n)², never below 0. The total
-- moves by adding and subtracting panes, so q carries rounding of about 1e-16 of the
-- squares it has seen: a window of equal values (one purchase, say) would read the square
-- root of that rounding (~1e-5 for amounts of hundreds) where the exact answer is 0. One
-- value, or a difference within 1e-12 of q / n (the total's precision), reads 0.
local function spreadValue(agg, base, got, a, m, b)
  local n, s, q = spreadTotal(base)
  for i = a, b do n, s, q = moveSpread(n, s, q, got[i], i <= m and 1 or -1) end
  if n <= 0 then return false end
  local mean = s / n
  local value = q / n - mean * mean
  if n == 1 or value <= q / n * 1e-12 then value = 0 end
  return string.format('%.14g', agg == 'stddev' and math.sqrt(value) or value)
end

-- A tag's value from its running total `base` (nil: none; count, count_by, sum, avg,
-- variance, stddev) plus the pane texts got[a..m] minus got[m+1..b].
local function totalValue(agg, base, got, a, m, b)
  if agg == 'count_by' then return signedTexts(base, got, a, m, b) end
  if agg == 'variance' or agg == 'stddev' then return spreadValue(agg, base, got, a, m, b) end
  if agg == 'sum' or agg == 'avg' then return sumValue(agg, base, got, a, m, b) end
  local n = tonumber(base or 0)
  for i = a, b do
    local p = got[i]
    if p then
      if i <= m then n = n + paneCount(p) else n = n - paneCount(p) end
    end
  end
  return n
end

-- The panes `addNames` then `subNames` in one HMGET: their texts (as totalValue takes them),
-- the position of the last to add and of the last. (addNames is extended.)
local function fetchCorrections(paneKey, addNames, subNames)
  local m = #addNames
  for _, n in ipairs(subNames) do addNames[#addNames + 1] = n end
  return fetchFields(paneKey, addNames), m, #addNames
end

-- The value of a tag with a running total over [from, to) the slow way (totalPlan's
-- corrections: named through the time index when long): nil when it has no usable total.
local function plannedTotal(paneKey, indexKey, tag, meta, from, to, newest)
  local plan = totalPlan(meta, tag, from, to, meta.oldest, newest, true)
  if not plan then return nil end
  local got, m, last = fetchCorrections(paneKey, jobNames(indexKey, tag, plan, from, to, newest, true))
  return totalValue(tag.agg, plan.base, got, 1, m, last)
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

-- Appends name, value of each tag of `jobs` to the flat list `out`; panes are fetched per
-- tag (usually none or a handful: the totals' corrections).
local function jobValues(paneKey, indexKey, jobs, newest, waiting, out)
  for _, job in ipairs(jobs) do
    local tag, value = job.tag, nil
    if newest < job.from then -- every event is older than the window
      value = emptyValue(tag.agg)
    elseif tag.agg == 'distinct' then
      value = distinctValue(indexKey, tag.field, job.from, job.to, waiting[tag.field])
    else
      value = newestPaneList(paneKey, tag, newest, job.from, job.to)
    end
    if value == nil then
      local plan = job.plan
      local addNames, subNames = jobNames(indexKey, tag, plan, job.from, job.to, newest)
      if tag.agg == 'last_k' or tag.agg == 'first_k' then
        value = listRead(paneKey, tag, addNames)
      else
        local got, m, last = fetchCorrections(paneKey, addNames, subNames)
        if tag.agg == 'count' or tag.agg == 'count_by' or (plan and tag.total ~= '') then
          value = totalValue(tag.agg, plan and plan.base or nil, got, 1, m, last)
        else
          local list = {}
          for i = 1, m do if got[i] then list[#list + 1] = got[i] end end
          value = mergedValue(tag, list)
        end
      end
    end
    out[#out + 1] = tag.name
    out[#out + 1] = value
  end
end

-- Appends to the flat list `out` name, value of each tag of one event type (tp: its plan
-- entry) at `now`, or only of those whose names are keys of `only` (nil: all). Returns the
-- type's newest event time (nil when unknown), or false when the type has no state at all
-- (then nothing is appended unless `fill`: each tag's empty value).
local function typeTagValues(paneKey, indexKey, tp, now, only, out, fill)
  local got = redis.call('HMGET', paneKey, 'T', unpack(tp.distinctFieldNames))
  local meta = parseMeta(got[1] or nil)
  useSecondsForm(meta and meta.sform)
  if not meta and not got[2] and redis.call('EXISTS', paneKey) == 0 then
    if fill then
      for _, tag in ipairs(tp.tags) do
        if not only or only[tag.name] then
          out[#out + 1] = tag.name
          out[#out + 1] = emptyValue(tag.agg)
        end
      end
    end
    return false
  end
  local waiting = {}
  for i, f in ipairs(tp.distinct) do waiting[f] = got[i + 1] or nil end
  local newest = meta and meta.newest or tonumber(redis.call('ZSCORE', indexKey, 'L'))
  -- Each tag's window, and its total's correction.
  local jobs = {}
  for _, tag in ipairs(tp.tags) do
    if not only or only[tag.name] then
      local from, to = windowRange(tag.window, tag.res, now)
      local job = { tag = tag, from = from, to = to }
      jobs[#jobs + 1] = job
      if tag.agg == 'count_by' then loadOwnField(paneKey, meta, tag.total) end
      if tag.agg ~= 'distinct' then job.plan = totalPlan(meta, tag, from, to, meta and meta.oldest, newest, true) end
    end
  end
  jobValues(paneKey, indexKey, jobs, newest or math.huge, waiting, out)
  return newest
end
