#!lua flags=no-writes
--[[
  Reads a user's fused profile in one round trip: every window tag evaluated at `now`
  over the window sorted sets, plus the offline tag hash written by the batch.
  Read-only (runs on replicas too).

  Input:
    KEYS[1..2k] for each event type with tags, its window sorted set u:{<user>}:w:<type>
                followed by its window value hash u:{<user>}:wv:<type>
    KEYS[2k+1]  realtime tag hash u:{<user>}:rt
    KEYS[2k+2]  offline tag hash  u:{<user>}:off

    ARGV[1] now (ms)
    ARGV[2] n, the number of window tags; then for each tag 5 values:
            name, index in KEYS of its window sorted set (its value hash is the next key),
            aggregation (count|sum|distinct|count_by), field index (1-based, 0 for count),
            window (ms)

  Output: a 4-element array
    [1] 1 when any of the user's keys exists, else 0 (unknown user)
    [2] last event time (ms) from the realtime hash, or nil
    [3] flat array {name1, value1, name2, value2, ...}: integer for count and distinct,
        decimal string for sum, flat {key, n, ...} array for count_by
    [4] the offline hash, flat as HGETALL returns it
]]
local rcall = redis.call

--@include aggregateTag

local now = tonumber(ARGV[1])
local rtKey = KEYS[#KEYS - 1]
local offKey = KEYS[#KEYS]

local exists = rcall('EXISTS', unpack(KEYS)) > 0 and 1 or 0
local tags = {}
local n = tonumber(ARGV[2])
for i = 0, n - 1 do
  local base = 3 + i * 5
  local keyIndex = tonumber(ARGV[base + 1])
  tags[#tags + 1] = ARGV[base]
  tags[#tags + 1] = aggregateTag(KEYS[keyIndex], KEYS[keyIndex + 1], ARGV[base + 2],
    tonumber(ARGV[base + 3]), now - tonumber(ARGV[base + 4]), now)
end
return { exists, rcall('HGET', rtKey, 'last_event_at'), tags, rcall('HGETALL', offKey) }
