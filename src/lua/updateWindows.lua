--[[
  Adds a batch of events of one user and one type to the user's sliding window for that
  type, idempotently by event id; drops what has fallen out of the type's longest window;
  refreshes TTLs; records the newest event time in the realtime tag hash and rewrites the
  type's tags there as of `now` (for inspection with redis-cli). One call per user, type
  and consumer batch: a very active user costs one call, not one per event.
  Evaluating tags is linear in the window, so a window holding N > ARGV[4] events has its
  tags rewritten at most once per N * ARGV[5] ms of `now` (the `tags_at:<type>` field says
  when), which bounds the scanning per window and second whatever the user's event rate.
  GET /profile is never affected: it always computes every tag at read time.

  Input:
    KEYS[1] window sorted set  u:{<user>}:w:<type>   member event_id, score event time (ms)
    KEYS[2] window value hash  u:{<user>}:wv:<type>  event_id -> packed field values
    KEYS[3] realtime tag hash  u:{<user>}:rt

    ARGV[1] now (ms)
    ARGV[2] longest window of this event type (ms)
    ARGV[3] longest window of any type (ms): lifetime of the realtime tag hash
    ARGV[4] window size (events) above which tag rewrites are rate-limited
    ARGV[5] ms per event in such a window that must pass between two tag rewrites
    ARGV[6] event type (names the `tags_at:<type>` field)
    ARGV[7] n, the number of tags of this event type; then for each tag 4 values:
            name, aggregation (count|sum|distinct|count_by), field index (1-based, 0 for
            count), window (ms)
    then, for each event, 3 values: event time (ms), event id, packed field values
            ("\31"-separated, WINDOW_FIELDS order)

  Output: the number of events added (an event already counted, or older than the type's
  longest window, adds nothing)
]]
local rcall = redis.call

--@include aggregateTag

local now = tonumber(ARGV[1])
local typeWindow = tonumber(ARGV[2])
local cutoff = now - typeWindow
local nTags = tonumber(ARGV[7])
local firstEvent = 8 + nTags * 4

local added, newestAdded = 0, nil
for i = firstEvent, #ARGV, 3 do
  local ts = tonumber(ARGV[i])
  if ts >= cutoff and rcall('ZADD', KEYS[1], 'NX', ts, ARGV[i + 1]) == 1 then
    rcall('HSET', KEYS[2], ARGV[i + 1], ARGV[i + 2])
    added = added + 1
    if newestAdded == nil or ts > newestAdded then newestAdded = ts end
  end
end
if added == 0 then
  return 0
end

-- Drop events older than every window of this type.
local expired = rcall('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. cutoff)
for first = 1, #expired, 1000 do
  rcall('HDEL', KEYS[2], unpack(expired, first, math.min(first + 999, #expired)))
end
if #expired > 0 then
  rcall('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. cutoff)
end

-- The window keys matter until their newest event leaves the longest window.
local newest = tonumber(rcall('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2])
local ttl = newest + typeWindow - now + 1
rcall('PEXPIRE', KEYS[1], ttl)
rcall('PEXPIRE', KEYS[2], ttl)

local lastEvent = tonumber(rcall('HGET', KEYS[3], 'last_event_at') or '0') or 0
if newestAdded > lastEvent then lastEvent = newestAdded end
local fields = { 'last_event_at', lastEvent, 'updated_at', now }
local tagsAtField = 'tags_at:' .. ARGV[6]
local tagsAt = tonumber(rcall('HGET', KEYS[3], tagsAtField) or '0') or 0
local size = rcall('ZCARD', KEYS[1])
if size <= tonumber(ARGV[4]) or now - tagsAt >= size * tonumber(ARGV[5]) or now < tagsAt then
  fields[#fields + 1] = tagsAtField
  fields[#fields + 1] = now
  for t = 0, nTags - 1 do
    local base = 8 + t * 4
    local agg = ARGV[base + 1]
    local value = aggregateTag(KEYS[1], KEYS[2], agg, tonumber(ARGV[base + 2]), now - tonumber(ARGV[base + 3]), now)
    if agg == 'count_by' then
      local obj = {}
      for j = 1, #value, 2 do obj[value[j]] = value[j + 1] end
      value = next(obj) == nil and '{}' or cjson.encode(obj)
    end
    fields[#fields + 1] = ARGV[base]
    fields[#fields + 1] = value
  end
end
rcall('HSET', KEYS[3], unpack(fields))
rcall('PEXPIRE', KEYS[3], lastEvent + tonumber(ARGV[3]) - now + 1)
return added
