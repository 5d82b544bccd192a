-- The time index of a type's panes, u:{<user>}:t:<type>: member m<minute> (score: minute
-- start) or h<hour> (score: hour end - 1 min) for each pane with state; for each distinct
-- field f, member v<f>:<value> scored f * DISTINCT_BASE + the value's latest event time
-- (so a distinct count is one ZCOUNT). State written before the running totals also has
-- member L, scoring the type's newest event time (now in the pane hash's T field).

-- ZADD GT of {member = score} (GT keeps the newest time of a distinct value; pane members'
-- scores never change).
local function indexMembers(indexKey, members)
  local args = {}
  for member, score in pairs(members) do
    args[#args + 1] = score
    args[#args + 1] = member
    if #args >= 1000 then
      redis.call('ZADD', indexKey, 'GT', unpack(args))
      args = {}
    end
  end
  if #args > 0 then redis.call('ZADD', indexKey, 'GT', unpack(args)) end
end

-- Deletes the panes of the time index members `members` (m<minute> and h<hour>; the others
-- have none), in HDELs of up to 1,000 names: every level of the numeric panes and of each
-- value field, or with `secondsOnly` only the one-second panes (their minutes' stay).
local function dropMemberPanes(paneKey, tp, members, secondsOnly)
  local names = {}
  local function drop(name)
    names[#names + 1] = name
    if #names >= 1000 then
      redis.call('HDEL', paneKey, unpack(names))
      names = {}
    end
  end
  local function dropLevels(prefix, levels, kind, idx)
    for _, level in ipairs(levels) do
      if kind == 'm' and level == 1000 and prefix == '' and SECONDS_FORM then
        drop(secondsFieldOfMinute(idx))
      elseif kind == 'm' and level == 1000 then
        for s = idx * 60, idx * 60 + 59 do drop(prefix .. 's' .. s) end
      elseif not secondsOnly and ((kind == 'm' and level == 60000) or (kind == 'h' and level == 3600000)) then
        drop(prefix .. kind .. idx)
      end
    end
  end
  for _, member in ipairs(members) do
    -- (Not L, the newest event time of state from before the meta: nothing to drop for it.)
    local kind = string.sub(member, 1, 1)
    if kind == 'm' or kind == 'h' then
      local idx = tonumber(string.sub(member, 2))
      dropLevels('', tp.numericLevels, kind, idx)
      for _, spec in ipairs(tp.values) do dropLevels(tostring(spec.field), spec.levels, kind, idx) end
    end
  end
  if #names > 0 then redis.call('HDEL', paneKey, unpack(names)) end
end

-- Deletes every pane of the minutes and hours in `old` (time index members that ended
-- before the cutoff: no tag can count them any more) and their index members.
local function prunePanes(paneKey, indexKey, tp, old, cutoff)
  dropMemberPanes(paneKey, tp, old, false)
  redis.call('ZREMRANGEBYSCORE', indexKey, '-inf', cutoff - 60000)
  for _, f in ipairs(tp.distinct) do
    redis.call('ZREMRANGEBYSCORE', indexKey, f * DISTINCT_BASE, f * DISTINCT_BASE + cutoff - 60000)
  end
end

-- Deletes the one-second panes of the minutes among `members`, for a type whose seconds
-- are read over less than its longest window (writeType's step 5): their minute panes stay.
local function pruneSeconds(paneKey, tp, members)
  dropMemberPanes(paneKey, tp, members, true)
end

-- Distinct values seen only ahead of `now` wait in field F<f> ("value\31ts..." pairs; reads
-- count them once their time has come) until a later call that has such values again, or
-- prunes, moves them into the index (into d.members). `waiting` maps f to F<f>'s text (or
-- false). Returns {f = the new text ('' to delete)} for each field that changes.
local function placeDistinct(fields, waiting, d, now, cutoff, pruning)
  local changes = {}
  for _, f in ipairs(fields) do
    local text = waiting[f]
    local mine = {}
    for _, e in ipairs(d.future) do if e[1] == f then mine[#mine + 1] = e end end
    if (#mine > 0 or pruning) and (text or #mine > 0) then
      local keep = {}
      local function place(value, ts)
        if ts <= now then
          local member, score = 'v' .. f .. ':' .. value, f * DISTINCT_BASE + ts
          if not d.members[member] or score > d.members[member] then d.members[member] = score end
        elseif ts >= cutoff then
          keep[#keep + 1] = value
          keep[#keep + 1] = ts
        end
      end
      if text then
        local parts = {}
        for x in string.gmatch(text, '[^\31]+') do parts[#parts + 1] = x end
        for j = 1, #parts, 2 do place(parts[j], tonumber(parts[j + 1])) end
      end
      for _, e in ipairs(mine) do place(e[2], e[3]) end
      local next = table.concat(keep, '\31')
      if next ~= '' or text then changes[f] = next end
    end
  end
  return changes
end
