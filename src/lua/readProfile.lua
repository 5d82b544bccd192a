#!lua flags=no-writes
--[[
  Reads a user's fused profile in one round trip: every window tag at `now` (count and
  count_by from the write's running totals corrected by the panes between the two windows;
  the others by merging the panes that cover the window; distinct one ZCOUNT), and the
  offline tag hash written by the batch. An unknown user costs one EXISTS. Cost per tag:
  O(panes between the write's window and now's), never O(events). Read-only (runs on
  replicas too).

  Input:
    KEYS[1..2k] for each event type of the window plan, in its order: the pane hash
                u:{<user>}:p:<type>, then its time index u:{<user>}:t:<type>
    KEYS[2k+1]  realtime hash     u:{<user>}:rt  (field <type>: the type's newest event
                time; read only when no pane hash knows it, e.g. once the panes expired)
    KEYS[2k+2]  offline tag hash  u:{<user>}:off

    ARGV[1] now (ms)
    ARGV[2] the window plan (JSON, see windowPlan in src/lua/scripts.ts): per event type
            its tags (name, aggregation, field index, window, resolution, levels, pane
            name prefix, top, running-total spec) and the fields of its distinct tags

  Output: a 4-element array
    [1] 1 when any of the user's keys exists, else 0 (unknown user; nothing else follows)
    [2] the user's newest event time (ms) in any window, or nil
    [3] flat array {name1, value1, name2, value2, ...}: integer for count and distinct,
        decimal string for sum/avg/min/max/last (nil when the window has no value),
        flat {key, n, ...} array for count_by, sorted by key
    [4] the offline hash, flat as HGETALL returns it
]]
local rcall = redis.call
-- An unknown user costs this EXISTS alone (before the helpers below are even defined).
if rcall('EXISTS', unpack(KEYS)) == 0 then return { 0 } end

--@include panes
--@include cover
--@include totals
--@include tagValues

local now = tonumber(ARGV[1])
local plan = cjson.decode(ARGV[2])
local flat, lastEvent = {}, nil
for i, tp in ipairs(plan.types) do
  local values, newest = typeTagValues(KEYS[2 * i - 1], KEYS[2 * i], tp, now, nil)
  for _, v in ipairs(values) do
    flat[#flat + 1] = v[1]
    flat[#flat + 1] = v[2]
  end
  if newest and (not lastEvent or newest > lastEvent) then lastEvent = newest end
end
if not lastEvent then
  local rt = rcall('HGETALL', KEYS[#KEYS - 1])
  for i = 2, #rt, 2 do
    local t = rt[i - 1] ~= 'updated_at' and tonumber(rt[i]) -- (a v2 hash also has updated_at)
    if t and (not lastEvent or t > lastEvent) then lastEvent = t end
  end
end
return { 1, lastEvent and string.format('%d', lastEvent) or false, flat, rcall('HGETALL', KEYS[#KEYS]) }
