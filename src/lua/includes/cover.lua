-- Pane covers (coverPanes in src/core/panes.ts): the field names of the panes that hold
-- the events of [from, to) (ms, aligned to levels[1]) with as few panes as the levels
-- allow: fine panes at the edges, coarse ones in the middle.

-- Minutes (sorted list and set) and hours of a time index that hold state in [from, to)
-- (one ZRANGEBYSCORE over the members whose panes can overlap it: an hour member scores its
-- hour's end - 1 min; distinct-value members, scored from DISTINCT_BASE up, are left out).
local function activePanes(indexKey, from, to)
  local list, minutes, hours = {}, {}, {}
  -- Hour members matter only to a range that can hold a whole hour.
  local margin = to - from >= 3600000 and 3600000 or 0
  local high = math.min(to + margin, DISTINCT_BASE)
  local flat = redis.call('ZRANGEBYSCORE', indexKey, math.floor(from / 60000) * 60000 - margin, '(' .. high)
  for i = 1, #flat do
    local member = flat[i]
    local kind = string.byte(member, 1)
    if kind == 109 then -- m<minute>
      local idx = tonumber(string.sub(member, 2))
      list[#list + 1] = idx
      minutes[idx] = true
    elseif kind == 104 then -- h<hour>
      hours[tonumber(string.sub(member, 2))] = true
    end
  end
  return { list = list, minutes = minutes, hours = hours }
end

-- Appends to `names` the panes of `level` in [lo, hi) (fieldPrefix: the value field's
-- digits); with `act`, only those of minutes/hours that hold state. In the S form, with
-- `cuts`, a run of seconds is its field and a cut in `cuts` (addSecondsCut), else its name
-- S<minute>:<a>:<b>.
local function addLevelPanes(names, act, fieldPrefix, level, lo, hi, cuts)
  if SECONDS_FORM and level == 1000 and fieldPrefix == '' then
    local a = lo
    while a < hi do
      local b = a - a % 60000 + 60000
      if b > hi then b = hi end
      if act == nil or act.minutes[(a - a % 60000) / 60000] then
        if cuts then addSecondsCut(names, cuts, a, b) else names[#names + 1] = secondsName(a, b) end
      end
      a = b
    end
    return
  end
  local pre = fieldPrefix .. PREFIX[level]
  if act == nil then
    -- Every pane: in runs sharing the digits above the last three, written once a run, so a
    -- name is one join (a stale read names dozens; 0.93x its Redis instructions 30 s after
    -- the data).
    local n, idx, last = #names, lo / level, hi / level - 1
    while idx <= last do
      local thousands = idx - idx % 1000
      if thousands <= 0 then
        n = n + 1
        names[n] = pre .. paneIndexText(idx)
        idx = idx + 1
      else
        local head = pre .. paneIndexText(thousands / 1000)
        local stop = thousands + 999
        if stop > last then stop = last end
        for j = idx - thousands, stop - thousands do
          n = n + 1
          names[n] = head .. (DIGITS3[j] or digits3(j))
        end
        idx = stop + 1
      end
    end
    return
  end
  for t = lo, hi - level, level do
    local idx = t / level
    local live = (level == 1000 and act.minutes[math.floor(idx / 60)])
      or (level == 60000 and act.minutes[idx])
      or (level == 3600000 and act.hours[idx])
    if live then names[#names + 1] = pre .. paneIndexText(idx) end
  end
end

-- The cover by arithmetic, appended to `names` (a new list when nil) and returned; with
-- `act` (activePanes), only panes of minutes/hours that hold state; with `cuts`, S-form
-- seconds as addLevelPanes keeps them.
local function coverByLevels(act, from, to, levels, fieldPrefix, names, cuts)
  names = names or {}
  local lo, hi = from, to
  for i, level in ipairs(levels) do
    local nextLevel = levels[i + 1]
    local loUp = nextLevel and math.ceil(lo / nextLevel) * nextLevel or hi
    local hiDown = nextLevel and math.floor(hi / nextLevel) * nextLevel or hi
    if not nextLevel or loUp >= hiDown then
      addLevelPanes(names, act, fieldPrefix, level, lo, hi, cuts)
      return names
    end
    addLevelPanes(names, act, fieldPrefix, level, lo, loUp, cuts)
    addLevelPanes(names, act, fieldPrefix, level, hiDown, hi, cuts)
    lo, hi = loUp, hiDown
  end
  return names
end

-- The same cover, walking only the minutes that hold state (`inRange`, sorted): what a
-- sparse user costs. A pane that reaches past `to` still holds only events before it when
-- the type's newest event is before `to` (the usual case at the window's leading edge).
-- With `flipped` (a list: for a count, whose minute pane is exactly the sum of its
-- seconds'), an edge minute with more than half its seconds in range is named whole, and
-- its seconds out of range (up to the newest event's) go to `flipped`, to be counted with
-- the other sign: at most 30 names for an edge minute rather than 59.
local function coverByActiveMinutes(inRange, from, to, levels, fieldPrefix, newest, flipped)
  local hasMinutes, hasHours = false, false
  for _, level in ipairs(levels) do
    if level == 60000 then hasMinutes = true elseif level == 3600000 then hasHours = true end
  end
  local names, hourDone = {}, {}
  for _, m in ipairs(inRange) do
    local ms, me = m * 60000, (m + 1) * 60000
    local h = math.floor(m / 60)
    local hourEnd = (h + 1) * 3600000
    if hasHours and h * 3600000 >= from and (hourEnd <= to or newest < to) then
      if not hourDone[h] then
        hourDone[h] = true
        names[#names + 1] = fieldPrefix .. 'h' .. paneIndexText(h)
      end
    elseif hasMinutes and ms >= from and (me <= to or newest < to) then
      names[#names + 1] = fieldPrefix .. 'm' .. paneIndexText(m)
    else -- an edge minute, or a window without minute panes: its seconds in range
      local lo, hi = math.max(ms, from), math.min(me, to)
      local tailEnd = math.min(me, newest - newest % 1000 + 1000) -- no second after the newest event's holds state
      if SECONDS_FORM and fieldPrefix == '' then -- one field, cut to the range (never flipped)
        names[#names + 1] = secondsName(lo, hi)
      elseif flipped and hasMinutes and (lo - ms) + math.max(0, tailEnd - hi) < hi - lo then
        names[#names + 1] = fieldPrefix .. 'm' .. paneIndexText(m)
        for t = ms, lo - 1000, 1000 do flipped[#flipped + 1] = fieldPrefix .. 's' .. paneIndexText(t / 1000) end
        for t = hi, tailEnd - 1000, 1000 do flipped[#flipped + 1] = fieldPrefix .. 's' .. paneIndexText(t / 1000) end
      else
        for t = lo, hi - 1000, 1000 do names[#names + 1] = fieldPrefix .. 's' .. paneIndexText(t / 1000) end
      end
    end
  end
  return names
end

-- The field names of the panes covering [from, to) that may hold state, by the time
-- index's active minutes (`act`); `newest` is the type's newest event time (math.huge when
-- unknown).
local function coverNames(act, from, to, levels, fieldPrefix, newest, flipped)
  local first, last = math.floor(from / 60000), math.ceil(to / 60000) - 1
  local inRange = {}
  for _, m in ipairs(act.list) do
    if m >= first and m <= last then inRange[#inRange + 1] = m end
  end
  -- Few active minutes: walk them; many (a busy user): the arithmetic cover is shorter.
  if #inRange <= 64 then return coverByActiveMinutes(inRange, from, to, levels, fieldPrefix, newest, flipped) end
  return coverByLevels(act, from, to, levels, fieldPrefix)
end
