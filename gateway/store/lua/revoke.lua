-- revoke: invalidate every link minted so far for one referrer by bumping its generation.
-- Tokens carry the generation they were minted with; the click path compares it to this one.
-- KEYS[1]  referrer-index hash      (external id -> numeric id)
-- KEYS[2]  referrer-generation hash (numeric id -> generation)
-- KEYS[3]  referrer-revoked hash (numeric id -> 1 until a link is minted again): the sharer's
--          invite code names the sharer, not a link, and leads nowhere meanwhile
-- ARGV[1]  external referrer id
-- Returns the new generation, or -1 when the referrer never had a link.
local id = redis.call('HGET', KEYS[1], ARGV[1])
if not id then
  return -1
end
redis.call('HSET', KEYS[3], id, '1')
return redis.call('HINCRBY', KEYS[2], id, 1)
