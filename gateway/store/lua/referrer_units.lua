-- referrer_units: count once the denied and clawed_back units of a referrer whose rewards were
-- written before settle_reward.lua kept them in the referrer's totals hash (the person page's
-- totals, gateway.rewards.RewardService.referrer_totals). Referrers whose first reward came
-- after (convert.lua marks them) and referrers already counted are left alone. The caller
-- reads the two indexes, then this script checks, atomically, that they still hold exactly the
-- participants given (a reward settled in between: it returns 0 and the caller reads again),
-- sums the rewards' amounts by their status and writes the sums over anything settle_reward.lua
-- added meanwhile (the sums include those moves: the indexes are kept with the status).
-- KEYS[1]  the referrer's reward totals hash
-- KEYS[2]  the referrer's denied index   KEYS[3] their clawed_back index (_status_index.lua)
-- KEYS[3 + i]  the i-th participant's reward hash
-- ARGV[i]  the i-th participant, every member of KEYS[2] and KEYS[3]
-- Returns 1 when the totals hash holds the units, 0 when the indexes moved under the caller.
if redis.call('HGET', KEYS[1], 'units_kept') then return 1 end
if redis.call('ZCARD', KEYS[2]) + redis.call('ZCARD', KEYS[3]) ~= #ARGV then return 0 end
local units = {denied = 0, clawed_back = 0}
for i, user in ipairs(ARGV) do
  local reward = redis.call('HMGET', KEYS[3 + i], 'status', 'amount')
  local listed = (reward[1] == 'denied' and KEYS[2]) or (reward[1] == 'clawed_back' and KEYS[3])
  if not listed or not redis.call('ZSCORE', listed, user) then return 0 end
  units[reward[1]] = units[reward[1]] + tonumber(reward[2] or '0')
end
redis.call('HSET', KEYS[1], 'denied', units.denied, 'clawed_back', units.clawed_back,
  'units_kept', 1)
return 1
