-- swap_field: compare and set one hash field, for read-modify-write of a JSON document stored in
-- a hash field (WATCH is not available through a cluster client's pipeline).
--
-- KEYS[1]  the hash
-- ARGV[1]  the field   ARGV[2] the value the caller read   ARGV[3] the new value
-- Returns 1 when set, 0 when the field changed meanwhile or is gone (read again and retry).
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
