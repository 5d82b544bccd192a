--[[
  Folds a batch of events of one user and one type into the user's window panes for that
  type (window state v2: partial aggregates per 1 s / 1 min / 1 h pane, see
  src/core/panes.ts), idempotently by event id; prunes panes older than the type's longest
  window; refreshes TTLs and the realtime hash. One call per user, type and consumer
  batch. Cost: O(events in the call + panes touched), never O(events already in the window).

  Dedup: each new event's 6-byte event-id fingerprint is looked up in one of 256 buckets
  (field d<first byte of the fingerprint>) that hold 10-byte entries: the fingerprint and
  the minute of the event's time (4 bytes, big-endian). A redelivered entry or a resent
  event id (even with another time) is never counted twice while its first copy could
  still be in a window: entries are dropped only once that minute is older than the
  type's longest window (when their bucket is next written, or by a round-robin sweep of
  one bucket on each call that prunes minutes).

  Legacy data (the v1 layout: one sorted-set member and one value-hash field per event) is
  folded in on the first call that meets it, through the same dedup, then deleted.

  Input:
    KEYS[1] pane hash         u:{<user>}:p:<type>
    KEYS[2] pane time index   u:{<user>}:t:<type>  member m<minute> (score: minute start)
                              or h<hour> (score: hour end - 1 min), for each pane with state;
                              and for each distinct field f, member v<f>:<value> with score
                              f * 1e13 + the value's latest event time (so a distinct count
                              is one ZCOUNT); a value seen only ahead of `now` waits in the
                              pane hash field F<f> ("value\31ts..." pairs; reads count it once
                              its time has come) until a later call moves it into the index;
                              member L scores the type's newest event time
    KEYS[3] realtime hash     u:{<user>}:rt
    KEYS[4] v1 window set     u:{<user>}:w:<type>  (legacy, folded and deleted)
    KEYS[5] v1 value hash     u:{<user>}:wv:<type> (legacy, folded and deleted)
    with triggers (ARGV[9] > 0), also:
    KEYS[6] trigger state     u:{<user>}:trg  field <trigger> = 1 while fired (not re-armed)
    KEYS[7] trigger outbox    u:{<user>}:trgout  list of firings not yet appended to the
                              trigger streams (the consumer appends, then trims them)
    KEYS[8] offline hash      u:{<user>}:off
    KEYS[9..] pane hash and time index of each event type the conditions' tags use

    ARGV[1] now (ms)
    ARGV[2] longest window of this event type (ms): older panes are pruned
    ARGV[3] longest window of any type (ms): lifetime of the realtime hash
    ARGV[4] 1 when the numeric panes keep sum/min/max/last of a numeric field, else 0
    ARGV[5] 1-based index of that field in the packed values (0: none)
    ARGV[6] levels (ms) of the numeric panes, comma-separated, e.g. "1000,60000"
    ARGV[7] value panes (count_by): "<field index>:<level>,<level>;..." (empty: none)
    ARGV[8] field indexes of distinct tags, comma-separated (empty: none)
    ARGV[9] L, the number of trigger values that follow (0: no triggers); then L values:
            user id, the call's last event id, nt and nt window tags in tagValues' format
            (8 values each, key indexes into KEYS), no and no offline tag names, nr and
            per trigger: name, nc and nc conditions (tag, op, value)
    then, for each event, 3 values: event time (ms), event-id fingerprint (6 bytes),
            packed field values ("\31"-separated, WINDOW_FIELDS order)

  Triggers (edge-triggered, decided here so a redelivered event cannot fire twice): when
  the call added an event, each trigger's conditions are evaluated on the user's tags at
  `now` before and after its events; false before (or never fired) and all true after → a
  firing is pushed to the outbox and the trigger marked fired; false after → re-armed (the
  mark removed). So conditions that turned false only because windows slid re-arm at the
  user's next event of a type the triggers read (the consumer calls with triggers only then).

  Output: without triggers, the number of events added (an event already counted, or older
  than the type's longest window, adds nothing); with triggers, {added, outbox}: every
  firing still in the outbox, each "trigger\31at\31event id\31tag\31value..." (oldest first)
]]
local rcall = redis.call

--@include panes

local now = tonumber(ARGV[1])
local DISTINCT_BASE = 1e13

--@include tagValues

local longest = tonumber(ARGV[2])
local cutoff = now - longest
local numeric = ARGV[4] == '1'
local numericField = tonumber(ARGV[5])
local numericLevels = numberList(ARGV[6])
local valueSpecs = {}
for spec in string.gmatch(ARGV[7], '[^;]+') do
  local f, levels = string.match(spec, '^(%d+):(.+)$')
  valueSpecs[#valueSpecs + 1] = { field = tonumber(f), levels = numberList(levels) }
end

local cutoffMinute = math.floor(cutoff / 60000)
local distinctFields = numberList(ARGV[8])
local latest, future = {}, {}
local buckets, dirtyBuckets = {}, {}
local numericDelta, valueDelta, minutes, hours = {}, {}, {}, {}
local added, newest = 0, nil

-- True when fingerprint fp (6 bytes) starts one of the 10-byte entries of bucket text b.
local function seen(b, fp)
  local pos = 1
  while true do
    local i = string.find(b, fp, pos, true)
    if not i then return false end
    if (i - 1) % 10 == 0 then return true end
    pos = i + 1
  end
end

-- Bucket text without the entries whose minute is before the cutoff.
local function pruneBucket(b)
  local kept = {}
  for i = 1, #b, 10 do
    if struct.unpack('>I4', b, i + 6) >= cutoffMinute then kept[#kept + 1] = string.sub(b, i, i + 9) end
  end
  return table.concat(kept)
end

local function bucket(field)
  local b = buckets[field]
  if b == nil then
    b = rcall('HGET', KEYS[1], field) or ''
    buckets[field] = b
  end
  return b
end

-- Counts one event into the pane deltas, unless its fingerprint was seen.
local function addEvent(ts, fp, packed)
  if ts < cutoff then return end
  local field = 'd' .. string.byte(fp, 1)
  local b = bucket(field)
  if seen(b, fp) then return end
  buckets[field] = b .. fp .. struct.pack('>I4', math.floor(ts / 60000))
  dirtyBuckets[field] = true
  added = added + 1
  if newest == nil or ts > newest then newest = ts end
  minutes[math.floor(ts / 60000)] = true
  hours[math.floor(ts / 3600000)] = true
  local v = numeric and tonumber(packedField(packed, numericField)) or nil
  for _, level in ipairs(numericLevels) do
    local name = PREFIX[level] .. math.floor(ts / level)
    local p = numericDelta[name] or { c = 0 }
    numericDelta[name] = p
    p.c = p.c + 1
    if v then mergeNumeric(p, { c = 0, n = 1, s = v, mn = v, mx = v, lt = ts, lv = v }) end
  end
  for _, f in ipairs(distinctFields) do
    local value = packedField(packed, f)
    if value ~= '' then
      if ts <= now then
        local member = 'v' .. f .. ':' .. value
        local score = f * DISTINCT_BASE + ts
        if not latest[member] or score > latest[member] then latest[member] = score end
      else
        future[#future + 1] = { f, value, ts }
      end
    end
  end
  for _, spec in ipairs(valueSpecs) do
    local value = packedField(packed, spec.field)
    if value ~= '' then
      for _, level in ipairs(spec.levels) do
        local name = spec.field .. PREFIX[level] .. math.floor(ts / level)
        local counts = valueDelta[name] or {}
        valueDelta[name] = counts
        counts[value] = (counts[value] or 0) + 1
      end
    end
  end
end

-- v1 data of this user and type: fold it in once (fingerprints as the consumer makes them:
-- the first 6 bytes of SHA-1 of the event id), then drop it.
if rcall('EXISTS', KEYS[4]) == 1 then
  local flat = rcall('ZRANGE', KEYS[4], 0, -1, 'WITHSCORES')
  for i = 1, #flat, 2 do
    local id = flat[i]
    local hex = string.sub(redis.sha1hex(id), 1, 12)
    local fp = string.gsub(hex, '..', function(h) return string.char(tonumber(h, 16)) end)
    addEvent(tonumber(flat[i + 1]), fp, rcall('HGET', KEYS[5], id) or '')
  end
  rcall('DEL', KEYS[4], KEYS[5])
end

local triggerArgs = tonumber(ARGV[9])
local holds = {
  ['>='] = function(x, v) return x >= v end, ['>'] = function(x, v) return x > v end,
  ['<='] = function(x, v) return x <= v end, ['<'] = function(x, v) return x < v end,
  ['=='] = function(x, v) return x == v end,
}

-- Every trigger on the user's state at `now`: {name, all (every condition holds), record
-- (the firing: trigger, now, the call's last event id, then each condition's tag and value)}.
local function evaluateTriggers()
  local a = 10
  local eventId = ARGV[a + 1]
  local nt = tonumber(ARGV[a + 2])
  local values = {}
  local flat = tagValues(KEYS, ARGV, a + 3, nt, now)
  for i = 1, #flat, 2 do values[flat[i]] = tonumber(flat[i + 1]) end -- false (no value) → nil
  a = a + 3 + nt * 8
  local no = tonumber(ARGV[a])
  for i = 1, no do values[ARGV[a + i]] = tonumber(rcall('HGET', KEYS[8], ARGV[a + i])) end
  a = a + no + 1
  local out = {}
  local nr = tonumber(ARGV[a])
  a = a + 1
  for _ = 1, nr do
    local name, nc = ARGV[a], tonumber(ARGV[a + 1])
    local t = { name = name, all = true, record = { name, now, eventId } }
    for c = 0, nc - 1 do
      local tag, op, v = ARGV[a + 2 + c * 3], ARGV[a + 3 + c * 3], tonumber(ARGV[a + 4 + c * 3])
      local x = values[tag]
      if x == nil or not holds[op](x, v) then t.all = false end -- a tag without a value holds nothing
      t.record[#t.record + 1] = tag
      t.record[#t.record + 1] = x == nil and '' or tostring(x)
    end
    a = a + 2 + nc * 3
    out[#out + 1] = t
  end
  return out
end

-- Before this call's events: fired triggers that no longer hold (their windows slid) are
-- re-armed, so a burst that makes one true again in a single call fires it (applied only
-- if the call adds an event: a redelivery changes nothing).
local rearm = {}
if triggerArgs > 0 and rcall('HLEN', KEYS[6]) > 0 then
  for _, t in ipairs(evaluateTriggers()) do
    if not t.all then rearm[#rearm + 1] = t.name end
  end
end

for i = 10 + triggerArgs, #ARGV, 3 do
  addEvent(tonumber(ARGV[i]), ARGV[i + 1], ARGV[i + 2])
end

if added > 0 then
  for name, delta in pairs(numericDelta) do
    if numeric then
      local old = parseNumeric(rcall('HGET', KEYS[1], name))
      rcall('HSET', KEYS[1], name, formatNumeric(old and mergeNumeric(old, delta) or delta))
    else
      rcall('HINCRBY', KEYS[1], name, delta.c)
    end
  end
  for name, counts in pairs(valueDelta) do
    local merged = addValues(counts, rcall('HGET', KEYS[1], name))
    rcall('HSET', KEYS[1], name, formatValues(merged))
  end
end

-- Prune check: the minutes and hours that ended before the cutoff (handled below).
local old = rcall('ZRANGEBYSCORE', KEYS[2], '-inf', cutoff - 60000)

-- Distinct values: the latest time of each (ZADD GT keeps the newest); values seen only
-- ahead of now wait in F<f> (reads count them from there once their time has come) and
-- move into the index on a later call that has such values again, or prunes.
for _, f in ipairs(distinctFields) do
  local waiting = (#future > 0 or #old > 0) and rcall('HGET', KEYS[1], 'F' .. f) or nil
  if waiting or #future > 0 then
    local keep = {}
    local function place(value, ts)
      if ts <= now then
        local member = 'v' .. f .. ':' .. value
        local score = f * DISTINCT_BASE + ts
        if not latest[member] or score > latest[member] then latest[member] = score end
      elseif ts >= cutoff then
        keep[#keep + 1] = value
        keep[#keep + 1] = ts
      end
    end
    if waiting then
      local parts = {}
      for x in string.gmatch(waiting, '[^\31]+') do parts[#parts + 1] = x end
      for j = 1, #parts, 2 do place(parts[j], tonumber(parts[j + 1])) end
    end
    for _, e in ipairs(future) do
      if e[1] == f then place(e[2], e[3]) end
    end
    if #keep > 0 then rcall('HSET', KEYS[1], 'F' .. f, table.concat(keep, '\31')) elseif waiting then rcall('HDEL', KEYS[1], 'F' .. f) end
  end
end

-- Write the changed dedup buckets (pruned on the way); when minutes are pruned, sweep one
-- more bucket (round robin by time), so buckets that are rarely written shed old entries too.
if #old > 0 then
  local sweep = 'd' .. (math.floor(now / 1000) % 256)
  if not dirtyBuckets[sweep] and rcall('HEXISTS', KEYS[1], sweep) == 1 then dirtyBuckets[sweep] = true end
end
for field in pairs(dirtyBuckets) do
  local b = pruneBucket(bucket(field))
  if b == '' then rcall('HDEL', KEYS[1], field) else rcall('HSET', KEYS[1], field, b) end
end

-- One ZADD GT for the time index: pane members (fixed scores), distinct values' latest
-- times, and L.
local index = {}
local function indexed(score, member)
  index[#index + 1] = score
  index[#index + 1] = member
  if #index >= 1000 then
    rcall('ZADD', KEYS[2], 'GT', unpack(index))
    index = {}
  end
end
for member, score in pairs(latest) do indexed(score, member) end
if added > 0 then
  for m in pairs(minutes) do indexed(m * 60000, 'm' .. m) end
  for h in pairs(hours) do indexed((h + 1) * 3600000 - 60000, 'h' .. h) end
  -- L: the type's newest event time (GT keeps the largest; the pane members' scores never change).
  indexed(newest, 'L')
end
if #index > 0 then rcall('ZADD', KEYS[2], 'GT', unpack(index)) end

-- Prune every pane of the minutes and hours that ended before the cutoff: no tag can
-- count them any more.
if #old > 0 then
  local names = {}
  local function drop(name)
    names[#names + 1] = name
    if #names >= 1000 then
      rcall('HDEL', KEYS[1], unpack(names))
      names = {}
    end
  end
  for _, member in ipairs(old) do
    local kind, idx = string.sub(member, 1, 1), tonumber(string.sub(member, 2))
    if member == 'L' then
      -- the newest event time itself is older than every window: nothing to drop for it
    elseif kind == 'm' then
      drop('m' .. idx)
      for s = idx * 60, idx * 60 + 59 do drop('s' .. s) end
      for _, spec in ipairs(valueSpecs) do drop(spec.field .. 'm' .. idx) end
    else
      drop('h' .. idx)
      for _, spec in ipairs(valueSpecs) do drop(spec.field .. 'h' .. idx) end
    end
  end
  if #names > 0 then rcall('HDEL', KEYS[1], unpack(names)) end
  rcall('ZREMRANGEBYSCORE', KEYS[2], '-inf', cutoff - 60000)
  for _, f in ipairs(distinctFields) do
    rcall('ZREMRANGEBYSCORE', KEYS[2], f * DISTINCT_BASE, f * DISTINCT_BASE + cutoff - 60000)
  end
end

if added == 0 then
  if triggerArgs == 0 then return 0 end
  return { 0, rcall('LRANGE', KEYS[7], 0, -1) }
end

-- The panes matter until their newest event leaves the longest window (plus the minute
-- the pruning rounds to); never shorten a TTL an earlier, newer event set.
local ttl = newest + longest - now + 60000
local current = rcall('PTTL', KEYS[1])
if current > ttl then ttl = current end
rcall('PEXPIRE', KEYS[1], ttl)
rcall('PEXPIRE', KEYS[2], ttl)

-- The realtime hash says when the user was last active (constant work per call); the tags
-- themselves are computed at read time.
local lastEvent = tonumber(rcall('HGET', KEYS[3], 'last_event_at') or '0') or 0
if newest > lastEvent then lastEvent = newest end
rcall('HSET', KEYS[3], 'last_event_at', lastEvent, 'updated_at', now)
rcall('PEXPIRE', KEYS[3], lastEvent + tonumber(ARGV[3]) - now + 1)
if triggerArgs == 0 then return added end

-- Triggers, after this call's events: fire what now holds and was not fired; re-arm what
-- does not hold (and, above, what had stopped holding before this call's events).
if #rearm > 0 then rcall('HDEL', KEYS[6], unpack(rearm)) end
for _, t in ipairs(evaluateTriggers()) do
  if t.all and rcall('HSETNX', KEYS[6], t.name, 1) == 1 then
    rcall('RPUSH', KEYS[7], table.concat(t.record, '\31'))
  elseif not t.all then
    rcall('HDEL', KEYS[6], t.name)
  end
end
rcall('PEXPIRE', KEYS[6], lastEvent + tonumber(ARGV[3]) - now + 1)
local outbox = rcall('LRANGE', KEYS[7], 0, -1)
if #outbox > 0 then rcall('PEXPIRE', KEYS[7], 86400000 + tonumber(ARGV[3])) end
return { added, outbox }
