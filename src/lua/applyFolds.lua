--[[
  Writes window state the consumer folded itself (src/consumers/typeFold.ts) for many
  users at once, each user only if nothing it read has changed since: every type's write
  counter V is still what the consumer read (for a new type: none of its keys exists).
  A user that fails the check is left untouched and named in the reply; the consumer
  folds it again with updateWindows.lua, which dedups by event id, so nothing is lost or
  counted twice. Cost per user: one HGET per type, then HSET, ZADD and what expiry needs.

  Input:
    KEYS, per user, at the indexes its ARGV record gives: the realtime hash
      u:{<user>}:rt, then per type: pane hash u:{<user>}:p:<type>, time index
      u:{<user>}:t:<type>, v1 window set u:{<user>}:w:<type>
    ARGV[1] now (ms)
    ARGV[2] the longest window of any type (ms): the realtime hash's lifetime
    then one record per user:
      KEYS index of its realtime hash, newest event time before the call ('' when a type
      of the call had none), the number of types n, then per type: KEYS index of its pane
      hash, the V read ('' for a new type), the type's name, its newest event time after
      the call, then counts and lists: field/value pairs to HSET, fields to HDEL,
      score/member pairs to ZADD GT; then the expiry mode ('' none, 'GT' or 'SET') and the
      keys' expiry (ms from now)

  Output: {user position, ...}: the 1-based positions of the records not written.
]]
local rcall = redis.call

--@include expiry
--@include realtimeHash

local now, longest = tonumber(ARGV[1]), tonumber(ARGV[2])

-- `cmd key [extra] ARGV[from..to]`, in calls of at most 1000 arguments.
local function callRange(cmd, key, extra, from, to)
  for first = from, to, 1000 do
    local last = math.min(first + 999, to)
    if extra then rcall(cmd, key, extra, unpack(ARGV, first, last)) else rcall(cmd, key, unpack(ARGV, first, last)) end
  end
end

-- The position after a type record that starts at ARGV[b] (its three counted lists, then
-- the expiry mode and time).
local function skipType(b)
  b = b + 4
  for _ = 1, 3 do b = b + tonumber(ARGV[b]) + 1 end
  return b + 2
end

-- True when no other writer changed any of the n types (records from ARGV[b]) since the
-- consumer read them: V as read, or for a new type none of its keys.
local function unchanged(b, n)
  for _ = 1, n do
    local k, version = tonumber(ARGV[b]), ARGV[b + 1]
    if version == '' then
      if rcall('EXISTS', KEYS[k], KEYS[k + 1], KEYS[k + 2]) > 0 then return false end
    elseif rcall('HGET', KEYS[k], 'V') ~= version then
      return false
    end
    b = skipType(b)
  end
  return true
end

-- Writes the type record at ARGV[b]; returns the position after it, its name and newest time.
local function apply(b)
  local k = tonumber(ARGV[b])
  local p, index, name, newest = KEYS[k], KEYS[k + 1], ARGV[b + 2], ARGV[b + 3]
  b = b + 4
  local m = tonumber(ARGV[b])
  if m > 0 then callRange('HSET', p, nil, b + 1, b + m) end
  b = b + m + 1
  m = tonumber(ARGV[b])
  if m > 0 then callRange('HDEL', p, nil, b + 1, b + m) end
  b = b + m + 1
  m = tonumber(ARGV[b])
  if m > 0 then callRange('ZADD', index, 'GT', b + 1, b + m) end
  b = b + m + 1
  local ttl, expireIn = ARGV[b], ARGV[b + 1]
  if ttl == 'GT' then
    rcall('PEXPIRE', p, expireIn, 'GT')
    rcall('PEXPIRE', index, expireIn, 'GT')
  elseif ttl == 'SET' then
    rcall('PEXPIRE', p, expireIn)
    rcall('PEXPIRE', index, expireIn)
  end
  return b + 2, name, newest
end

local refused = {}
local a, position, nargs = 3, 0, #ARGV
while a <= nargs do
  position = position + 1
  local rtKey, newestBefore, n = KEYS[tonumber(ARGV[a])], ARGV[a + 1], tonumber(ARGV[a + 2])
  local b = a + 3
  if unchanged(b, n) then
    local seen, newest = nil, 0
    for _ = 1, n do
      local name, t
      b, name, t = apply(b)
      if t ~= '' then
        seen = seen or {}
        seen[#seen + 1] = name
        seen[#seen + 1] = t
        t = tonumber(t)
        if t > newest then newest = t end
      end
    end
    if seen then touchRealtime(rtKey, seen, newest, tonumber(newestBefore) or math.huge, now, longest) end
  else
    refused[#refused + 1] = position
    for _ = 1, n do b = skipType(b) end
  end
  a = b
end
return refused
