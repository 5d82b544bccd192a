-- keyExpiry(t, longest): when keys whose newest event is at `t` (ms) may expire: once it
-- has left the longest window `longest`, plus the minute pruning rounds to, rounded up to
-- a step of 2^k minutes, the largest with 60 steps within the window (1 min for an hour's
-- window, 16 min for a day's). Writers move an expiry only when this value moves (PEXPIRE
-- GT), so a day's keys have theirs moved every 16 minutes, not every minute; a key
-- outlives its window by less than a minute plus a step. Steps divide one another, so a
-- longer window never expires first: the realtime hash (the longest window of all) outlives
-- every pane key. Same rule as keyExpiry in src/consumers/typeFold.ts.
local function keyExpiry(t, longest)
  local step = 60000
  while step * 120 <= longest do step = step * 2 end
  return math.ceil((t + longest + 60000) / step) * step
end
