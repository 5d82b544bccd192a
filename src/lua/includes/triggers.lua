-- Trigger conditions on a user's state at `now`. `trig` is the trigger plan (see
-- WindowWriter in src/consumers/windowWriter.ts): the plan types whose tags the conditions
-- read (`types`), those tags (`tags`, a set), the offline tags they read (`offline`), and
-- the triggers, each {name, when = {{tag, op, value}, ...}}.

local HOLDS = {
  ['>='] = function(x, v) return x >= v end, ['>'] = function(x, v) return x > v end,
  ['<='] = function(x, v) return x <= v end, ['<'] = function(x, v) return x < v end,
  ['=='] = function(x, v) return x == v end, ['!='] = function(x, v) return x ~= v end,
}

-- Every trigger: {name, all (every condition holds), record (the firing: trigger, now,
-- eventId, then each condition's tag and value)}. typeKeys[i] = {pane hash, time index}
-- of plan type i; a tag without a value holds nothing.
local function triggerStates(typeKeys, plan, trig, offKey, now, eventId)
  local values, flat = {}, {}
  local sketchK = {}
  for _, ti in ipairs(trig.types) do
    local tp = planType(plan, ti)
    typeTagValues(typeKeys[ti][1], typeKeys[ti][2], tp, now, trig.tags, flat, true)
    for _, tag in ipairs(tp.tags) do if tag.agg == 'approx_distinct' then sketchK[tag.name] = tag.top end end
  end
  for i = 1, #flat, 2 do
    local k = sketchK[flat[i]]
    local v = flat[i + 1]
    if k then values[flat[i]] = sketchEstimate(type(v) == 'table' and table.concat(v) or v, k) else values[flat[i]] = tonumber(v) end
  end
  if #trig.offline > 0 then
    local off = redis.call('HMGET', offKey, unpack(trig.offline))
    for i, name in ipairs(trig.offline) do values[name] = tonumber(off[i]) end
  end
  local out = {}
  for _, t in ipairs(trig.triggers) do
    local state = { name = t.name, all = true, record = { t.name, now, eventId } }
    for _, c in ipairs(t.when) do
      local x = values[c[1]]
      if x == nil or not HOLDS[c[2]](x, tonumber(c[3])) then state.all = false end
      state.record[#state.record + 1] = c[1]
      state.record[#state.record + 1] = x == nil and '' or tostring(x)
    end
    out[#out + 1] = state
  end
  return out
end
