-- The running totals of a pane hash, field T: "<at>,<newest>,<oldest>,<expiry>" then, per
-- running total, "\30<spec>=<value>". A total is the value of a count (an integer) or
-- count_by ("v\31n\31...") tag over its window as of time `at`, i.e. over exactly the
-- panes windowRange(window, resolution, at) covers; the write that moves `at` moves every
-- total with it (adding the panes that entered, subtracting those that left), so a read
-- at `now` corrects a total by the panes between the two windows only. `newest` is the
-- type's newest event time, `oldest` the lowest score of a pane member of the time index
-- (nothing older to prune below it), `expiry` the time the type's keys expire at.

local function parseMeta(text)
  if not text then return nil end
  local cut = string.find(text, '\30', 1, true)
  local head = cut and string.sub(text, 1, cut - 1) or text
  local at, newest, oldest, expiry = string.match(head, '^([^,]*),([^,]*),([^,]*),([^,]*)$')
  local meta = { at = tonumber(at), newest = tonumber(newest), oldest = tonumber(oldest), expiry = tonumber(expiry), totals = {} }
  if cut then
    for spec, value in string.gmatch(string.sub(text, cut), '\30([^=\30]+)=([^\30]*)') do meta.totals[spec] = value end
  end
  return meta
end

local function formatMeta(meta)
  local parts = { string.format('%d,%d,%d,%d', meta.at, meta.newest, meta.oldest, meta.expiry) }
  for spec, value in pairs(meta.totals) do parts[#parts + 1] = spec .. '=' .. value end
  return table.concat(parts, '\30')
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

-- How a tag's value over [from, to) is read from a pane hash whose totals are `meta`:
-- {base = the total, adds = ranges [a, b) to add, subs = ranges to subtract, span = their
-- length in ms}, or nil when there is no usable total (none, or its window does not overlap
-- [from, to)): then the caller covers [from, to) by the time index.
local function totalPlan(meta, tag, from, to, oldest, newest)
  local base = meta and tag.total ~= '' and meta.totals[tag.total]
  if not base then return nil end
  local oldFrom, oldTo = windowRange(tag.window, tag.res, meta.at)
  if oldFrom >= to or from >= oldTo then return nil end
  local adds, subs = rangeDiff(oldFrom, oldTo, from, to, tag.res, oldest, newest)
  local span = 0
  for _, r in ipairs(adds) do span = span + r[2] - r[1] end
  for _, r in ipairs(subs) do span = span + r[2] - r[1] end
  return { base = base, adds = adds, subs = subs, span = span, from = math.min(from, oldFrom), to = math.max(to, oldTo) }
end

-- Past this many ms between a total's window and the one read, the panes between them are
-- found through the time index (a ZRANGEBYSCORE over just those ranges) rather than by
-- arithmetic: a user with few events has no pane in most of them.
local SHORT_DIFF_MS = 5000

-- The pane names of ranges (totalPlan's adds or subs): by arithmetic, or with `indexKey`,
-- only the panes of the minutes the time index says hold state.
local function rangeNames(ranges, tag, indexKey, newest)
  local names = {}
  for _, r in ipairs(ranges) do
    local list = indexKey and coverNames(activePanes(indexKey, r[1], r[2]), r[1], r[2], tag.levels, tag.prefix, newest)
      or coverByLevels(nil, r[1], r[2], tag.levels, tag.prefix)
    for _, n in ipairs(list) do names[#names + 1] = n end
  end
  return names
end

-- The pane names a tag's value over [from, to) reads: the corrections of its total (plan,
-- see totalPlan) to add and to subtract, or without a usable total, the cover of the whole
-- window by the time index. `newest`: the type's newest event time (math.huge: unknown).
local function jobNames(indexKey, tag, plan, from, to, newest)
  if plan then
    local byIndex = plan.span > SHORT_DIFF_MS and indexKey or nil
    return rangeNames(plan.adds, tag, byIndex, newest), rangeNames(plan.subs, tag, byIndex, newest)
  end
  return coverNames(activePanes(indexKey, from, to), from, to, tag.levels, tag.prefix, newest), {}
end
