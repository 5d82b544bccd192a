-- What a read asks for (GET /profile?tags=…): the window tags to evaluate and the offline
-- fields to read.

-- The set {name = true} of the window tags named in `list` (','-separated), or nil for
-- '*' (every tag).
local function tagSelection(list)
  if list == nil or list == '*' then return nil end
  local only = {}
  for name in string.gmatch(list, '[^,]+') do only[name] = true end
  return only
end

-- Whether a read with selection `only` evaluates any tag of type tp.
local function typeSelected(tp, only)
  if not only then return true end
  for _, tag in ipairs(tp.tags) do
    if only[tag.name] then return true end
  end
  return false
end

-- The offline hash flat as HGETALL answers it: every field for '*', else only the fields
-- named in `list` ('\31'-separated) that exist.
local function offlineFields(offKey, list)
  if list == nil or list == '*' then return redis.call('HGETALL', offKey) end
  local names = {}
  for name in string.gmatch(list, '[^\31]+') do names[#names + 1] = name end
  if #names == 0 then return {} end
  local got = redis.call('HMGET', offKey, unpack(names))
  local out = {}
  for i, name in ipairs(names) do
    if got[i] then
      out[#out + 1] = name
      out[#out + 1] = got[i]
    end
  end
  return out
end
