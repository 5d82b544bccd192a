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
  local parts = { meta.at .. ',' .. meta.newest .. ',' .. meta.oldest .. ',' .. meta.expiry }
  for spec, value in pairs(meta.totals) do parts[#parts + 1] = spec .. '=' .. value end
  return table.concat(parts, '\30')
end

-- The ranges [a, b) to add and to subtract to turn a sum over [oldFrom, oldTo) into one
-- over [from, to) (the two ranges overlap).
local function rangeDiff(oldFrom, oldTo, from, to)
  local adds, subs = {}, {}
  if from < oldFrom then adds[#adds + 1] = { from, oldFrom } elseif from > oldFrom then subs[#subs + 1] = { oldFrom, from } end
  if to > oldTo then adds[#adds + 1] = { oldTo, to } elseif to < oldTo then subs[#subs + 1] = { to, oldTo } end
  return adds, subs
end

-- How a tag's value over [from, to) is read from a pane hash whose totals are `meta`:
-- {base = the total, adds = ranges [a, b) to add, subs = ranges to subtract, span = their
-- length in ms}, or nil when there is no usable total (none, or its window does not overlap
-- [from, to)): then the caller covers [from, to) by the time index.
local function totalPlan(meta, tag, from, to)
  local base = meta and tag.total ~= '' and meta.totals[tag.total]
  if not base then return nil end
  local oldFrom, oldTo = windowRange(tag.window, tag.res, meta.at)
  if oldFrom >= to or from >= oldTo then return nil end
  local adds, subs = rangeDiff(oldFrom, oldTo, from, to)
  local span = 0
  for _, r in ipairs(adds) do span = span + r[2] - r[1] end
  for _, r in ipairs(subs) do span = span + r[2] - r[1] end
  return { base = base, adds = adds, subs = subs, span = span }
end

-- The pane names of ranges (totalPlan's adds or subs): by arithmetic when they are short
-- (a user seen a minute ago: no index read), else only the panes the time index's active
-- minutes `act` say may hold state (a sparse user seen long ago).
local function rangeNames(ranges, tag, act, newest)
  local names = {}
  for _, r in ipairs(ranges) do
    local list = act and coverNames(act, r[1], r[2], tag.levels, tag.prefix, newest) or coverByLevels(nil, r[1], r[2], tag.levels, tag.prefix)
    for _, n in ipairs(list) do names[#names + 1] = n end
  end
  return names
end

-- Past this many ms between a total's window and the one read, the panes between them are
-- found through the time index (one ZRANGEBYSCORE) rather than by arithmetic.
local SHORT_DIFF_MS = 120000
