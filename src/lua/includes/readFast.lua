-- readFast(tp, paneKey, indexKey, now, out, only): the common read of one event type (tp: its
-- decoded plan entry, kept between calls by cachedPlan): every tag with a running total
-- (count, count_by, histogram, percentile, sum, avg, variance, stddev) reads it where its window overlaps now's, a
-- distinct one ZCOUNT when no value waits ahead of now, any tag whose window holds none of
-- the type's events is empty, and the kinds without a total (min, max, last, first,
-- last_k, first_k, approx_distinct) merge the panes covering their window, as the general path does. Appends name, value of
-- each tag (of those whose names are keys of `only`; nil: all) to the flat list `out` and
-- returns the type's newest event time; returns nil,
-- having appended nothing, when a tag needs the general path (typeTagValues).
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
  local newest, oldest = meta.newest, meta.oldest
  local start = #out
  for _, tag in ipairs(tp.tags) do
    if not only or only[tag.name] then
      local agg = tag.agg
      local from, to = windowRange(tag.window, tag.res, now)
      local value
      if newest < from then -- every event is older than the window
        value = emptyValue(agg)
      elseif agg == 'distinct' then
        local base = tag.field * DISTINCT_BASE
        value = redis.call('ZCOUNT', indexKey, base + from, '(' .. (base + to))
      elseif tag.total ~= '' then -- count, count_by, sum, avg
        if agg == 'count_by' then loadOwnField(paneKey, meta, tag.total) end
        local plan = totalPlan(meta, tag, from, to, oldest, newest, true)
        if not plan then
          for i = #out, start + 1, -1 do out[i] = nil end
          return nil
        end
        local addNames, subNames = jobNames(indexKey, tag, plan, from, to, newest)
        value = totalValue(agg, plan.base, fetchFields(paneKey, addNames), fetchFields(paneKey, subNames))
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
