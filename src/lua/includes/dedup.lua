-- Dedup buckets: field d<first byte of the fingerprint> of a pane hash holds 10-byte
-- entries, appended as events arrive: an event id's 6-byte fingerprint and the minute of
-- the event's time (4 bytes, big-endian). An entry is dropped only once that minute is
-- older than the type's longest window, so a redelivered or resent event id is never
-- counted twice while its first copy could still be in a window.

-- True when fingerprint fp (6 bytes) starts one of the 10-byte entries of bucket text b.
local function seenIn(b, fp)
  local pos = 1
  while true do
    local i = string.find(b, fp, pos, true)
    if not i then return false end
    if (i - 1) % 10 == 0 then return true end
    pos = i + 1
  end
end

-- The bucket without its leading entries older than cutoffMinute. Entries arrive roughly
-- in time order, so this costs the entries dropped, not the bucket (a late entry further
-- in waits for the sweep, pruneBucket).
local function dropLeading(b, cutoffMinute)
  local i = 1
  while i < #b and struct.unpack('>I4', b, i + 6) < cutoffMinute do i = i + 10 end
  if i == 1 then return b end
  return string.sub(b, i)
end

-- The bucket without any entry older than cutoffMinute.
local function pruneBucket(b, cutoffMinute)
  local kept = {}
  for i = 1, #b, 10 do
    if struct.unpack('>I4', b, i + 6) >= cutoffMinute then kept[#kept + 1] = string.sub(b, i, i + 9) end
  end
  return table.concat(kept)
end
