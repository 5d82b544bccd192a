-- Pane helpers shared by updateWindows.lua and readProfile.lua (window state v2, see
-- src/core/panes.ts for the rule). Field names in a user's pane hash u:{<user>}:p:<type>:
--   s<second>, m<minute>, h<hour>         numeric pane: "c,n,s,mn,mx,lt,lv" or, for types
--                                         with no numeric tag, the count alone
--   <f>s<i>, <f>m<i>, <f>h<i>              value pane of field index f: "v\31n\31v\31n..."
--   d<second>                              dedup bucket: 6-byte event-id fingerprints
local PREFIX = { [1000] = 's', [60000] = 'm', [3600000] = 'h' }

-- The field at 1-based position idx of a "\31"-packed value list ('' when absent).
local function packedField(packed, idx)
  local start = 1
  for _ = 2, idx do
    local sep = string.find(packed, '\31', start, true)
    if not sep then return '' end
    start = sep + 1
  end
  local sep = string.find(packed, '\31', start, true)
  return string.sub(packed, start, sep and sep - 1 or -1)
end

-- A comma-separated list of numbers (parsed once per distinct text in a call).
local numberLists = {}
local function numberList(csv)
  local out = numberLists[csv]
  if out then return out end
  out = {}
  for x in string.gmatch(csv, '[^,]+') do out[#out + 1] = tonumber(x) end
  numberLists[csv] = out
  return out
end

-- Numeric pane {c, n, s, mn, mx, lt, lv} from its stored text (count-only panes: "c").
local function parseNumeric(text)
  if not text then return nil end
  if not string.find(text, ',', 1, true) then return { c = tonumber(text) } end
  local parts = {}
  for x in string.gmatch(text, '[^,]+') do parts[#parts + 1] = x end
  if #parts == 1 then return { c = tonumber(parts[1]) } end
  return { c = tonumber(parts[1]), n = tonumber(parts[2]), s = tonumber(parts[3]),
    mn = tonumber(parts[4]), mx = tonumber(parts[5]), lt = tonumber(parts[6]), lv = tonumber(parts[7]) }
end

-- Folds pane b into pane a (both numeric panes; a is changed and returned).
local function mergeNumeric(a, b)
  a.c = a.c + b.c
  if b.n and b.n > 0 then
    if not a.n or a.n == 0 then
      a.n, a.s, a.mn, a.mx, a.lt, a.lv = b.n, b.s, b.mn, b.mx, b.lt, b.lv
    else
      a.n = a.n + b.n
      a.s = a.s + b.s
      if b.mn < a.mn then a.mn = b.mn end
      if b.mx > a.mx then a.mx = b.mx end
      if b.lt > a.lt or (b.lt == a.lt and b.lv > a.lv) then a.lt, a.lv = b.lt, b.lv end
    end
  end
  return a
end

local function formatNumeric(p)
  if not p.n or p.n == 0 then return p.c .. ',0,0,0,0,0,0' end
  return string.format('%d,%d,%.17g,%.17g,%.17g,%d,%.17g', p.c, p.n, p.s, p.mn, p.mx, p.lt, p.lv)
end

-- Value pane text -> {value = count}, folded into `into`.
local function addValues(into, text)
  if not text then return into end
  local key = nil
  for x in string.gmatch(text, '[^\31]+') do
    if key == nil then
      key = x
    else
      into[key] = (into[key] or 0) + tonumber(x)
      key = nil
    end
  end
  return into
end

local function formatValues(counts)
  local parts = {}
  for k, n in pairs(counts) do
    parts[#parts + 1] = k
    parts[#parts + 1] = n
  end
  return table.concat(parts, '\31')
end
