-- raise_flag: open a flag for a subject, or update the open one; a decided flag stays decided.
-- Indexes the flag's amount at stake (_stake.lua) in the same step.
-- KEYS[1]  the flag hash (its id derives from kind and subject, so one flag per subject)
-- KEYS[2]  campaign's flags sorted set (id -> created time)
-- KEYS[3]  campaign's open flags sorted set (id -> score)
-- KEYS[4]  outbox stream (webhook events): a newly raised flag adds 'flag.raised'
-- KEYS[5]  flags by amount at stake   KEYS[6] open flags by amount at stake
-- KEYS[7]  cluster index hash (member -> cluster flag ids)
-- KEYS[8]  click conversions hash (click id -> participants who converted on it)
-- KEYS[9..] what the amount at stake is read from: ARGV[11] referrers' reward totals hashes
--           (a referrer, a cluster's members), then reward hashes (a participant, the
--           conversions of a click, a cluster's members)
-- ARGV[1]  flag id   ARGV[2] campaign slug   ARGV[3] kind   ARGV[4] subject
-- ARGV[5]  score     ARGV[6] reasons JSON    ARGV[7] members JSON   ARGV[8] evidence JSON
-- ARGV[9]  now (unix seconds)     ARGV[10] the 'flag.raised' event's data JSON
-- ARGV[11] how many of KEYS[9..] are totals hashes
-- ARGV[12] a click flag's conversions as the caller read them from KEYS[8] ('' for none);
--          when they changed meanwhile nothing is written and the reply is {0, 'retry'}
-- Returns {1 when newly raised else 0, the flag's status}.
-- include: _stake.lua
if ARGV[3] == 'click' and (redis.call('HGET', KEYS[8], ARGV[4]) or '') ~= ARGV[12] then
  return {0, 'retry'}
end
local status = redis.call('HGET', KEYS[1], 'status')
if status and status ~= 'open' then
  return {0, status}
end
redis.call('HSET', KEYS[1],
  'score', ARGV[5], 'reasons', ARGV[6], 'members', ARGV[7], 'evidence', ARGV[8],
  'updated_at', ARGV[9])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
local new = 0
if not status then
  new = 1
  redis.call('HSET', KEYS[1],
    'id', ARGV[1], 'campaign', ARGV[2], 'kind', ARGV[3], 'subject', ARGV[4],
    'status', 'open', 'created_at', ARGV[9])
  redis.call('ZADD', KEYS[2], ARGV[9], ARGV[1])
  redis.call('XADD', KEYS[4], '*', 'event', 'flag.raised', 'data', ARGV[10])
end
local totals, rewards = {}, {}
for i = 9, #KEYS do
  if i - 8 <= tonumber(ARGV[11]) then
    totals[#totals + 1] = KEYS[i]
  else
    rewards[#rewards + 1] = KEYS[i]
  end
end
_stake_index(KEYS[1], KEYS[5], KEYS[6], KEYS[7], totals, rewards)
return {new, 'open'}
