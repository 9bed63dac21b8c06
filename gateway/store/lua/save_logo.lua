-- save_logo: replace a campaign document and its logo together, unless the document changed since
-- it was read (as save_config does), so a saved document never names a logo that is not stored.
-- KEYS[1]  campaign config hash (fields: json, ver)
-- KEYS[2]  campaign logo (string: the image bytes)
-- ARGV[1]  the new document (JSON)
-- ARGV[2]  the version the edit was based on
-- ARGV[3]  the logo's bytes, or '' to remove the logo
-- Returns 1 when saved (ver is bumped), 0 when the stored version differs.
local current = tonumber(redis.call('HGET', KEYS[1], 'ver') or '0')
if current ~= tonumber(ARGV[2]) then
  return 0
end
redis.call('HSET', KEYS[1], 'json', ARGV[1], 'ver', current + 1)
if ARGV[3] == '' then
  redis.call('DEL', KEYS[2])
else
  redis.call('SET', KEYS[2], ARGV[3])
end
return 1
