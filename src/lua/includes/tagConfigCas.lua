-- tagConfigRefusal(key, expected, version): why a change of the active tag config in the
-- config hash `key` (cfg:{tags}) may not go on: 0 when the active version is no longer
-- `expected` (the caller planned against another: another apply ran), -1 when `version`'s
-- document is not recorded; nil when it may.
local function tagConfigRefusal(key, expected, version)
  if (redis.call('HGET', key, 'active') or '') ~= expected then return 0 end
  if redis.call('HEXISTS', key, 'doc:' .. version) == 0 then return -1 end
  return nil
end
