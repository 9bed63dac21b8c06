-- settle_reward: move one conversion's reward after a flag or a review, as a ledger entry.
-- Allowed moves: credited -> held (a flag touched it), held -> credited (reviewed legit),
-- credited -> clawed_back and held -> denied (reviewed fraud). History is never edited: every
-- move appends to the ledger, and amounts move between the budget's spent and held.
-- KEYS[1]  the reward hash   KEYS[2] budget hash   KEYS[3] the referrer's reward totals hash
-- KEYS[4]  ledger stream     KEYS[5] top sharers sorted set   KEYS[6] outbox stream
-- KEYS[7]  flags by amount at stake   KEYS[8] open flags by amount at stake
-- KEYS[9]  cluster index hash (member -> cluster flag ids)
-- ARGV[1]  hold | release | fraud   ARGV[2] reason   ARGV[3] now   ARGV[4] flag id
-- ARGV[5..7] the ids of the flags this reward is at stake in, whether raised or not: the
--          participant's own, the referrer's and the click's (and, from KEYS[9], clusters)
-- Returns the new status, or '' when the reward was in no state this action moves.
-- Holding and releasing keep the amount at stake (credited and held both are); a fraud review
-- takes it out of every flag's amount (_stake.lua).
-- include: _stake.lua
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return '' end
local amount = tonumber(redis.call('HGET', KEYS[1], 'amount') or '0')
local referrer = redis.call('HGET', KEYS[1], 'referrer')
local action = ARGV[1]
local new
if action == 'hold' and status == 'credited' then
  new = 'held'
  redis.call('HINCRBY', KEYS[2], 'spent', -amount)
  redis.call('HINCRBY', KEYS[2], 'held', amount)
  redis.call('HINCRBY', KEYS[3], 'credited', -amount)
  redis.call('HINCRBY', KEYS[3], 'held', amount)
  redis.call('ZINCRBY', KEYS[5], -1, referrer)
elseif action == 'release' and status == 'held' then
  new = 'credited'
  redis.call('HINCRBY', KEYS[2], 'held', -amount)
  redis.call('HINCRBY', KEYS[2], 'spent', amount)
  redis.call('HINCRBY', KEYS[3], 'held', -amount)
  redis.call('HINCRBY', KEYS[3], 'credited', amount)
  redis.call('ZINCRBY', KEYS[5], 1, referrer)
elseif action == 'fraud' and status == 'credited' then
  new = 'clawed_back'
  redis.call('HINCRBY', KEYS[2], 'spent', -amount)
  redis.call('HINCRBY', KEYS[3], 'credited', -amount)
  redis.call('ZINCRBY', KEYS[5], -1, referrer)
elseif action == 'fraud' and status == 'held' then
  new = 'denied'
  redis.call('HINCRBY', KEYS[2], 'held', -amount)
  redis.call('HINCRBY', KEYS[3], 'held', -amount)
else
  return ''
end
redis.call('HSET', KEYS[1], 'status', new, 'reason', ARGV[2], 'settled_at', ARGV[3])
local user = redis.call('HGET', KEYS[1], 'user')
if action == 'fraud' then
  _stake_move(KEYS[7], KEYS[8], KEYS[9], {ARGV[5], ARGV[6], ARGV[7]}, {user, referrer}, -amount)
end
redis.call('XADD', KEYS[4], '*', 'type', new, 'user', user, 'referrer', referrer,
  'click', redis.call('HGET', KEYS[1], 'click'), 'amount', amount, 'reason', ARGV[2],
  'flag', ARGV[4], 'ts', ARGV[3])
-- Webhook events: reward.credited, reward.held, reward.denied or reward.clawed_back.
redis.call('XADD', KEYS[6], '*', 'event', 'reward.' .. new,
  'data', cjson.encode({participant = user, parent = referrer,
    click_id = redis.call('HGET', KEYS[1], 'click'), flag = ARGV[4],
    reward = {status = new, reason = ARGV[2], amount = amount}}))
return new
