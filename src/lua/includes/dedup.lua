-- Dedup buckets: field d<j> of a pane hash (j: the first byte of the event id's 6-byte
-- fingerprint) holds 10-byte entries, appended as events arrive: the fingerprint and the
-- minute of the event's time (4 bytes, big-endian). An entry is dropped only once that
-- minute is older than the type's longest window, so a redelivered or resent event id is
-- never counted twice while its first copy could still be in a window.
--
-- A bucket that would pass SPLIT_AT entries splits into SPLIT_WAYS sub-buckets d<j>.<k>
-- (k from the fingerprint's second byte, see subBucketName) and d<j> keeps only the mark
-- '*' from then on: a write moves a few hundred bytes of buckets per event however many
-- events the window holds (a hot user's 100,000 events in 256 buckets were 3.9 KB each,
-- all moved through Lua on every call). A sub-bucket's entries are 8 bytes: the
-- fingerprint without its first byte (the bucket's j) and the minute modulo 2^24 (3 bytes;
-- compared modulo 2^24, right while entries are within 15 years of the cutoff). Only a
-- split bucket's events cost a second HMGET. Same layout as src/consumers/dedupBuckets.ts.
local SPLIT_AT = 128
local SPLIT_WAYS = 8
local SPLIT_MARK = '*'
local MINUTE_WRAP = 16777216

-- The bucket name of fingerprint fp, and its sub-bucket's.
local function bucketName(fp) return 'd' .. string.byte(fp, 1) end
local function subBucketName(fp)
  return 'd' .. string.byte(fp, 1) .. '.' .. math.floor(string.byte(fp, 2) * SPLIT_WAYS / 256)
end

-- A sub-bucket entry: the fingerprint's last 5 bytes (`tail`) and the minute modulo 2^24.
local function subEntry(tail, minute) return tail .. struct.pack('>I3', minute % MINUTE_WRAP) end

-- True when `key` (fp for a bucket, its last 5 bytes for a sub-bucket) starts one of the
-- `size`-byte entries of bucket text b.
local function seenIn(b, key, size)
  local pos = 1
  while true do
    local i = string.find(b, key, pos, true)
    if not i then return false end
    if (i - 1) % size == 0 then return true end
    pos = i + 1
  end
end

-- True when a sub-bucket entry's minute m (modulo 2^24) is before cutoffMinute.
local function olderWrapped(m, cutoffMinute)
  local d = (cutoffMinute - m) % MINUTE_WRAP
  return d > 0 and d < MINUTE_WRAP / 2
end

-- Whether the entry of bucket text b at byte i (size 10: a bucket, 8: a sub-bucket) is
-- older than cutoffMinute.
local function entryOlder(b, i, size, cutoffMinute)
  if size == 10 then return struct.unpack('>I4', b, i + 6) < cutoffMinute end
  return olderWrapped(struct.unpack('>I3', b, i + 5), cutoffMinute)
end

-- The bucket without its leading entries older than cutoffMinute. Entries arrive roughly
-- in time order, so this costs the entries dropped, not the bucket (a late entry further
-- in waits for the sweep, pruneBucket).
local function dropLeading(b, cutoffMinute, size)
  local i = 1
  while i < #b and entryOlder(b, i, size, cutoffMinute) do i = i + size end
  if i == 1 then return b end
  return string.sub(b, i)
end

-- The bucket without any entry older than cutoffMinute.
local function pruneBucket(b, cutoffMinute, size)
  local kept = {}
  for i = 1, #b, size do
    if not entryOlder(b, i, size, cutoffMinute) then kept[#kept + 1] = string.sub(b, i, i + size - 1) end
  end
  return table.concat(kept)
end

-- A bucket's 10-byte entries as sub-bucket texts {name = 8-byte entries}, in their order.
local function splitBucket(b)
  local parts = {}
  for i = 1, #b, 10 do
    local fp = string.sub(b, i, i + 5)
    local name = subBucketName(fp)
    local list = parts[name] or {}
    parts[name] = list
    list[#list + 1] = subEntry(string.sub(fp, 2), struct.unpack('>I4', b, i + 6))
  end
  for name, list in pairs(parts) do parts[name] = table.concat(list) end
  return parts
end

-- The dedup state of a call: `read(name)` answers a bucket's text as the call's first
-- HMGET read it (false: none); the sub-buckets of the split buckets among the events' are
-- read here, in one HMGET.
local function newDedup(paneKey, read, events, cutoff)
  local subNames, wanted = {}, {}
  for _, e in ipairs(events) do
    local sub = subBucketName(e.fp)
    if e.ts >= cutoff and read(bucketName(e.fp)) == SPLIT_MARK and not wanted[sub] then
      wanted[sub] = true
      subNames[#subNames + 1] = sub
    end
  end
  local subs = {}
  for i, text in ipairs(fetchFields(paneKey, subNames)) do subs[subNames[i]] = text end
  return { buckets = {}, read = function(name) if subs[name] ~= nil then return subs[name] end return read(name) end }
end

-- Dedups one event (fingerprint fp, time ts) against the call's buckets (dedup.buckets:
-- name -> text as this call left it; else as read). Returns false for an id already
-- seen, else appends its entry and returns true.
local function dedupEvent(dedup, fp, ts)
  local bucket = bucketName(fp)
  local name, key, entry
  if (dedup.buckets[bucket] or dedup.read(bucket)) == SPLIT_MARK then
    name, key = subBucketName(fp), string.sub(fp, 2)
    entry = subEntry(key, math.floor(ts / 60000))
  else
    name, key = bucket, fp
    entry = fp .. struct.pack('>I4', math.floor(ts / 60000))
  end
  local b = dedup.buckets[name] or dedup.read(name) or ''
  if seenIn(b, key, #entry) then return false end
  dedup.buckets[name] = b .. entry
  return true
end

-- Splits every bucket of the call past SPLIT_AT entries: its sub-buckets join
-- dedup.buckets, and it keeps the mark.
local function splitFull(dedup)
  local full = {}
  for name, b in pairs(dedup.buckets) do
    if #b > SPLIT_AT * 10 and not string.find(name, '.', 1, true) then full[#full + 1] = name end
  end
  for _, name in ipairs(full) do
    for sub, text in pairs(splitBucket(dedup.buckets[name])) do dedup.buckets[sub] = text end
    dedup.buckets[name] = SPLIT_MARK
  end
end

-- The entry size of a bucket name's entries.
local function entrySize(name) return string.find(name, '.', 1, true) and 8 or 10 end
