#!lua flags=no-writes
--[[
  Reads a user's fused profile in one round trip: every window tag evaluated at `now` by
  merging the panes that cover its window (src/core/panes.ts: fine panes at the edges,
  coarse ones in the middle, only those of minutes/hours the time index says hold state);
  a distinct tag is one ZCOUNT over its values' latest times in the time index. Plus the
  offline tag hash written by the batch. Cost: O(panes in the windows), never O(events).
  Read-only (runs on replicas too).

  Input:
    KEYS[1..2k] for each event type with tags, its pane hash u:{<user>}:p:<type> followed
                by its pane time index u:{<user>}:t:<type>
    KEYS[2k+1]  realtime hash     u:{<user>}:rt
    KEYS[2k+2]  offline tag hash  u:{<user>}:off

    ARGV[1] now (ms)
    ARGV[2] n, the number of window tags; then for each tag 8 values:
            name, index in KEYS of its pane hash (its time index is the next key),
            aggregation (count|sum|avg|min|max|last|distinct|count_by), field index
            (1-based, 0 for count), window (ms), resolution (ms), pane levels (ms,
            comma-separated, finest first), top (count_by: the k largest; 0 = all)

  Output: a 4-element array
    [1] 1 when any of the user's keys exists, else 0 (unknown user)
    [2] last event time (ms) from the realtime hash, or nil
    [3] flat array {name1, value1, name2, value2, ...}: integer for count and distinct,
        decimal string for sum/avg/min/max/last (nil when the window has no value),
        flat {key, n, ...} array for count_by, sorted by key
    [4] the offline hash, flat as HGETALL returns it
]]
local rcall = redis.call

--@include panes

local now = tonumber(ARGV[1])
local DISTINCT_BASE = 1e13
local rtKey = KEYS[#KEYS - 1]
local offKey = KEYS[#KEYS]

--@include tagValues

local exists = rcall('EXISTS', unpack(KEYS)) > 0 and 1 or 0
local tags = tagValues(KEYS, ARGV, 3, tonumber(ARGV[2]), now)
return { exists, rcall('HGET', rtKey, 'last_event_at'), tags, rcall('HGETALL', offKey) }
