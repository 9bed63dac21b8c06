-- index_reward_status: put a batch of rewards written before the rewards-by-status indexes
-- existed into them, each by the status its hash holds now (gateway.rewards: the first listing
-- filtered by status in such a campaign). Atomic per batch, and convert.lua and
-- settle_reward.lua keep the indexes themselves meanwhile, so a reward moving during the
-- migration ends in the index of its present status. Running it again changes nothing.
-- KEYS[1]  rewards sorted set (participant -> time)
-- KEYS[2 + 9 * (i - 1)]  the i-th participant's reward hash, followed by the eight
--          rewards-by-status indexes of the campaign and of that reward's referrer
--          (_status_index.lua)
-- ARGV[i]  the i-th participant
-- Returns how many rewards were indexed.
-- include: _status_index.lua
local indexed = 0
for i, user in ipairs(ARGV) do
  local base = 2 + 9 * (i - 1)
  local status = redis.call('HGET', KEYS[base], 'status')
  local score = redis.call('ZSCORE', KEYS[1], user)
  if status and score then
    for j = 1, 8 do redis.call('ZREM', KEYS[base + j], user) end
    _status_index(base + 1, user, nil, status, score)
    indexed = indexed + 1
  end
end
return indexed
