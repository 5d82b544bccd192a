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

--@include realtimeHash

local now, longest = tonumber(ARGV[1]), tonumber(ARGV[2])

-- One record's types, parsed from ARGV at position a; returns them and the next position.
local function parseTypes(a, n)
  local types = {}
  for _ = 1, n do
    local t = { key = tonumber(ARGV[a]), version = ARGV[a + 1], name = ARGV[a + 2], newest = ARGV[a + 3] }
    a = a + 4
    local lists = {}
    for l = 1, 3 do
      local m = tonumber(ARGV[a])
      lists[l] = { a + 1, a + m }
      a = a + m + 1
    end
    t.writes, t.drops, t.members = lists[1], lists[2], lists[3]
    t.ttl, t.expireIn = ARGV[a], tonumber(ARGV[a + 1])
    types[#types + 1] = t
    a = a + 2
  end
  return types, a
end

-- True when no other writer changed any of the types since the consumer read them.
local function unchanged(types)
  for _, t in ipairs(types) do
    local p = KEYS[t.key]
    if t.version == '' then
      if rcall('EXISTS', p, KEYS[t.key + 1], KEYS[t.key + 2]) > 0 then return false end
    elseif rcall('HGET', p, 'V') ~= t.version then
      return false
    end
  end
  return true
end

local function apply(t)
  local p, index = KEYS[t.key], KEYS[t.key + 1]
  local w, d, m = t.writes, t.drops, t.members
  for first = w[1], w[2], 1000 do rcall('HSET', p, unpack(ARGV, first, math.min(first + 999, w[2]))) end
  for first = d[1], d[2], 1000 do rcall('HDEL', p, unpack(ARGV, first, math.min(first + 999, d[2]))) end
  for first = m[1], m[2], 1000 do rcall('ZADD', index, 'GT', unpack(ARGV, first, math.min(first + 999, m[2]))) end
  if t.ttl == 'GT' then
    rcall('PEXPIRE', p, t.expireIn, 'GT')
    rcall('PEXPIRE', index, t.expireIn, 'GT')
  elseif t.ttl == 'SET' then
    rcall('PEXPIRE', p, t.expireIn)
    rcall('PEXPIRE', index, t.expireIn)
  end
end

local refused = {}
local a, position = 3, 0
while a <= #ARGV do
  position = position + 1
  local rtKey, newestBefore, n = KEYS[tonumber(ARGV[a])], ARGV[a + 1], tonumber(ARGV[a + 2])
  local types
  types, a = parseTypes(a + 3, n)
  if unchanged(types) then
    for _, t in ipairs(types) do apply(t) end
    local seen, newest = {}, 0
    for _, t in ipairs(types) do
      if t.newest ~= '' then
        seen[#seen + 1] = t.name
        seen[#seen + 1] = t.newest
        newest = math.max(newest, tonumber(t.newest))
      end
    end
    if #seen > 0 then touchRealtime(rtKey, seen, newest, tonumber(newestBefore) or math.huge, now, longest) end
  else
    refused[#refused + 1] = position
  end
end
return refused
