-- mint: the numeric id and current link generation of a referrer, assigning an id on first use.
-- Numeric ids keep share tokens short; the external id never appears in a token.
-- KEYS[1]  referrer-index hash      (external id -> numeric id)
-- KEYS[2]  referrer-external hash   (numeric id -> external id)
-- KEYS[3]  referrer-generation hash (numeric id -> generation)
-- KEYS[4]  campaign counters hash   (field referrer_seq allocates ids)
-- ARGV[1]  external referrer id
-- Returns {numeric id, generation, 1 when the id was assigned now else 0} (gateway.sharelinks
-- then adds the campaign to the person's campaigns: keys.person_campaigns, outside this slot).
local id = redis.call('HGET', KEYS[1], ARGV[1])
local new = 0
if not id then
  new = 1
  id = redis.call('HINCRBY', KEYS[4], 'referrer_seq', 1)
  redis.call('HSET', KEYS[1], ARGV[1], id)
  redis.call('HSET', KEYS[2], id, ARGV[1])
end
local generation = tonumber(redis.call('HGET', KEYS[3], id) or '0')
return {tonumber(id), generation, new}
