--[[
  Folds a consumer batch into the window state of many users at once (one call per
  partition batch on one server, per slot on a cluster): for each user and each of its
  event types, the events go into the type's panes, running totals and time index,
  idempotently by event id (includes/writeType.lua, includes/dedup.lua); with triggers,
  the user's triggers are decided before and after its events. Window state v3: see
  src/core/panes.ts. Cost: O(events + panes touched) per user, never O(events already in
  the window).

  Legacy data (the v1 layout: one sorted-set member and one value-hash field per event) is
  folded in on the first call that meets it, through the same dedup, then deleted.

  Input:
    KEYS, per user, at the indexes its ARGV record gives:
      the realtime hash   u:{<user>}:rt   field <type>: the type's newest event time
      with triggers evaluated for the user, then:
        trigger state     u:{<user>}:trg     field <trigger> = 1 while fired (not re-armed)
        trigger outbox    u:{<user>}:trgout  firings not yet appended to the trigger streams
        offline hash      u:{<user>}:off
      per event type of the record: pane hash u:{<user>}:p:<type>, time index
        u:{<user>}:t:<type>, v1 window set u:{<user>}:w:<type>, v1 value hash
        u:{<user>}:wv:<type>

    ARGV[1] now (ms)
    ARGV[2] the window plan (binary, see includes/plan.lua), with the longest window of any
            type: the lifetime of the realtime hash
    ARGV[3] the trigger plan (JSON, see includes/triggers.lua), or '' without triggers
    then one record per user:
      KEYS index of its realtime hash, 1 to evaluate its triggers (else 0), the event id a
      firing names, the user id, the number of types n, then per type: its index in the
      plan, KEYS index of its pane hash, the number of events m, then per event 3 values:
      time (ms), event-id fingerprint (6 bytes), packed field values ("\31"-separated,
      WINDOW_FIELDS order). With triggers evaluated, the record lists every type the
      conditions read (m = 0 for those without events).

  Triggers (edge-triggered, decided here so a redelivered event cannot fire twice): when
  the call added an event of the user, each trigger's conditions are evaluated on the
  user's tags at `now` before and after its events; false before (or never fired) and all
  true after: a firing is pushed to the outbox and the trigger marked fired; false after:
  re-armed (the mark removed).

  Output: {added, user id, outbox, user id, outbox, ...}: the number of events added (an
  event already counted, or older than its type's longest window, adds nothing), then for
  each user whose triggers were evaluated, every firing still in its outbox, each
  "trigger\31at\31event id\31tag\31value..." (oldest first)
]]
local rcall = redis.call

--@include plan
--@include panes
--@include cover
--@include totals
--@include tagValues
--@include dedup
--@include windowIndex
--@include expiry
--@include writeType
--@include triggers
--@include legacy
--@include realtimeHash

local now = tonumber(ARGV[1])
local plan = cachedPlan(ARGV[2])
local trig = ARGV[3] ~= '' and cjson.decode(ARGV[3]) or nil
local reply = { 0 }
local a = 4
while a <= #ARGV do
  local rtIndex, evaluate, eventId, userId, n = tonumber(ARGV[a]), ARGV[a + 1] == '1', ARGV[a + 2], ARGV[a + 3], tonumber(ARGV[a + 4])
  local rtKey = KEYS[rtIndex]
  a = a + 5
  -- The user's types: plan index, keys and events.
  local types, typeKeys = {}, {}
  for _ = 1, n do
    local ti, k, m = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
    local events = {}
    for i = a + 3, a + 2 + 3 * m, 3 do events[#events + 1] = { ts = tonumber(ARGV[i]), fp = ARGV[i + 1], packed = ARGV[i + 2] } end
    types[#types + 1] = { index = ti, keys = { KEYS[k], KEYS[k + 1], KEYS[k + 2], KEYS[k + 3] }, events = events }
    typeKeys[ti] = { KEYS[k], KEYS[k + 1] }
    a = a + 3 + 3 * m
  end
  foldLegacy(types)
  local fired = evaluate and rcall('HLEN', KEYS[rtIndex + 1]) > 0
  local rearm = {}
  if fired then
    for _, t in ipairs(triggerStates(typeKeys, plan, trig, KEYS[rtIndex + 3], now, eventId)) do
      if not t.all then rearm[#rearm + 1] = t.name end
    end
  end
  local added, seen, newest, newestBefore = 0, {}, 0, 0
  for _, t in ipairs(types) do
    if #t.events > 0 then
      local n2, before, after = writeType(t.keys[1], t.keys[2], planType(plan, t.index), now, t.events)
      added = added + n2
      if n2 > 0 and (not before or after > before) then
        seen[#seen + 1] = planType(plan, t.index).name
        seen[#seen + 1] = string.format('%d', after)
        newest = math.max(newest, after)
        newestBefore = before and math.max(newestBefore, before) or math.huge
      end
    end
  end
  reply[1] = reply[1] + added
  if #seen > 0 then touchRealtime(rtKey, seen, newest, newestBefore, now, plan.longest) end
  if evaluate then
    local state, outbox = KEYS[rtIndex + 1], KEYS[rtIndex + 2]
    if added > 0 then
      if #rearm > 0 then rcall('HDEL', state, unpack(rearm)) end
      for _, t in ipairs(triggerStates(typeKeys, plan, trig, KEYS[rtIndex + 3], now, eventId)) do
        if t.all and rcall('HSETNX', state, t.name, 1) == 1 then
          rcall('RPUSH', outbox, table.concat(t.record, '\31'))
        elseif not t.all then
          rcall('HDEL', state, t.name)
        end
      end
      local ttl = math.ceil((now + plan.longest) / 60000) * 60000
      rcall('PEXPIRE', state, ttl - now)
    end
    local firings = rcall('LRANGE', outbox, 0, -1)
    if #firings > 0 then rcall('PEXPIRE', outbox, 86400000 + plan.longest) end
    reply[#reply + 1] = userId
    reply[#reply + 1] = firings
  end
end
return reply
