-- readFast(tp, paneKey, indexKey, now, out, only): the common read of one event type (tp: its
-- decoded plan entry, kept between calls by cachedPlanById): every tag with a running total
-- (count, count_by, histogram, percentile, sum, avg, variance, stddev) reads it where its
-- window overlaps now's, the corrections of all of them (and the count_by totals' own
-- fields) fetched in one HMGET; a distinct one ZCOUNT when no value waits ahead of now, any
-- tag whose window holds none of the type's events is empty, and the kinds without a total
-- (min, max, last, first, last_k, first_k, approx_distinct) merge the panes covering their
-- window, as the general path does. Appends name, value of each tag (of those whose names
-- are keys of `only`; nil: all) to the flat list `out` and returns the type's newest event
-- time; returns nil, having appended nothing, when a tag needs the general path
-- (typeTagValues).

-- Names every selected tag's total corrections into `names` (fastNames: S-form seconds as
-- fields there and their cuts in `cuts`, see addSecondsCut; a tag whose twin (plan.lua)
-- was named with the same offset d takes its twin's positions); per tag i,
-- slots[3i-2..3i] hold the position of its count_by total's own field (0: none), the first
-- and the last name to add, and ranges[i] the last to subtract; a tag whose corrections are
-- long gets slots[3i-1] = 0 (plannedTotal reads it). False when a total is unusable.
local function nameCorrections(tp, meta, now, only, names, slots, ranges, cuts)
  local newest = meta.newest
  for i, tag in ipairs(tp.tags) do
    if (not only or only[tag.name]) and tag.total ~= '' and tag.agg ~= 'distinct' then
      local spec = tag.total
      local from, to = windowRange(tag.window, tag.res, now)
      if newest >= from then
        if not meta.d[spec] then return false end
        local own = 0
        if ownField(spec) then
          names[#names + 1] = 'C' .. spec
          own = #names
        end
        -- A twin named in this call with the same pane offset has the same corrections.
        local twin = tag.twin
        if twin and slots[3 * twin - 1] and meta.d[tp.tags[twin].total] == meta.d[spec] then
          slots[3 * i - 2], slots[3 * i - 1], slots[3 * i] = own, slots[3 * twin - 1], slots[3 * twin]
          ranges[i] = ranges[twin]
        else
          local first, mid = fastNames(tag, meta, from, to, names, cuts)
          if first == false then return false end
          slots[3 * i - 2], slots[3 * i - 1], slots[3 * i] = own, first or 0, mid or 0
          ranges[i] = #names
        end
      end
    end
  end
  return true
end

local function readFast(tp, paneKey, indexKey, now, out, only)
  local text
  if #tp.distinct == 0 then
    text = redis.call('HGET', paneKey, 'T')
  else
    local got = redis.call('HMGET', paneKey, 'T', unpack(tp.distinctFieldNames))
    for i = 2, #got do if got[i] then return nil end end
    text = got[1]
  end
  local meta = parseMeta(text)
  if not meta then return nil end
  useSecondsForm(meta.sform)
  local newest = meta.newest
  local names, slots, ranges, cuts = {}, {}, {}, {}
  if not nameCorrections(tp, meta, now, only, names, slots, ranges, cuts) then return nil end
  local got = fetchFields(paneKey, names, cuts)
  local start = #out
  for i, tag in ipairs(tp.tags) do
    if not only or only[tag.name] then
      local agg = tag.agg
      local from, to = windowRange(tag.window, tag.res, now)
      local value
      if newest < from then -- every event is older than the window
        value = emptyValue(agg)
      elseif agg == 'distinct' then
        local base = tag.field * DISTINCT_BASE
        value = redis.call('ZCOUNT', indexKey, base + from, '(' .. (base + to))
      elseif tag.total ~= '' then -- count, count_by, sum, avg, variance, stddev
        local own, first = slots[3 * i - 2], slots[3 * i - 1]
        if own > 0 then meta.v[tag.total] = got[own] or nil end
        local base = meta.v[tag.total]
        if base and first > 0 then
          value = totalValue(agg, base, got, first, slots[3 * i], ranges[i])
        elseif base then
          value = plannedTotal(paneKey, indexKey, tag, meta, from, to, newest)
        end
        if value == nil then -- no usable total (a count_by total's field is missing)
          for j = #out, start + 1, -1 do out[j] = nil end
          return nil
        end
      elseif agg == 'last_k' or agg == 'first_k' then -- the best panes first, until k
        value = newestPaneList(paneKey, tag, newest, from, to) or listRead(paneKey, tag, (jobNames(indexKey, tag, nil, from, to, newest)))
      else -- no running total: merge the panes covering the window
        local list = {}
        for _, p in ipairs(fetchFields(paneKey, jobNames(indexKey, tag, nil, from, to, newest))) do
          if p then list[#list + 1] = p end
        end
        value = mergedValue(tag, list)
      end
      out[#out + 1] = tag.name
      out[#out + 1] = value
    end
  end
  return newest
end
