-- settle_reward: move one conversion's reward after a flag or a review, as a ledger entry.
-- Allowed moves: credited -> held (a flag touched it), held -> credited (reviewed legit),
-- credited -> clawed_back and held -> denied (reviewed fraud), and back to credited from those
-- two (restore: the reviewer took back the fraud decision that moved it, and the budget and the
-- referrer's cap still have room; restore_held when another flag about it is still open). History is never edited: every move appends to the ledger,
-- and amounts move between the budget's spent and held.
-- KEYS[1]  the reward hash   KEYS[2] budget hash   KEYS[3] the referrer's reward totals hash
--          (credited and held units; denied and clawed_back units too, for the person page's
--          exact totals: gateway.rewards.RewardService.referrer_totals)
-- KEYS[4]  ledger stream     KEYS[5] top sharers sorted set   KEYS[6] outbox stream
-- KEYS[7]  flags by amount at stake   KEYS[8] open flags by amount at stake
-- KEYS[9]  cluster index hash (member -> cluster flag ids)
-- KEYS[10] rewards sorted set (participant -> time: the score of the by-status indexes)
-- KEYS[11..18] the rewards-by-status indexes, the campaign's then the referrer's
--          (_status_index.lua), kept atomically with the status
-- ARGV[1]  hold | release | fraud | restore | restore_held   ARGV[2] reason   ARGV[3] now   ARGV[4] flag id
-- ARGV[5..7] the ids of the flags this reward is at stake in, whether raised or not: the
--          participant's own, the referrer's and the click's (and, from KEYS[9], clusters)
-- ARGV[8]  the campaign's budget_total   ARGV[9] its max_per_referrer (0: none); restores only
-- Returns the new status, '' when the reward was in no state this action moves, or 'no_room'
-- when a restore would overspend the budget or the referrer's cap (the reward stays as it is).
-- The flag whose decision moved a reward is kept in the reward (settled_by): a restore moves
-- back only what that flag's fraud decision moved.
-- Holding and releasing keep the amount at stake (credited and held both are); a fraud review
-- takes it out of every flag's amount (_stake.lua).
-- include: _stake.lua
-- include: _status_index.lua
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
elseif (action == 'restore' or action == 'restore_held')
    and (status == 'denied' or status == 'clawed_back') then
  local moved = redis.call('HMGET', KEYS[1], 'reason', 'settled_by')
  if moved[1] ~= 'reviewed_fraud' or moved[2] ~= ARGV[4] then return '' end
  -- Paid again only within the budget and the referrer's cap, as convert.lua pays: what was
  -- freed by the fraud decision may have been spent since. (The day's spend still counts it:
  -- a decision never gave a day's amount back.)
  local budget = redis.call('HMGET', KEYS[2], 'spent', 'held')
  if tonumber(budget[1] or '0') + tonumber(budget[2] or '0') + amount > tonumber(ARGV[8]) then
    return 'no_room'
  end
  local cap = tonumber(ARGV[9])
  if cap > 0 then
    local mine = redis.call('HMGET', KEYS[3], 'credited', 'held')
    if tonumber(mine[1] or '0') + tonumber(mine[2] or '0') + amount > cap then
      return 'no_room'
    end
  end
  if action == 'restore' then
    new = 'credited'
    redis.call('HINCRBY', KEYS[2], 'spent', amount)
    redis.call('HINCRBY', KEYS[3], 'credited', amount)
    redis.call('ZINCRBY', KEYS[5], 1, referrer)
  else  -- another flag about it is still open: held again, for that review to settle
    new = 'held'
    redis.call('HINCRBY', KEYS[2], 'held', amount)
    redis.call('HINCRBY', KEYS[3], 'held', amount)
  end
else
  return ''
end
-- The units a fraud decision took, by the state it left them in (restores give them back).
if status == 'denied' or status == 'clawed_back' then
  redis.call('HINCRBY', KEYS[3], status, -amount)
end
if new == 'denied' or new == 'clawed_back' then
  redis.call('HINCRBY', KEYS[3], new, amount)
end
redis.call('HSET', KEYS[1], 'status', new, 'reason', ARGV[2], 'settled_at', ARGV[3],
  'settled_by', ARGV[4])
local user = redis.call('HGET', KEYS[1], 'user')
_status_index(11, user, status, new,
  redis.call('ZSCORE', KEYS[10], user) or redis.call('HGET', KEYS[1], 'ts') or '0')
if action == 'fraud' then
  _stake_move(KEYS[7], KEYS[8], KEYS[9], {ARGV[5], ARGV[6], ARGV[7]}, {user, referrer}, -amount)
elseif action == 'restore' or action == 'restore_held' then  -- at stake again in every flag
  _stake_move(KEYS[7], KEYS[8], KEYS[9], {ARGV[5], ARGV[6], ARGV[7]}, {user, referrer}, amount)
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
