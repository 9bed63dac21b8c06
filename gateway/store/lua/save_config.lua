-- save_config: replace a campaign document unless someone changed it since it was read.
-- KEYS[1]  campaign config hash (fields: json, ver)
-- ARGV[1]  the new document (JSON)
-- ARGV[2]  the version the edit was based on
-- Returns 1 when saved (ver is bumped, which tells every worker's click cache to reload),
-- 0 when the stored version differs (the caller reports a conflict).
local current = tonumber(redis.call('HGET', KEYS[1], 'ver') or '0')
if current ~= tonumber(ARGV[2]) then
  return 0
end
redis.call('HSET', KEYS[1], 'json', ARGV[1], 'ver', current + 1)
return 1
