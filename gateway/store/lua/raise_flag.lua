-- raise_flag: open a flag for a subject, or update the open one; a decided flag stays decided.
-- KEYS[1]  the flag hash (its id derives from kind and subject, so one flag per subject)
-- KEYS[2]  campaign's flags sorted set (id -> created time)
-- KEYS[3]  campaign's open flags sorted set (id -> score)
-- KEYS[4]  outbox stream (webhook events): a newly raised flag adds 'flag.raised'
-- ARGV[1]  flag id   ARGV[2] campaign slug   ARGV[3] kind   ARGV[4] subject
-- ARGV[5]  score     ARGV[6] reasons JSON    ARGV[7] members JSON   ARGV[8] evidence JSON
-- ARGV[9]  now (unix seconds)     ARGV[10] the 'flag.raised' event's data JSON
-- Returns {1 when newly raised else 0, the flag's status}.
local status = redis.call('HGET', KEYS[1], 'status')
if status and status ~= 'open' then
  return {0, status}
end
redis.call('HSET', KEYS[1],
  'score', ARGV[5], 'reasons', ARGV[6], 'members', ARGV[7], 'evidence', ARGV[8],
  'updated_at', ARGV[9])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
if status then
  return {0, 'open'}
end
redis.call('HSET', KEYS[1],
  'id', ARGV[1], 'campaign', ARGV[2], 'kind', ARGV[3], 'subject', ARGV[4],
  'status', 'open', 'created_at', ARGV[9])
redis.call('ZADD', KEYS[2], ARGV[9], ARGV[1])
redis.call('XADD', KEYS[4], '*', 'event', 'flag.raised', 'data', ARGV[10])
return {1, 'open'}
