-- Pane formats shared by the window scripts (window state v3, see src/core/panes.ts for
-- the rule). Field names in a user's pane hash u:{<user>}:p:<type>:
--   s<second>, m<minute>, h<hour>         numeric pane: "c,n,s,mn,mx,lt,lv", then ",m2" (the
--                                         sum of squared deviations from the pane's mean) for
--                                         types with a variance or stddev tag (empty when not),
--                                         then ",ft,fv" (the oldest event's time and value) for
--                                         types with a first tag; or, for types with no
--                                         numeric tag, the count alone
--   <f>s<i>, <f>m<i>, <f>h<i>              value pane of field index f: "v\31n\31v\31n..."
--   <f>s<i>, <f>m<i>, <f>h<i> (f ≥ 150)    list pane of a last_k / first_k field: "ts\31v\31..."
--                                         (the pane's k newest or oldest events, best first);
--                                         of an approx_distinct field: the k smallest 12-hex-digit
--                                         hashes of its values, ascending, no separator
--   d<byte>                                dedup bucket of the event ids whose 6-byte fingerprint
--                                         starts with that byte: 10-byte entries (see dedup.lua)
--   F<f>                                   distinct values seen only ahead of `now`
--   T                                      the running totals and the type's meta (totals.lua)
--   V                                      the write counter: every write that adds events
--                                          moves it (applyFolds.lua writes only if it did not move)
--   C<spec>                                a count_by running total's value (totals.lua)
local PREFIX = { [1000] = 's', [60000] = 'm', [3600000] = 'h' }
-- Distinct-value members of a time index score field * DISTINCT_BASE + time.
local DISTINCT_BASE = 1e13

-- A pane index (an integer) as its field name's digits, as `..` writes it, without the
-- printf that `..` spends on a number (a read names up to dozens of panes): the digits of
-- n / 1000, kept between calls (they change once in 1,000 panes), then n % 1000's three.
-- DIGITS3[j] is j's three digits ('007'); a caller reads it as DIGITS3[j] or digits3(j).
local DIGITS3, HIGH_DIGITS, highCount = {}, {}, 0
local function digits3(j)
  local text = string.format('%03d', j)
  DIGITS3[j] = text
  return text
end
local function paneIndexText(n)
  local lo = n % 1000
  local hi = (n - lo) / 1000
  if hi <= 0 then return string.format('%d', n) end
  local low = DIGITS3[lo] or digits3(lo)
  local high = HIGH_DIGITS[hi]
  if not high then
    if highCount >= 4096 then HIGH_DIGITS, highCount = {}, 0 end
    high = string.format('%d', hi)
    HIGH_DIGITS[hi], highCount = high, highCount + 1
  end
  return high .. low
end

-- Whether the pane hash being read or written keeps a count-only type's one-second panes a
-- minute to a field (`S<minute>` = "<second>:<count>,..." for each second of the minute
-- that holds events, ascending; T says so, see parseMeta): set by each reader and writer of
-- a type before it names panes. The pane names stay `s<second>` everywhere else: only the
-- fetch (fetchFields), the write of new counts (writeType) and the deletes of a prune
-- (dropMemberPanes) turn them into S fields.
local SECONDS_FORM = false
local function useSecondsForm(on)
  SECONDS_FORM = on and true or false
end

-- The field S<minute> of a minute's one-second panes in the S form, by the minute's index
-- (src/core/panes.ts's secondsFieldOfMinute names it the same way; its secondsField takes a
-- second); names kept between calls: a read names a few of the same minutes.
local SECONDS_FIELDS, secondsFieldCount = {}, 0
local function secondsFieldOfMinute(minute)
  local name = SECONDS_FIELDS[minute]
  if not name then
    if secondsFieldCount >= 4096 then SECONDS_FIELDS, secondsFieldCount = {}, 0 end
    name = 'S' .. paneIndexText(minute)
    SECONDS_FIELDS[minute], secondsFieldCount = name, secondsFieldCount + 1
  end
  return name
end

-- The name of the one-second panes [lo, hi) (ms, within one minute) in the S form:
-- `S<minute>:<first second>:<second after the last>`, which fetchFields reads as the field
-- S<minute> cut to those seconds.
local function secondsName(lo, hi)
  local base = lo - lo % 60000
  return secondsFieldOfMinute(base / 60000) .. ':' .. (lo - base) / 1000 .. ':' .. (hi - base) / 1000
end

-- secondsName(lo, hi) for a caller that keeps the cuts apart: appends the field S<minute> to
-- `names` and its cut (position, first second, second after the last) to the flat list
-- `cuts`, which fetchFields then takes as they are (no name to build and parse back:
-- ~1 µs a name of the fast read).
local function addSecondsCut(names, cuts, lo, hi)
  local base = lo - lo % 60000
  local n = #names + 1
  names[n] = secondsFieldOfMinute(base / 60000)
  local c = #cuts
  cuts[c + 1], cuts[c + 2], cuts[c + 3] = n, (lo - base) / 1000, (hi - base) / 1000
end

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

-- Numeric pane {c, n, s, mn, mx, lt, lv, m2, ft, fv} from its stored text (count-only
-- panes: "c"; m2, ft and fv nil when the pane does not keep them).
local function parseNumeric(text)
  if not text then return nil end
  if not string.find(text, ',', 1, true) then return { c = tonumber(text) } end
  local parts = {}
  for x in string.gmatch(text .. ',', '([^,]*),') do parts[#parts + 1] = x end
  return { c = tonumber(parts[1]), n = tonumber(parts[2]), s = tonumber(parts[3]),
    mn = tonumber(parts[4]), mx = tonumber(parts[5]), lt = tonumber(parts[6]), lv = tonumber(parts[7]),
    m2 = tonumber(parts[8] or ''), ft = tonumber(parts[9] or ''), fv = tonumber(parts[10] or '') }
end

-- A histogram value field's bucket label of number x (spec: its decoded plan entry).
local function bucketOf(spec, x)
  for j = 1, #spec.edges do
    if x < spec.edges[j] then return spec.labels[j] end
  end
  return spec.labels[#spec.edges + 1]
end

-- A percentile value field's key of number x: its log bucket (src/core/sketch.ts), as text.
-- (the literal is read by strtod, as JavaScript and DuckDB read the same text: the same double)
local PERCENTILE_LOG_GAMMA = 0.020000666706669435
local function percentileKey(x)
  if x == 0 then return '0' end
  local i = 40000 + math.ceil(math.log(math.abs(x)) / PERCENTILE_LOG_GAMMA)
  return string.format('%d', x > 0 and i or -i)
end

-- An approx_distinct pane's text (12-hex-digit hashes, ascending, no separator) with the
-- hashes of `more` added, cut to the k smallest.
local function mergeSketch(text, more, k)
  local seen, all = {}, {}
  local function add(h)
    if not seen[h] then
      seen[h] = true
      all[#all + 1] = h
    end
  end
  if text then for j = 1, #text - 11, 12 do add(string.sub(text, j, j + 11)) end end
  for _, h in ipairs(more) do add(h) end
  table.sort(all)
  for j = #all, k + 1, -1 do all[j] = nil end
  return table.concat(all)
end

-- approx_distinct's value from the hashes of the panes covering its window (concatenated):
-- the count below k, else (k - 1) * 2^48 / (h_k + 1), h_k the k-th smallest (src/core/sketch.ts).
local function sketchEstimate(text, k)
  local seen, all = {}, {}
  for j = 1, #text - 11, 12 do
    local h = string.sub(text, j, j + 11)
    if not seen[h] then
      seen[h] = true
      all[#all + 1] = h
    end
  end
  if #all < k then return #all end
  table.sort(all)
  return math.floor((k - 1) * 281474976710656 / (tonumber(all[k], 16) + 1) + 0.5)
end

-- A list pane's text "ts\31v\31ts\31v..." -> entries {ts, v} appended to `into`.
local function parseList(text, into)
  into = into or {}
  if not text or text == '' then return into end
  local ts
  for x in string.gmatch(text, '[^\31]+') do
    if ts == nil then
      ts = tonumber(x)
    else
      into[#into + 1] = { ts, x }
      ts = nil
    end
  end
  return into
end

-- Entries {ts, v} in a list's order (newest: time descending, else ascending; equal times:
-- the larger value first, as numbers when `numeric`), cut to the first k.
local function orderList(entries, newest, numeric, k)
  table.sort(entries, function(a, b)
    if a[1] ~= b[1] then
      if newest then return a[1] > b[1] end
      return a[1] < b[1]
    end
    if numeric then return tonumber(a[2]) > tonumber(b[2]) end
    return a[2] > b[2]
  end)
  for i = #entries, k + 1, -1 do entries[i] = nil end
  return entries
end

-- Entries -> a list pane's text.
local function formatList(entries)
  local parts = {}
  for _, e in ipairs(entries) do
    parts[#parts + 1] = string.format('%d', e[1])
    parts[#parts + 1] = e[2]
  end
  return table.concat(parts, '\31')
end

-- The count of a numeric pane's text (its first number).
local function paneCount(text)
  local n = tonumber(text) -- a count-only pane (the common case); nil for a numeric pane's text
  if n then return n end
  local comma = string.find(text, ',', 1, true)
  return tonumber(comma and string.sub(text, 1, comma - 1) or text)
end

-- Folds pane b into pane a (both numeric panes; a is changed and returned). m2 merges by
-- Chan's rule (exact in exact arithmetic, stable in floating point); it stays nil (not
-- known) once a pane with values but without it was merged.
local function mergeNumeric(a, b)
  a.c = a.c + b.c
  if b.n and b.n > 0 then
    if not a.n or a.n == 0 then
      a.n, a.s, a.mn, a.mx, a.lt, a.lv, a.m2, a.ft, a.fv = b.n, b.s, b.mn, b.mx, b.lt, b.lv, b.m2, b.ft, b.fv
    else
      if a.ft and b.ft then
        if b.ft < a.ft or (b.ft == a.ft and b.fv > a.fv) then a.ft, a.fv = b.ft, b.fv end
      else
        a.ft, a.fv = nil, nil
      end
      if a.m2 and b.m2 then
        local delta = b.s / b.n - a.s / a.n
        a.m2 = a.m2 + b.m2 + delta * delta * a.n * b.n / (a.n + b.n)
      else
        a.m2 = nil
      end
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
  local text = string.format('%d,%d,%.17g,%.17g,%.17g,%d,%.17g', p.c, p.n, p.s, p.mn, p.mx, p.lt, p.lv)
  if p.m2 or p.ft then text = text .. (p.m2 and string.format(',%.17g', p.m2) or ',') end
  if p.ft then text = text .. string.format(',%d,%.17g', p.ft, p.fv) end
  return text
end

-- Value pane text ("v\31n\31...") -> {value = count}, folded into `into` with `sign` (1 or -1).
local function addValues(into, text, sign)
  if not text then return into end
  local key = nil
  for x in string.gmatch(text, '[^\31]+') do
    if key == nil then
      key = x
    else
      into[key] = (into[key] or 0) + (sign or 1) * tonumber(x)
      key = nil
    end
  end
  return into
end

-- {value = count} -> value pane text (values whose count is not positive are left out).
local function formatValues(counts)
  local parts = {}
  for k, n in pairs(counts) do
    if n > 0 then
      parts[#parts + 1] = k
      parts[#parts + 1] = n
    end
  end
  return table.concat(parts, '\31')
end

-- [from, to) (ms): the event times a tag with window w and resolution r counts at `now`
-- (the pane rule: the w / r panes of r ending with now's pane).
local function windowRange(w, r, now)
  local start = now - now % r -- now's pane's start (% floors: no math.floor call)
  return start - w + r, start + r
end

-- In the S form (see secondsName), each name `S<minute>:<a>:<b>` of `names` becomes its
-- field's, S<minute>; returns {position, a, b, ...} of those cuts (a bare S<minute> is
-- fetched as it is).
local SECOND_KEY, SECOND_HEAD = {}, {}
for s = 0, 59 do SECOND_KEY[s], SECOND_HEAD[s] = ',' .. s .. ':', s .. ':' end
local function cutSecondsNames(names)
  local cuts, n = {}, 0
  for i = 1, #names do
    if string.byte(names[i], 1) == 83 then
      local field, a, b = string.match(names[i], '^(S%d+):(%d+):(%d+)$')
      if field then
        names[i] = field
        cuts[n + 1], cuts[n + 2], cuts[n + 3] = i, tonumber(a), tonumber(b)
        n = n + 3
      end
    end
  end
  return cuts
end

-- The count of seconds a..b-1 in an S<minute> field's text (nil or false: none), whose
-- entries are sorted by second. Each way is the cheapest where it is used (measured in
-- Redis on a busy minute's 57 entries): up to 3 seconds, a plain search (in C) for each;
-- a cut that starts past a third of its end, a plain search for the first entry at or
-- after a, then only the entries before b are parsed (seconds 20-24: 5.3 -> 2.1 µs, 55-59:
-- 10.9 -> 2.6; a read subtracts such cuts on most calls); else one pattern loop over the
-- entries up to b (parsing an entry costs it ~2/3 of what the search-and-parse way does).
local function secondsCount(text, a, b)
  if not text then return 0 end
  local count = 0
  if b - a <= 3 then
    for s = a, b - 1 do
      local head, e = SECOND_HEAD[s], nil
      if string.sub(text, 1, #head) == head then
        e = #head
      else
        local _, at = string.find(text, SECOND_KEY[s], 1, true)
        e = at
      end
      if e then count = count + tonumber(string.match(text, '^%d+', e + 1)) end
    end
  elseif 3 * a >= b then
    local first = tonumber(string.match(text, '^%d+'))
    if not first or first >= b then return 0 end
    local pos = first >= a and 1 or nil
    if not pos then
      for s = a, b - 1 do
        local at = string.find(text, SECOND_KEY[s], 2, true)
        if at then
          pos = at + 1
          break
        end
      end
      if not pos then return 0 end
    end
    while true do
      local s, c, e = string.match(text, '^(%d+):(%d+)()', pos)
      if not s or tonumber(s) >= b then break end
      count = count + tonumber(c)
      pos = e + 1
    end
  else
    for s, c in string.gmatch(text, '(%d+):(%d+)') do
      s = tonumber(s)
      if s >= b then break end
      if s >= a then count = count + c end
    end
  end
  return count
end

-- HMGET of `names` (chunked: unpack() of a long list would overflow Lua's C stack): the
-- values in the same order, false for a missing field. In the S form, a name
-- `S<minute>:<a>:<b>` reads as the count of those seconds (false when none holds an event),
-- and `names` is changed (cutSecondsNames); or, with `cuts` (addSecondsCut's), the fields
-- at those positions are read as the counts of their cuts.
local function fetchFields(hashKey, names, cuts)
  local out = {}
  if #names == 0 then return out end
  cuts = cuts or (SECONDS_FORM and cutSecondsNames(names))
  -- (A missing field reads false, which out keeps: one HMGET's reply is already the list.)
  if #names <= 1000 then
    out = redis.call('HMGET', hashKey, unpack(names))
  else
    for first = 1, #names, 1000 do
      local got = redis.call('HMGET', hashKey, unpack(names, first, math.min(first + 999, #names)))
      for i = 1, #got do out[first + i - 1] = got[i] or false end
    end
  end
  if cuts then
    for k = 1, #cuts, 3 do
      local i = cuts[k]
      local count = secondsCount(out[i], cuts[k + 1], cuts[k + 2])
      out[i] = count > 0 and count or false
    end
  end
  return out
end

-- An S<minute> field's text (nil or false: none) -> {second of the minute = count}.
local function parseSeconds(text)
  local out = {}
  if text then
    for sec, c in string.gmatch(text, '(%d+):(%d+)') do out[tonumber(sec)] = tonumber(c) end
  end
  return out
end

-- {second of the minute = count} -> an S<minute> field's text ('' when no count is left).
local function formatSeconds(counts)
  local parts = {}
  for sec = 0, 59 do
    local c = counts[sec]
    if c and c > 0 then parts[#parts + 1] = SECOND_HEAD[sec] .. string.format('%d', c) end
  end
  return table.concat(parts, ',')
end

-- Moves the one-second panes s<second> of a count-only type's pane hash (of the minutes
-- its time index holds) into S<minute> fields, and returns T's text `meta` marked so
-- (written too). Run once per hash, by its first write of this version (writeType).
local function convertToSecondsForm(paneKey, indexKey, meta)
  local sets, drops = {}, {}
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', indexKey, '-inf', '(' .. DISTINCT_BASE)) do
    if string.byte(member, 1) == 109 then -- m<minute>
      local m = tonumber(string.sub(member, 2))
      local names = {}
      for sec = m * 60, m * 60 + 59 do names[#names + 1] = 's' .. sec end
      local got = redis.call('HMGET', paneKey, unpack(names))
      local counts = {}
      for k = 1, 60 do
        if got[k] then
          counts[k - 1] = paneCount(got[k]) -- (a type that kept more has only its counts read now)
          drops[#drops + 1] = names[k]
        end
      end
      local text = formatSeconds(counts)
      if text ~= '' then
        sets[#sets + 1] = secondsFieldOfMinute(m)
        sets[#sets + 1] = text
      end
    end
  end
  for i = 1, #sets, 500 do redis.call('HSET', paneKey, unpack(sets, i, math.min(i + 499, #sets))) end
  for i = 1, #drops, 500 do redis.call('HDEL', paneKey, unpack(drops, i, math.min(i + 499, #drops))) end
  local head = string.match(meta, '^[^\30]*')
  meta = head .. 'S' .. string.sub(meta, #head + 1)
  redis.call('HSET', paneKey, 'T', meta)
  return meta
end
