-- The running totals of a pane hash, field T, kept short (it is per user and type):
-- "<newest>,<k>[,<j>][S]" then per running total "\30<spec>=<d>:<value>". newest: the type's newest
-- event time; k: minutes from the lowest pane member of the time index (nothing older is
-- left to prune) to newest's minute; j (only for a type whose one-second panes are read over
-- less than its longest window, e.g. clicks_5m beside clicks_24h): minutes from the lowest
-- minute that may still hold one-second panes to newest's minute (none: from k's); S: the
-- type's one-second panes are kept a minute to a field (SECONDS_FORM in panes.lua). A total
-- is the value of a count (an integer) or
-- count_by ("v\31n\31...") tag over the completed panes of its window when now's pane was
-- p = floor(newest / r) - d (r: the tag's resolution): the W / r - 1 panes before pane p.
-- A write moves it only when its pane is no longer p (adding the panes that entered,
-- subtracting those that left) or an event lands in those completed panes; events of the
-- current pane (the usual case) leave it as it is. A read at `now` takes the total,
-- corrects it by the panes between its range and now's (usually none or a few), and adds
-- now's own pane. A count_by total (spec starting with its field's digit) keeps its value
-- in a field of its own, C<spec>, so T stays small however many values it counts: it is
-- read only when used and written only when it moves. The keys' expiry follows from
-- newest (see writeType).

-- A sum/avg total's text "n,s" (the number of values and their sum) -> n, s (0, 0 for none).
local function sumTotal(text)
  if not text or text == '' then return 0, 0 end
  local n, s = string.match(text, '^([^,]*),(.*)$')
  return tonumber(n) or 0, tonumber(s) or 0
end

-- n, s moved by a numeric pane's text (nil or false: no pane) with `sign` (1 or -1). Only
-- the pane's second and third numbers (n, s) are read: parseNumeric's table of ten cost a
-- typical read ~3 % more.
local function moveSum(n, s, text, sign)
  if not text then return n, s end
  local pn, ps = string.match(text, '^[^,]*,([^,]*),([^,]*)')
  pn = tonumber(pn)
  if pn and pn > 0 then return n + sign * pn, s + sign * tonumber(ps) end
  return n, s
end

-- n, s -> a sum/avg total's text; no values left is 0 exactly, whatever rounding left in s.
local function formatSumTotal(n, s)
  if n <= 0 then return '0,0' end
  return string.format('%d,%.17g', n, s)
end

-- A variance/stddev total's text "n,s,q" (q: the sum of squares) -> n, s, q (0s for none).
local function spreadTotal(text)
  if not text or text == '' then return 0, 0, 0 end
  local n, s, q = string.match(text, '^([^,]*),([^,]*),(.*)$')
  return tonumber(n) or 0, tonumber(s) or 0, tonumber(q) or 0
end

-- n, s, q moved by a numeric pane's text (nil or false: no pane) with `sign` (1 or -1): the
-- pane's sum of squares is its m2 plus s² / n.
local function moveSpread(n, s, q, text, sign)
  local p = text and parseNumeric(text)
  if p and p.n and p.n > 0 then return n + sign * p.n, s + sign * p.s, q + sign * ((p.m2 or 0) + p.s * p.s / p.n) end
  return n, s, q
end

-- n, s, q -> a variance/stddev total's text; no values left is 0 exactly.
local function formatSpreadTotal(n, s, q)
  if n <= 0 then return '0,0,0' end
  return string.format('%d,%.17g,%.17g', n, s, q)
end

-- True for the spec of a count_by total (its value lives in field C<spec>).
local function ownField(spec)
  local b = string.byte(spec, 1)
  return b >= 48 and b <= 57
end

-- {newest, oldest, seconds (the start of the lowest minute that may hold one-second panes,
-- when T says), sform (the one-second panes are a minute to a field: the header ends with
-- S), d = {spec = d}, v = {spec = value text ('' for a count_by total: see loadOwnField)}},
-- or nil.
local function parseMeta(text)
  if not text then return nil end
  local newest, k, j, form = string.match(text, '^(%d+),(%-?%d+),?(%-?%d*)(S?)')
  if not newest then return nil end
  newest = tonumber(newest)
  local minute = newest - newest % 60000
  local meta = { newest = newest, oldest = minute - tonumber(k) * 60000, d = {}, v = {}, sform = form == 'S' }
  if j ~= '' then meta.seconds = minute - tonumber(j) * 60000 end
  -- (The totals follow the header; it holds no \30, so matching the whole text finds them.)
  for spec, d, value in string.gmatch(text, '\30([^=\30]+)=(%-?%d+):([^\30]*)') do
    meta.d[spec] = tonumber(d)
    meta.v[spec] = value
  end
  return meta
end

-- T's text for newest, oldest, seconds (nil: not kept) and totals {spec = {p, value text,
-- res}} (a count_by total's value is left out: it is in C<spec>); with secondsForm, the
-- header ends with S (see SECONDS_FORM).
local function formatMeta(newest, oldest, totals, seconds, secondsForm)
  local head = string.format('%d,%d', newest, math.floor(newest / 60000) - math.floor(oldest / 60000))
  if seconds then head = head .. string.format(',%d', math.floor(newest / 60000) - math.floor(seconds / 60000)) end
  if secondsForm then head = head .. 'S' end
  local parts = { head }
  for spec, t in pairs(totals) do
    parts[#parts + 1] = spec .. '=' .. string.format('%d', math.floor(newest / t[3]) - t[1]) .. ':' .. (ownField(spec) and '' or t[2])
  end
  return table.concat(parts, '\30')
end

-- Puts a count_by total's value (field C<spec>) into meta.v, when the meta has the total.
local function loadOwnField(paneKey, meta, spec)
  if meta and meta.d[spec] and ownField(spec) then meta.v[spec] = redis.call('HGET', paneKey, 'C' .. spec) or nil end
end

-- The ranges [a, b) to add and to subtract to turn a sum over [oldFrom, oldTo) into one
-- over [from, to) (the two ranges overlap), at resolution `res`. Panes hold nothing before
-- `oldest` (the lowest pane member of the time index) or after `newest` (the type's newest
-- event time): each range is clipped to that span, and left out when nothing is left (the
-- usual case at the leading edge, and for a user with few events at the trailing one).
local function rangeDiff(oldFrom, oldTo, from, to, res, oldest, newest)
  local adds, subs = {}, {}
  local low = oldest and math.floor(oldest / res) * res or -math.huge
  local high = newest and (math.floor(newest / res) + 1) * res or math.huge
  local function keep(list, a, b)
    a, b = math.max(a, low), math.min(b, high)
    if a < b then list[#list + 1] = { a, b } end
  end
  if from < oldFrom then keep(adds, from, oldFrom) elseif from > oldFrom then keep(subs, oldFrom, from) end
  if to > oldTo then keep(adds, oldTo, to) elseif to < oldTo then keep(subs, to, oldTo) end
  return adds, subs
end

-- How the completed panes of a tag's window [from, to) (all but the last pane) are read
-- from a pane hash whose totals are `meta`: {base = the total, p = its pane, adds = ranges
-- [a, b) to add, subs = ranges to subtract, span = their length in ms}, or nil when there
-- is no usable total (none, or its range does not overlap): then the caller covers the
-- window by the time index. With `current`, also the window's last pane (plan.current,
-- unless the type has no event that recent).
local function totalPlan(meta, tag, from, to, oldest, newest, current)
  local base = meta and tag.total ~= '' and meta.v[tag.total]
  if not base then return nil end
  local p = math.floor(meta.newest / tag.res) - meta.d[tag.total]
  local oldFrom, oldTo = windowRange(tag.window, tag.res, p * tag.res)
  oldTo = oldTo - tag.res
  local done = to - tag.res
  if oldFrom < oldTo and from < done and (oldFrom >= done or from >= oldTo) then return nil end
  local adds, subs = rangeDiff(oldFrom, oldTo, from, done, tag.res, oldest, newest)
  local span = 0
  for _, r in ipairs(adds) do span = span + r[2] - r[1] end
  for _, r in ipairs(subs) do span = span + r[2] - r[1] end
  local plan = { base = base, p = p, adds = adds, subs = subs, span = span }
  if current and (not newest or done <= newest) then plan.current = { done, to } end
  return plan
end

-- Past this many of the tag's panes between a total's window and the one read, the panes
-- between them are found through the time index (a ZRANGEBYSCORE over just those ranges)
-- rather than by arithmetic: a user with few events has no pane in most of them. Below it,
-- naming every pane costs less than reading the index. Measured on the bench's hour of
-- Zipf traffic (typical users, Redis time a read): 40 against 20 is 1.00x read when the
-- data is written and 0.82x read 30 s later (when the seconds totals have moved ~30 panes);
-- 10 and 60 are no better. Counted in panes, not ms: the one completed minute a 1-minute
-- tag adds is one name, not a read of the index.
local SHORT_DIFF_PANES = 40

-- The name of a tag's pane (at its resolution) that starts at `at`.
local function paneName(tag, at)
  if SECONDS_FORM and tag.res == 1000 and tag.prefix == '' then return secondsName(at, at + 1000) end
  return tag.prefix .. PREFIX[tag.res] .. paneIndexText(at / tag.res)
end

-- The pane names of ranges (totalPlan's adds or subs): by arithmetic, or with `indexKey`,
-- only the panes of the minutes the time index says hold state (with `flipped`, see
-- coverByActiveMinutes: panes to count with the other sign go there).
local function rangeNames(ranges, tag, indexKey, newest, flipped)
  local names = {}
  for _, r in ipairs(ranges) do
    local list = indexKey and coverNames(activePanes(indexKey, r[1], r[2]), r[1], r[2], tag.levels, tag.prefix, newest, flipped)
      or coverByLevels(nil, r[1], r[2], tag.levels, tag.prefix)
    for _, n in ipairs(list) do names[#names + 1] = n end
  end
  return names
end

-- The pane names a tag's value over [from, to) reads: the corrections of its total (plan,
-- see totalPlan) to add and to subtract, or without a usable total, the cover of the whole
-- window by the time index. `newest`: the type's newest event time (math.huge: unknown).
-- With `flip` (a read of a count), an edge minute mostly in a range read through the time
-- index is its minute pane less its other seconds (coverByActiveMinutes).
local function jobNames(indexKey, tag, plan, from, to, newest, flip)
  if plan then
    local byIndex = plan.span > SHORT_DIFF_PANES * tag.res and indexKey or nil
    local addsFlipped, subsFlipped = nil, nil
    if flip and byIndex and tag.agg == 'count' and newest ~= math.huge then addsFlipped, subsFlipped = {}, {} end
    local adds = rangeNames(plan.adds, tag, byIndex, newest, addsFlipped)
    if plan.current then adds[#adds + 1] = paneName(tag, plan.current[1]) end
    local subs = rangeNames(plan.subs, tag, byIndex, newest, subsFlipped)
    if addsFlipped then
      for _, n in ipairs(subsFlipped) do adds[#adds + 1] = n end
      for _, n in ipairs(addsFlipped) do subs[#subs + 1] = n end
    end
    return adds, subs
  end
  return coverNames(activePanes(indexKey, from, to), from, to, tag.levels, tag.prefix, newest), {}
end

-- totalPlan and jobNames in one, for the common read: appends to `names` the panes that
-- correct a tag's total (meta.v[spec], whose count_by value the caller fetches) to its
-- window [from, to), those to add (with now's pane) before those to subtract, and returns
-- the positions of the first and of the last to add. False when the total's range does not
-- overlap the window's (the general read then covers the window); nil when the corrections
-- span more than SHORT_DIFF_PANES panes (read them through the time index: plannedTotal).
-- The same names as totalPlan + jobNames, without their tables; with `cuts`, S-form seconds
-- go to `names` and `cuts` as addSecondsCut keeps them (fetchFields reads them so).
local function fastNames(tag, meta, from, to, names, cuts)
  local res, newest = tag.res, meta.newest
  -- (Arithmetic and comparisons only: a math.* call costs this read more than its sums.)
  local oldTo = newest - newest % res - meta.d[tag.total] * res -- the total's pane p's start
  local oldFrom = oldTo - tag.window + res
  local done = to - res
  if oldFrom < oldTo and from < done and (oldFrom >= done or from >= oldTo) then return false end
  -- rangeDiff's ranges, clipped to the panes that can hold state.
  local low, high = meta.oldest - meta.oldest % res, newest - newest % res + res
  local a1, b1, a2, b2, s1, t1, s2, t2 = 0, 0, 0, 0, 0, 0, 0, 0
  if from < oldFrom then a1, b1 = from > low and from or low, oldFrom < high and oldFrom or high
  elseif from > oldFrom then s1, t1 = oldFrom > low and oldFrom or low, from < high and from or high end
  if done > oldTo then a2, b2 = oldTo > low and oldTo or low, done < high and done or high
  elseif done < oldTo then s2, t2 = done > low and done or low, oldTo < high and oldTo or high end
  local span = 0
  if a1 < b1 then span = span + b1 - a1 end
  if a2 < b2 then span = span + b2 - a2 end
  if s1 < t1 then span = span + t1 - s1 end
  if s2 < t2 then span = span + t2 - s2 end
  -- (In the S form a run of seconds is named as its minutes plus two cut fields at most:
  -- the same budget counts minutes there. A typical read then needs no time index: 0.87x.)
  if span > ((SECONDS_FORM and res == 1000) and SHORT_DIFF_PANES * 60000 or SHORT_DIFF_PANES * res) then return nil end
  local first = #names + 1
  if a1 < b1 then coverByLevels(nil, a1, b1, tag.levels, tag.prefix, names, cuts) end
  if a2 < b2 then coverByLevels(nil, a2, b2, tag.levels, tag.prefix, names, cuts) end
  if done <= newest then
    if cuts and SECONDS_FORM and res == 1000 and tag.prefix == '' then addSecondsCut(names, cuts, done, done + 1000)
    else names[#names + 1] = paneName(tag, done) end
  end
  local mid = #names
  if s1 < t1 then coverByLevels(nil, s1, t1, tag.levels, tag.prefix, names, cuts) end
  if s2 < t2 then coverByLevels(nil, s2, t2, tag.levels, tag.prefix, names, cuts) end
  return first, mid
end
