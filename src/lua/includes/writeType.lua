-- writeType(paneKey, indexKey, tp, now, events): folds `events` ({ts, fp, packed}, in
-- stream order) of one user and one event type (tp: the type's entry of the window plan)
-- into the type's panes, running totals, dedup buckets and time index; prunes what left
-- the type's longest window (only when the meta says something is that old) and moves the
-- keys' expiry only when its step moves (keyExpiry). Returns the number of events added and the
-- type's newest event time before and after (nil when unknown).
-- Redis calls for a call that adds events and prunes nothing: HMGET (meta, buckets), HMGET
-- (panes to update, panes between the totals' old and new ranges), HSET, ZADD; a narrow
-- ZRANGEBYSCORE for a total that moves over a long gap, an HGET of a count_by total that
-- moves (once a minute); PEXPIRE GT of both keys once a keyExpiry step at most. Cost: O(events +
-- panes touched + bucket bytes): a bucket holds at most 128 entries before it splits (see
-- dedup.lua), so a hot user's call moves N / 2,048 entries (N: the events in the window)
-- per sub-bucket it touches, not N / 256.

-- A write prunes once the oldest pane member is this far (ms) past the type's longest
-- window, not a minute past it: a user with events every minute, whose prune would
-- otherwise be due on about every minute's first write, has it once every 10 minutes
-- (a prune reads the time index and deletes ~60 fields a minute pruned; when only this
-- script pruned, pruning every minute sent 32 % of the Zipf bench's second-hour users
-- here; BENCHMARKS.md). The panes kept meanwhile are older than every window: no read
-- names them. The consumer's fold (typeFold.ts, PRUNE_SLACK_MS) prunes by the same rule.
local PRUNE_SLACK = 600000

-- Counts one new event e ({ts, packed}) into the deltas `d` of the call: numeric panes are
-- {c, n, s, ...} for a type with a numeric tag, else a count.
local function foldEvent(d, tp, e, now)
  local ts, packed = e.ts, e.packed
  d.added = d.added + 1
  if not d.newest or ts > d.newest then d.newest = ts end
  local minute, hour = math.floor(ts / 60000), math.floor(ts / 3600000)
  d.members['m' .. minute] = minute * 60000
  d.members['h' .. hour] = (hour + 1) * 3600000 - 60000
  d.events[#d.events + 1] = e
  local v = tp.numeric and tonumber(packedField(packed, tp.numericField)) or nil
  for _, level in ipairs(tp.numericLevels) do
    local name = PREFIX[level] .. math.floor(ts / level)
    if tp.numeric then
      local p = d.numeric[name] or { c = 0 }
      d.numeric[name] = p
      p.c = p.c + 1
      if v then mergeNumeric(p, { c = 0, n = 1, s = v, mn = v, mx = v, lt = ts, lv = v, m2 = tp.spread and 0 or nil, ft = tp.first and ts or nil, fv = tp.first and v or nil }) end
    else
      d.numeric[name] = (d.numeric[name] or 0) + 1
    end
  end
  for _, f in ipairs(tp.distinct) do
    local value = packedField(packed, f)
    if value ~= '' then
      if ts <= now then
        local member, score = 'v' .. f .. ':' .. value, f * DISTINCT_BASE + ts
        if not d.members[member] or score > d.members[member] then d.members[member] = score end
      else
        d.future[#d.future + 1] = { f, value, ts }
      end
    end
  end
  for _, spec in ipairs(tp.values) do
    local value
    if spec.k then
      -- A last_k / first_k list: the event goes into its panes' lists (d.lists), not counts;
      -- an approx_distinct sketch: its value's hash does.
      local v = packedField(packed, spec.source)
      if v ~= '' then
        local entry = spec.sketch and string.sub(redis.sha1hex(v), 1, 12) or { ts, v }
        for _, level in ipairs(spec.levels) do
          local name = spec.field .. PREFIX[level] .. math.floor(ts / level)
          local l = d.lists[name] or { spec = spec, entries = {} }
          d.lists[name] = l
          l.entries[#l.entries + 1] = entry
        end
      end
      value = ''
    elseif spec.edges then
      local x = tonumber(packedField(packed, spec.source))
      value = x and bucketOf(spec, x) or ''
    elseif spec.percentile then
      local x = tonumber(packedField(packed, spec.source))
      value = x and percentileKey(x) or ''
    else
      value = packedField(packed, spec.field)
    end
    if value ~= '' then
      -- The event's key per value field, for the totals this call moves (movedTotal).
      e.keys = e.keys or {}
      e.keys[spec.field] = value
      for _, level in ipairs(spec.levels) do
        local name = spec.field .. PREFIX[level] .. math.floor(ts / level)
        local counts = d.values[name] or {}
        d.values[name] = counts
        counts[value] = (counts[value] or 0) + 1
      end
    end
  end
end

-- A running total moved to [from, to): the old total plus the panes that entered, minus
-- those that left (as they stood before this call), plus this call's events in the window.
-- A running total moved to the completed panes [from, done) of now's window (as totals.lua
-- says): the old total plus the panes that entered, minus those that left (as they stood
-- before this call), plus this call's events in that range; "<pane>:<value>".
local function movedTotal(job, panes, d)
  local tag = job.tag
  if tag.agg == 'sum' or tag.agg == 'avg' then
    local n, s = sumTotal(job.base)
    for _, name in ipairs(job.adds) do n, s = moveSum(n, s, panes[name], 1) end
    for _, name in ipairs(job.subs) do n, s = moveSum(n, s, panes[name], -1) end
    for _, e in ipairs(d.events) do
      local v = e.ts >= job.from and e.ts < job.done and tonumber(packedField(e.packed, tag.field)) or nil
      if v then n, s = n + 1, s + v end
    end
    return formatSumTotal(n, s)
  end
  if tag.agg == 'variance' or tag.agg == 'stddev' then
    local n, s, q = spreadTotal(job.base)
    for _, name in ipairs(job.adds) do n, s, q = moveSpread(n, s, q, panes[name], 1) end
    for _, name in ipairs(job.subs) do n, s, q = moveSpread(n, s, q, panes[name], -1) end
    for _, e in ipairs(d.events) do
      local v = e.ts >= job.from and e.ts < job.done and tonumber(packedField(e.packed, tag.field)) or nil
      if v then n, s, q = n + 1, s + v, q + v * v end
    end
    return formatSpreadTotal(n, s, q)
  end
  if tag.agg == 'count' then
    local n = tonumber(job.base or 0)
    for _, s in ipairs(job.adds) do if panes[s] then n = n + paneCount(panes[s]) end end
    for _, s in ipairs(job.subs) do if panes[s] then n = n - paneCount(panes[s]) end end
    for _, e in ipairs(d.events) do if e.ts >= job.from and e.ts < job.done then n = n + 1 end end
    return string.format('%d', n)
  end
  local counts = addValues({}, job.base, 1)
  for _, s in ipairs(job.adds) do addValues(counts, panes[s] or nil, 1) end
  for _, s in ipairs(job.subs) do addValues(counts, panes[s] or nil, -1) end
  for _, e in ipairs(d.events) do
    local value = e.ts >= job.from and e.ts < job.done and e.keys and e.keys[tag.field] or ''
    if value ~= '' then counts[value] = (counts[value] or 0) + 1 end
  end
  return formatValues(counts)
end

local function writeType(paneKey, indexKey, tp, now, events)
  useSecondsForm(false)
  local cutoff = now - tp.longest
  local cutoffMinute = math.floor(cutoff / 60000)
  -- 1. The meta, the waiting distinct values and the dedup buckets of the events.
  local fields, slot = { 'T' }, {}
  local function want(name)
    if not slot[name] then
      fields[#fields + 1] = name
      slot[name] = #fields
    end
    return slot[name]
  end
  local versionSlot = want('V') -- the write counter (see applyFolds.lua)
  for _, f in ipairs(tp.distinct) do want('F' .. f) end
  for _, e in ipairs(events) do if e.ts >= cutoff then want(bucketName(e.fp)) end end
  local got = fetchFields(paneKey, fields)
  local meta = parseMeta(got[1] or nil)
  -- A count-only type keeps its one-second panes a minute to a field (SECONDS_FORM): from
  -- its first write on, or, for state written before, once this write has moved them.
  local secondsForm = tp.secondsForm and (meta ~= nil or redis.call('EXISTS', paneKey) == 0)
  if secondsForm and meta and not meta.sform then meta = parseMeta(convertToSecondsForm(paneKey, indexKey, got[1])) end
  useSecondsForm(secondsForm)
  -- 2. Dedup, and the call's deltas.
  local d = { added = 0, members = {}, events = {}, numeric = {}, values = {}, lists = {}, future = {} }
  local firstSlot = slot
  local dedup = newDedup(paneKey, function(name) return got[firstSlot[name]] or false end, events, cutoff)
  for _, e in ipairs(events) do
    if e.ts >= cutoff and dedupEvent(dedup, e.fp, e.ts) then foldEvent(d, tp, e, now) end
  end
  -- State written before the meta has L in its index; a new type has nothing.
  local oldNewest = meta and meta.newest or tonumber(redis.call('ZSCORE', indexKey, 'L'))
  local legacy = not meta and oldNewest ~= nil
  if d.added == 0 then return 0, oldNewest, oldNewest end
  local waiting = {}
  for _, f in ipairs(tp.distinct) do waiting[f] = got[slot['F' .. f]] end
  -- 3. The panes to update and those between the totals' old and new windows, in one HMGET.
  fields, slot = {}, {}
  local function wantAll(list)
    local slots = {}
    for _, name in ipairs(list) do slots[#slots + 1] = want(name) end
    return slots
  end
  -- (In the S form, a second's count is in its minute's field, fetched whole.)
  local secondsOf = {}
  for name in pairs(d.numeric) do
    if secondsForm and string.byte(name, 1) == 115 then
      local sec = tonumber(string.sub(name, 2))
      local field = secondsFieldOfMinute(math.floor(sec / 60))
      secondsOf[field] = secondsOf[field] or {}
      secondsOf[field][sec % 60] = d.numeric[name]
      want(field)
    else
      want(name)
    end
  end
  for name in pairs(d.values) do want(name) end
  for name in pairs(d.lists) do want(name) end
  local jobs, specs = {}, {}
  for _, tag in ipairs(tp.tags) do
    if tag.total ~= '' and not specs[tag.total] then
      specs[tag.total] = true
      local from, to = windowRange(tag.window, tag.res, now)
      local job = { tag = tag, from = from, done = to - tag.res, p = math.floor(now / tag.res) }
      local late = false -- an event of this call in the completed panes
      for _, e in ipairs(d.events) do if e.ts >= from and e.ts < job.done then late = true end end
      local kept = meta and meta.v[tag.total]
      if kept and not late and math.floor(meta.newest / tag.res) - meta.d[tag.total] == job.p then
        job.keep = kept -- same pane, nothing new in its range: as it is
      end
      if not job.keep then loadOwnField(paneKey, meta, tag.total) end
      local plan = not job.keep and totalPlan(meta, tag, from, to, meta and meta.oldest, oldNewest, false)
      job.base = plan and plan.base
      if job.keep then
        job.adds, job.subs = {}, {}
      elseif plan or (meta or legacy) and (oldNewest or math.huge) >= from then
        local addNames, subNames = jobNames(indexKey, tag, plan, from, job.done, oldNewest or math.huge)
        job.adds, job.subs = wantAll(addNames), wantAll(subNames)
      else -- a new type, or every event older than the window: the total is this call's events
        job.adds, job.subs = {}, {}
      end
      jobs[#jobs + 1] = job
    end
  end
  local panes = fetchFields(paneKey, fields)
  -- 4. New panes and totals.
  local newest = math.max(oldNewest or d.newest, d.newest)
  local totals = {}
  for _, job in ipairs(jobs) do totals[job.tag.total] = { job.p, job.keep or movedTotal(job, panes, d), job.tag.res } end
  local writes = {}
  local function put(name, value)
    writes[#writes + 1] = name
    writes[#writes + 1] = value
  end
  for field, deltas in pairs(secondsOf) do
    local counts = parseSeconds(panes[slot[field]])
    for sec, delta in pairs(deltas) do counts[sec] = (counts[sec] or 0) + delta end
    put(field, formatSeconds(counts))
  end
  for name, delta in pairs(d.numeric) do
    local old = panes[slot[name]]
    if tp.numeric then
      local p = old and parseNumeric(old)
      put(name, formatNumeric(p and mergeNumeric(p, delta) or delta))
    elseif not secondsForm or string.byte(name, 1) ~= 115 then -- (the S form's seconds: above)
      put(name, (old and tonumber(old) or 0) + delta)
    end
  end
  for name, counts in pairs(d.values) do put(name, formatValues(addValues(counts, panes[slot[name]] or nil, 1))) end
  for name, l in pairs(d.lists) do
    if l.spec.sketch then
      put(name, mergeSketch(panes[slot[name]] or nil, l.entries, l.spec.k))
    else
      local entries = parseList(panes[slot[name]] or nil, l.entries)
      put(name, formatList(orderList(entries, l.spec.newest, l.spec.numeric, l.spec.k)))
    end
  end
  -- 5. Prune only when the meta says a pane member is PRUNE_SLACK old past the window (or
  -- does not know): then every member ended a minute before the cutoff goes.
  local old = {}
  if legacy or (meta and meta.oldest <= cutoff - PRUNE_SLACK) then -- (oldest: to the minute, never above)
    old = redis.call('ZRANGEBYSCORE', indexKey, '-inf', cutoff - 60000)
  end
  -- A type whose one-second panes are read over less than its longest window (clicks_5m
  -- beside clicks_24h) prunes them on their own, by the same slack, rather than keeping
  -- them as long as its minutes: those of the minutes that ended a minute before its
  -- seconds tags' longest window (tp.secondsKept), from the lowest minute that may hold any
  -- (T's third number; state without it: the oldest pane member). `seconds`: that lowest
  -- minute after this call (its events' minutes hold some).
  local seconds, secondsOld = nil, {}
  if tp.secondsPruned then
    seconds = meta and (meta.seconds or meta.oldest) or (legacy and cutoff - cutoff % 60000) or nil
    local upTo = now - tp.secondsKept * 1000 - 60000
    if seconds and seconds <= upTo - PRUNE_SLACK then
      secondsOld = redis.call('ZRANGEBYSCORE', indexKey, seconds, upTo)
      seconds = upTo - upTo % 60000 + 60000
    end
    for _, e in ipairs(d.events) do
      local m = e.ts - e.ts % 60000
      if not seconds or m < seconds then seconds = m end
    end
  end
  local drop = {}
  for f, text in pairs(placeDistinct(tp.distinct, waiting, d, now, cutoff, #old > 0)) do
    if text == '' then drop[#drop + 1] = 'F' .. f else put('F' .. f, text) end
  end
  splitFull(dedup)
  if #old > 0 then -- sweep one bucket (or its sub-buckets) a second
    local bucket = 'd' .. (math.floor(now / 1000) % 256)
    local text = dedup.buckets[bucket] or redis.call('HGET', paneKey, bucket)
    if text == SPLIT_MARK then
      local names = {}
      for k = 0, SPLIT_WAYS - 1 do names[k + 1] = bucket .. '.' .. k end
      for i, b in ipairs(fetchFields(paneKey, names)) do
        b = dedup.buckets[names[i]] or b
        if b then dedup.buckets[names[i]] = pruneBucket(b, cutoffMinute, 8) end
      end
    elseif text then
      dedup.buckets[bucket] = pruneBucket(text, cutoffMinute, 10)
    end
  end
  for name, text in pairs(dedup.buckets) do
    local b = text == SPLIT_MARK and text or dropLeading(text, cutoffMinute, entrySize(name))
    if b == '' then drop[#drop + 1] = name else put(name, b) end
  end
  -- 6. Expiry (keyExpiry): until the newest event leaves the type's longest window, plus
  -- a minute, rounded up to a step of 2^k minutes (1 for an hour's window, 16 for a day's):
  -- it moves when that value moves (GT: never back). A new type sets it outright; state written
  -- before the meta keeps a longer TTL.
  local expiry, ttlMode = keyExpiry(newest, tp.longest), nil
  if meta then
    if keyExpiry(meta.newest, tp.longest) < expiry then ttlMode = 'GT' end
  else
    ttlMode = 'SET'
    if legacy then
      local pttl = redis.call('PTTL', paneKey)
      if pttl > 0 and now + pttl > expiry then expiry = now + pttl end
    end
  end
  local oldest = meta and meta.oldest
  for _, score in pairs(d.members) do if score < DISTINCT_BASE and (not oldest or score < oldest) then oldest = score end end
  put('T', formatMeta(newest, oldest, totals, seconds, secondsForm))
  for _, job in ipairs(jobs) do
    if not job.keep and ownField(job.tag.total) then put('C' .. job.tag.total, totals[job.tag.total][2]) end
  end
  put('V', string.format('%d', (tonumber(got[versionSlot]) or 0) + 1))
  for first = 1, #writes, 1000 do redis.call('HSET', paneKey, unpack(writes, first, math.min(first + 999, #writes))) end
  if #drop > 0 then redis.call('HDEL', paneKey, unpack(drop)) end
  if #secondsOld > 0 then pruneSeconds(paneKey, tp, secondsOld) end
  indexMembers(indexKey, d.members)
  if #old > 0 or legacy then
    if #old > 0 then prunePanes(paneKey, indexKey, tp, old, cutoff) end
    -- The lowest pane member left is what the next prune check compares.
    local lowest = redis.call('ZRANGE', indexKey, 0, 0, 'WITHSCORES')
    local score = tonumber(lowest[2])
    if score and score < DISTINCT_BASE then oldest = score end
    redis.call('HSET', paneKey, 'T', formatMeta(newest, oldest, totals, seconds, secondsForm))
  end
  if ttlMode == 'GT' then
    redis.call('PEXPIRE', paneKey, expiry - now, 'GT')
    redis.call('PEXPIRE', indexKey, expiry - now, 'GT')
  elseif ttlMode then
    redis.call('PEXPIRE', paneKey, expiry - now)
    redis.call('PEXPIRE', indexKey, expiry - now)
  end
  return d.added, oldNewest, newest
end
