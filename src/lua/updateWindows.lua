--[[
  Adds one event to a user's sliding window for its type, idempotently by event id, drops
  what has fallen out of the type's longest window, refreshes TTLs, records the event time
  in the realtime tag hash and, when asked, rewrites the type's tags there as of `now`
  (for inspection with redis-cli). Evaluating tags is linear in the window, so two rules
  keep a very active user from making the consumer quadratic: the consumer asks only for
  the last event of a user and type in each batch, and a window holding N > ARGV[8]
  events has its tags rewritten at most once per N * ARGV[9] ms of `now` (the
  `tags_at:<type>` field says when), which bounds the scanning per window and second
  whatever the user's event rate. GET /profile is never affected: it always computes
  every tag at read time.

  Input:
    KEYS[1] window sorted set  u:{<user>}:w:<type>   member event_id, score event time (ms)
    KEYS[2] window value hash  u:{<user>}:wv:<type>  event_id -> packed field values
    KEYS[3] realtime tag hash  u:{<user>}:rt

    ARGV[1] now (ms)
    ARGV[2] event time (ms)
    ARGV[3] event id
    ARGV[4] packed field values ("\31"-separated, WINDOW_FIELDS order)
    ARGV[5] longest window of this event type (ms)
    ARGV[6] longest window of any type (ms): lifetime of the realtime tag hash
    ARGV[7] 1 to rewrite the type's tags in the realtime hash, 0 to skip that
    ARGV[8] window size (events) above which tag rewrites are rate-limited
    ARGV[9] ms per event in such a window that must pass between two tag rewrites
    ARGV[10] event type (names the `tags_at:<type>` field)
    ARGV[11] n, the number of tags of this event type; then for each tag 4 values:
            name, aggregation (count|sum|distinct|count_by), field index (1-based, 0 for
            count), window (ms)

  Output:
    1  the event was added
    0  already counted (same event id seen before) or older than the type's longest window
]]
local rcall = redis.call

--@include aggregateTag

local now = tonumber(ARGV[1])
local ts = tonumber(ARGV[2])
local typeWindow = tonumber(ARGV[5])
local cutoff = now - typeWindow

if ts < cutoff then
  return 0
end
if rcall('ZADD', KEYS[1], 'NX', ts, ARGV[3]) == 0 then
  return 0
end
rcall('HSET', KEYS[2], ARGV[3], ARGV[4])

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
if ts > lastEvent then lastEvent = ts end
local fields = { 'last_event_at', lastEvent, 'updated_at', now }
local n = 0
if ARGV[7] == '1' then
  local tagsAtField = 'tags_at:' .. ARGV[10]
  local tagsAt = tonumber(rcall('HGET', KEYS[3], tagsAtField) or '0') or 0
  local size = rcall('ZCARD', KEYS[1])
  if size <= tonumber(ARGV[8]) or now - tagsAt >= size * tonumber(ARGV[9]) or now < tagsAt then
    n = tonumber(ARGV[11])
    fields[#fields + 1] = tagsAtField
    fields[#fields + 1] = now
  end
end
for i = 0, n - 1 do
  local base = 12 + i * 4
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
rcall('HSET', KEYS[3], unpack(fields))
rcall('PEXPIRE', KEYS[3], lastEvent + tonumber(ARGV[6]) - now + 1)
return 1
