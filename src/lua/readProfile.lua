--[[
  Reads a user's fused profile in one round trip: every window tag at `now` (count and
  count_by from the write's running totals corrected by the panes between the two windows;
  the others by merging the panes that cover the window; distinct one ZCOUNT), and the
  offline tag hash written by the batch. An unknown user costs an HGETALL of an empty key and
  one EXISTS. Cost per tag:
  O(panes between the write's window and now's), never O(events). Read-only (runs on
  replicas too).

  Input:
    KEYS[1..2k] for each event type of the window plan, in its order: the pane hash
                u:{<user>}:p:<type>, then its time index u:{<user>}:t:<type>
    KEYS[2k+1]  realtime hash     u:{<user>}:rt  (field <type>: the type's newest event
                time: which types to read (not one older than its longest window: all
                its tags are empty), and the user's last event time)
    KEYS[2k+2]  offline tag hash  u:{<user>}:off

    ARGV[1] now (ms)
    ARGV[2] the window plan (binary, see includes/plan.lua): per event type what its panes
            keep and its tags (name, aggregation, field index, window, resolution, levels,
            top, running-total spec); '' to use the plan of id ARGV[5] this library load
            keeps (a read sends the binary only when told it lacks it)
    ARGV[3] the window tags to evaluate: '*' for all, else their names, ','-separated
            (none: '')
    ARGV[4] the offline hash fields to read: '*' for all (HGETALL), else their names,
            '\31'-separated (HMGET)
    ARGV[5] the plan's id (its binary's digest)

  Output: a 4-element array
    [1] 1 when any of the user's keys exists, else 0 (unknown user; nothing else follows),
        or -1 when ARGV[2] is '' and the plan of id ARGV[5] is not kept (nothing follows)
    [2] the user's newest event time (ms) in any window, or nil
    [3] flat array {name1, value1, name2, value2, ...} of the tags of the event types the
        user has state for (the others are empty: 0, or nil for avg/min/max/last): integer
        for count and distinct, decimal string for sum/avg/min/max/last (nil when the window
        has no value); for count_by {'+', text, '-', text, ...}: value-pane texts
        ("value\31n\31...") to add or subtract, which the caller merges, cuts to `top` and
        sorts (its CPU, not Redis's)
    [4] the offline hash (the fields asked for), flat as HGETALL returns it
]]
local rcall = redis.call
-- The realtime hash names the event types the user has state for (field: type, value: its
-- newest event time); an unknown user has none of the keys. Without it, the pane hashes
-- and the offline hash say (a time index never exists without its pane hash: they are
-- written and expire together; 8 keys to EXISTS cost an unknown id ~1 µs more than 4).
local rt = rcall('HGETALL', KEYS[#KEYS - 1])
if #rt == 0 then
  local probe = { KEYS[#KEYS] }
  for i = 1, #KEYS - 2, 2 do probe[#probe + 1] = KEYS[i] end
  if rcall('EXISTS', unpack(probe)) == 0 then return { 0 } end
end

--@include plan
--@include panes
--@include cover
--@include totals
--@include tagValues
--@include readFast
--@include selection

local now = tonumber(ARGV[1])
local plan = cachedPlanById(ARGV[5], ARGV[2])
if not plan then return { -1 } end
local only = tagSelection(ARGV[3])
local has, lastEvent, legacy = {}, nil, #rt == 0
for i = 1, #rt, 2 do
  if rt[i] == 'last_event_at' or rt[i] == 'updated_at' then legacy = true else has[rt[i]] = tonumber(rt[i + 1]) or true end
  local t = rt[i] ~= 'updated_at' and tonumber(rt[i + 1])
  if t and (not lastEvent or t > lastEvent) then lastEvent = t end
end
local flat = {}
for i = 1, plan.count do
  -- Only the types the user has: the caller gives every tag of the others its empty value.
  local p, t = KEYS[2 * i - 1], KEYS[2 * i]
  local known = has[planTypeName(plan, i)]
  if known or (legacy and rcall('EXISTS', p) == 1) then
    local tp = planType(plan, i)
    -- A type whose newest event is older than its longest window has every tag empty (each
    -- window starts after now - window): the caller's empty values, without reading its keys
    -- (a returning user's idle types, whose panes may have expired).
    if typeSelected(tp, only) and not (known and known ~= true and known <= now - tp.longest) then
      local newest = readFast(tp, p, t, now, flat, only) or typeTagValues(p, t, tp, now, only, flat, false)
      if newest and (not lastEvent or newest > lastEvent) then lastEvent = newest end
    end
  end
end
return { 1, lastEvent and string.format('%d', lastEvent) or false, flat, offlineFields(KEYS[#KEYS], ARGV[4]) }
