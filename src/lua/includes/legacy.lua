-- foldLegacy(types): v1 window data of a user (one sorted-set member and one value-hash
-- field per event, before panes) is put in front of the events of its type, with
-- fingerprints as the consumer makes them (the first 6 bytes of SHA-1 of the event id), so
-- it goes through the same dedup; then it is deleted. One EXISTS for all the user's types.
-- types[i].keys = {pane hash, time index, v1 set, v1 value hash}.
local function foldLegacy(types)
  local sets = {}
  for _, t in ipairs(types) do sets[#sets + 1] = t.keys[3] end
  if #sets == 0 or redis.call('EXISTS', unpack(sets)) == 0 then return end
  for _, t in ipairs(types) do
    local flat = redis.call('ZRANGE', t.keys[3], 0, -1, 'WITHSCORES')
    if #flat > 0 then
      local v1 = {}
      for i = 1, #flat, 2 do
        local id = flat[i]
        local hex = string.sub(redis.sha1hex(id), 1, 12)
        local fp = string.gsub(hex, '..', function(h) return string.char(tonumber(h, 16)) end)
        v1[#v1 + 1] = { ts = tonumber(flat[i + 1]), fp = fp, packed = redis.call('HGET', t.keys[4], id) or '' }
      end
      for _, e in ipairs(t.events) do v1[#v1 + 1] = e end
      t.events = v1
      redis.call('DEL', t.keys[3], t.keys[4])
    end
  end
end
